package wire

import (
	"testing"
	"unicode/utf8"

	"github.com/nudgehq/nudge/features"
)

// FuzzDecodeBatch checks DecodeBatch's properties on arbitrary bodies: it never panics,
// every returned event passes Validate, the valid and invalid indices partition the input,
// and every output string is valid UTF-8. Seeds live in testdata/fuzz/FuzzDecodeBatch.
//
//	go test ./data/wire -run '^$' -fuzz FuzzDecodeBatch -fuzztime 3m
func FuzzDecodeBatch(f *testing.F) {
	f.Add([]byte(`{"events":[` + ev(nil) + `]}`))
	f.Add([]byte(`[` + ev(map[string]string{"type": `"macro_conversion"`, "name": `"purchase"`, "value": "12.5", "props": `{"path":"/x?token=1","n":1,"b":true}`, "consent": `{"analytics":false}`}) + `,{}]`))
	f.Add([]byte(`[` + ev(map[string]string{"timestamp": "1795435140000", "type": `"identify"`, "user_id": `"u"`}) + `]`))
	f.Add([]byte("[{\"event_id\":\"\xff\"}]"))
	lim := DefaultLimits()
	lim.MaxEvents = 50
	lim.MaxString = 64
	lim.MaxProps = 8
	f.Fuzz(func(t *testing.T, body []byte) {
		b, err := DecodeBatch(body, now, lim, true)
		if err != nil {
			if len(b.Events) != 0 || len(b.Errors) != 0 {
				t.Fatalf("error %v with results %+v", err, b)
			}
			return
		}
		if len(b.Events) != len(b.Index) {
			t.Fatalf("%d events, %d indices", len(b.Events), len(b.Index))
		}
		seen := make([]int, b.Received) // 1 valid, 2 invalid
		for i, idx := range b.Index {
			if idx < 0 || idx >= b.Received || seen[idx] != 0 {
				t.Fatalf("bad or repeated valid index %d", idx)
			}
			seen[idx] = 1
			e := &b.Events[i]
			if errs := Validate(e, now, lim); errs != nil {
				t.Fatalf("returned event fails Validate: %+v: %v", e, errs)
			}
			checkUTF8(t, e)
		}
		for _, fe := range b.Errors {
			if fe.Index < 0 || fe.Index >= b.Received || seen[fe.Index] == 1 {
				t.Fatalf("error index %d invalid or also valid", fe.Index)
			}
			seen[fe.Index] = 2
			if fe.Field == "" || fe.Reason == "" {
				t.Fatalf("empty error %+v", fe)
			}
			for _, s := range []string{fe.Field, fe.Reason, fe.EventID} {
				if !utf8.ValidString(s) {
					t.Fatalf("error with invalid UTF-8: %+v", fe)
				}
			}
		}
		for i, s := range seen {
			if s == 0 {
				t.Fatalf("event %d neither valid nor reported", i)
			}
		}
	})
}

func checkUTF8(t *testing.T, e *features.Event) {
	t.Helper()
	for _, s := range []string{e.EventID, e.SessionID, e.AnonymousID, e.UserID, e.Name} {
		if !utf8.ValidString(s) {
			t.Fatalf("invalid UTF-8 in %+v", e)
		}
	}
	for k, v := range e.Props {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			t.Fatalf("invalid UTF-8 in props %q=%q", k, v)
		}
	}
}
