package wire

import (
	"encoding/json"
	"strings"
	"testing"
)

var validCases = []string{
	`{}`, `[]`, ` {"a" : [1, -2.5e+3, true, false, null, "x\u00e9\n"]} `, `"s"`, `0`, `-0.1`, `1E9`,
	`{"a":{"b":{"c":[]}}}`, `[{},[],""]`, "\"\xff\"", `{"a":1,}`, `[1,]`, `{"a"}`, `{"a":}`, `[01]`,
	`[1.]`, `[.5]`, `[1e]`, `[-]`, `tru`, `nul`, `[true false]`, `{"a":1 "b":2}`, `"\x"`, `"\u12g4"`,
	"\"a\tb\"", `[1]]`, `[[1]`, `{}{}`, ``, ` `, `{"a":1}x`, `[` + strings.Repeat("[", 10001) + `]`,
	`{1:2}`, `["a\"]`, `[-01]`, `[1e+]`, `"\u0000"`, `[NaN]`, `{"a":[1,{"b":2}],"c":"d"}`,
}

func TestValidJSONMatchesEncodingJSON(t *testing.T) {
	for _, c := range validCases {
		if got, want := validJSON([]byte(c)), json.Valid([]byte(c)); got != want {
			t.Errorf("validJSON(%.40q) = %v, json.Valid = %v", c, got, want)
		}
	}
	deep := strings.Repeat("[", 10000) + strings.Repeat("]", 10000)
	if validJSON([]byte(deep)) != json.Valid([]byte(deep)) {
		t.Errorf("depth 10000: validJSON %v, json.Valid %v", validJSON([]byte(deep)), json.Valid([]byte(deep)))
	}
}

// FuzzValidJSON checks that validJSON agrees with encoding/json.Valid on any input.
//
//	go test ./data/wire -run '^$' -fuzz FuzzValidJSON -fuzztime 2m
func FuzzValidJSON(f *testing.F) {
	for _, c := range validCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := validJSON(b), json.Valid(b); got != want {
			t.Fatalf("validJSON(%q) = %v, json.Valid = %v", b, got, want)
		}
	})
}
