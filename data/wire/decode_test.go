package wire

import (
	"strconv"
	"testing"
)

func TestSmallUint(t *testing.T) {
	for _, s := range []string{"0", "7", "1795435140000", "999999999999999999", "1234567890123456789", "", "-1", "1.5", "1e3", "12a", "00012"} {
		got, ok := smallUint([]byte(s))
		want, err := strconv.ParseInt(s, 10, 64)
		if ok && (err != nil || got != want) {
			t.Errorf("smallUint(%q) = %d, ParseInt = %d, %v", s, got, want, err)
		}
		if !ok && len(s) > 0 && len(s) <= 18 && err == nil && s[0] != '-' {
			t.Errorf("smallUint(%q) refused a number ParseInt reads", s)
		}
	}
}
