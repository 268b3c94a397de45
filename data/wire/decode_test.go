package wire

import (
	"fmt"
	"maps"
	"strconv"
	"strings"
	"testing"
)

// TestCleanedProps checks that decoder.clean cleans exactly the props in urlProps and
// "title", as its key switch in prop assumes.
func TestCleanedProps(t *testing.T) {
	if fmt.Sprint(urlProps) != "[path url referrer]" {
		t.Fatalf("urlProps = %v: update decoder.prop's switch", urlProps)
	}
	long := strings.Repeat("é", 600)
	raw := ev(map[string]string{"props": `{"path":"/a?token=1","url":"/b?key=2#x","referrer":"/c#auth=3","title":"` + long + `","other":"/d?token=4","p":"/` + long[:600] + `"}`})
	e, errs := DecodeEvent([]byte(raw), now, DefaultLimits(), true)
	if errs != nil {
		t.Fatal(errs)
	}
	want := map[string]string{"path": "/a?token=REDACTED", "url": "/b?key=REDACTED#x", "referrer": "/c#auth=REDACTED",
		"title": cleanTitle(long), "other": "/d?token=4", "p": "/" + long[:600]}
	if !maps.Equal(e.Props, want) {
		t.Errorf("props = %q, want %q", e.Props, want)
	}
}

func TestSmallInt(t *testing.T) {
	for _, s := range []string{"0", "-0", "7", "-45", "370", "100000000000000", "999999999999999", "-999999999999999",
		"1234567890123456", "9007199254740993", "", "-", "01", "-01", "1.0", "1e2", "1.5", "12a", "--1"} {
		f, err := strconv.ParseFloat(s, 64)
		canonical := err == nil && strconv.FormatFloat(f, 'f', -1, 64) == s
		if smallInt([]byte(s)) && !canonical {
			t.Errorf("smallInt(%q) but FormatFloat(ParseFloat) = %q, %v", s, strconv.FormatFloat(f, 'f', -1, 64), err)
		}
	}
	for n := int64(-2000); n <= 2000; n++ {
		s := strconv.FormatInt(n*7919, 10)
		f, _ := strconv.ParseFloat(s, 64)
		if !smallInt([]byte(s)) || strconv.FormatFloat(f, 'f', -1, 64) != s {
			t.Fatalf("smallInt(%q) = %v, FormatFloat %q", s, smallInt([]byte(s)), strconv.FormatFloat(f, 'f', -1, 64))
		}
	}
}

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

// BenchmarkScanEvents runs only the syntax check and member scan of DecodeBatch
// (decoder.scanEvent) over the events of ingestBody, without decoding them: no allocation,
// so it times the scanner without the garbage collector's noise.
func BenchmarkScanEvents(b *testing.B) {
	body := ingestBody(100)
	var d decoder
	d.init(DefaultLimits(), now)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		i := skipWS(body, len(`{"events":[`))
		for n := 0; ; n++ {
			d.reset(n)
			if i = d.scanEvent(body, i, 2); i < 0 {
				b.Fatal("invalid")
			}
			if body[i] != ',' {
				break
			}
			i++
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*100), "ns/event")
}
