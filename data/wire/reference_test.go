package wire

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/nudgehq/nudge/data/wire/internal/reference"
)

// referenceCases are bodies on the paths where the single-pass decoder differs most from
// the two-pass one it replaced: repeated members, more props than scanProps records,
// escaped keys, strings that need checking after the scan, and errors after a valid part.
var referenceCases = []string{
	`{"events":[` + ev(nil) + `],"events":[` + ev(map[string]string{"event_id": `"e2"`}) + `]}`,
	`{"events":[` + ev(nil) + `],"events":5}`,
	`{"events":[` + ev(nil) + `],"x":1,"events":[]}`,
	`{"x":1,"events":[` + ev(nil) + `]}`,
	`{"events":[` + ev(nil) + `],"x":[1}`,
	`{"ev\u0065nts":[]}`,
	`{"events":[` + ev(nil) + `,` + ev(nil) + `,` + ev(nil) + `]}`,
	`[` + ev(map[string]string{"props": manyProps(16)}) + `,` + ev(map[string]string{"props": manyProps(17)}) + `]`,
	`[` + ev(map[string]string{"props": manyProps(50)}) + `,` + ev(map[string]string{"props": manyProps(51)}) + `]`,
	`[` + ev(map[string]string{"props": `{"path":"/a?token=1","path":"/b","title":"t","p\u0061th":"/c?key=2","referrer":null}`}) + `]`,
	`[` + ev(map[string]string{"props": `{"a":1},"props":{"b":"x"}`}) + `]`,
	`[` + ev(map[string]string{"props": `{"a":1},"props":null`}) + `]`,
	`[` + ev(map[string]string{"props": `{"a":1},"props":"x"`}) + `]`,
	`[` + ev(map[string]string{"props": `{"":"v","k":""}`}) + `]`,
	`[` + ev(map[string]string{"props": `{"k":"a\u0000b"}`, "name": `"\u00e9"`}) + `]`,
	`[` + ev(map[string]string{"props": `{"k":"é"}`, "name": `"é"`, "user_id": "\"\xff\""}) + `]`,
	`[{"event_id":"e1","session_id":"s1","anonymous_id":"a1","t\u0079pe":"click","timestamp":"2026-11-23T11:59:00Z","x\u0000":1}]`,
	`[` + ev(map[string]string{"type": `"cl\u0069ck"`}) + `]`,
	`[` + ev(map[string]string{"type": "\"p\xffage\""}) + `]`,
	`[` + ev(map[string]string{"timestamp": "1795435140000", "event_id": `"a\u0000"`, "type": `"nope"`}) + `]`,
	`[` + ev(map[string]string{"timestamp": "-1795435140000"}) + `,` + ev(map[string]string{"timestamp": "17954351400000000000"}) + `]`,
	`[` + ev(map[string]string{"timestamp": "1795435140000.0"}) + `,` + ev(map[string]string{"timestamp": "1.7954351400001e12"}) + `]`,
	`[1,"x",null,[],` + ev(nil) + `]`,
	`[` + ev(map[string]string{"name": `"a\"b\\c\/d\be\ff\ng\rh\ti"`, "props": `{"t\"":"x\\u0041","u":"\u0041\"","v":"\\\\","w":"é\"","x":"\ud83d\ude00 and more text","y":"\\"}`}) + `]`,
	`[` + ev(map[string]string{"event_id": `"\"id\""`, "session_id": "\"s\\\"\xff\"", "anonymous_id": `"\u0000"`}) + `]`,
	`[` + ev(map[string]string{"props": `{"a":-0,"b":0,"c":123456789012345,"d":1234567890123456,"e":-5,"f":1.0,"g":1e2,"h":-0.0,"i":1e400}`}) + `]`,
	`[` + ev(map[string]string{"props": `{"a":-0,"b":0,"c":999999999999999,"d":-123456789012345,"e":-5,"f":10,"g":100000000000000}`}) + `]`,
	`[` + strings.Repeat("[", 9998) + strings.Repeat("]", 9998) + `]`,
	`[` + strings.Repeat("[", 9999) + strings.Repeat("]", 9999) + `]`,
	`{"events":[{"props":{"x":` + strings.Repeat("[", 9995) + strings.Repeat("]", 9995) + `}}]}`,
	`{"events":[{"props":{"x":` + strings.Repeat("[", 9996) + strings.Repeat("]", 9996) + `}}]}`,
	`{"events":[{"props":{"x":` + strings.Repeat("[", 9997) + strings.Repeat("]", 9997) + `}}]}`,
	`[` + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + `]`,
	`{"events":[{"x":` + strings.Repeat("{\"a\":", 9997) + `1` + strings.Repeat("}", 9997) + `}]}`,
	`{"events":[{"x":` + strings.Repeat("{\"a\":", 9998) + `1` + strings.Repeat("}", 9998) + `}]}`,
}

// FuzzDecodeBatchReference checks that DecodeBatch and DecodeEvent return exactly what the
// decoder they replaced (internal/reference, commit a8a1d45) returns for any body: the same
// events, indices, field errors and batch error messages. Seeds are referenceCases, the
// benchmark bodies and the corpora of FuzzDecodeBatch and FuzzValidJSON.
//
//	go test ./data/wire -run '^$' -fuzz FuzzDecodeBatchReference -fuzztime 3m
func FuzzDecodeBatchReference(f *testing.F) {
	for _, c := range referenceCases {
		f.Add([]byte(c))
	}
	f.Add(ingestBody(100))
	f.Add(benchBody(20))
	for _, dir := range []string{"FuzzDecodeBatch", "FuzzValidJSON"} {
		for _, b := range corpus(f, filepath.Join("testdata", "fuzz", dir)) {
			f.Add(b)
		}
	}
	small := DefaultLimits()
	small.MaxEvents, small.MaxString, small.MaxProps = 3, 8, 3
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, lim := range []Limits{DefaultLimits(), small} {
			for _, consent := range []bool{true, false} {
				compareReference(t, body, lim, consent)
			}
		}
	})
}

func TestDecodeBatchMatchesReference(t *testing.T) {
	for _, c := range referenceCases {
		compareReference(t, []byte(c), DefaultLimits(), true)
	}
}

func compareReference(t *testing.T, body []byte, lim Limits, consent bool) {
	t.Helper()
	rlim := reference.Limits(lim)
	got, err := DecodeBatch(body, now, lim, consent)
	want, werr := reference.DecodeBatch(body, now, rlim, consent)
	if (err == nil) != (werr == nil) || err != nil && err.Error() != werr.Error() ||
		errors.Is(err, ErrMalformed) != errors.Is(werr, reference.ErrMalformed) ||
		errors.Is(err, ErrTooManyEvents) != errors.Is(werr, reference.ErrTooManyEvents) {
		t.Fatalf("DecodeBatch(%.200q): error %v, reference %v", body, err, werr)
	}
	if !reflect.DeepEqual(got.Events, want.Events) || !reflect.DeepEqual(got.Index, want.Index) ||
		got.Received != want.Received || !reflect.DeepEqual(got.Errors, fieldErrors(want.Errors)) {
		t.Fatalf("DecodeBatch(%.200q):\n got %+v\nwant %+v", body, got, want)
	}
	if cap(got.Events) != cap(want.Events) || cap(got.Index) != cap(want.Index) {
		t.Fatalf("DecodeBatch(%.200q): capacities %d %d, reference %d %d", body, cap(got.Events), cap(got.Index), cap(want.Events), cap(want.Index))
	}
	e, errs := DecodeEvent(body, now, lim, consent)
	we, werrs := reference.DecodeEvent(body, now, rlim, consent)
	if !reflect.DeepEqual(e, we) || !reflect.DeepEqual(errs, fieldErrors(werrs)) {
		t.Fatalf("DecodeEvent(%.200q):\n got %+v %+v\nwant %+v %+v", body, e, errs, we, werrs)
	}
}

func fieldErrors(r []reference.FieldError) []FieldError {
	if r == nil {
		return nil
	}
	out := make([]FieldError, len(r))
	for i, e := range r {
		out[i] = FieldError(e)
	}
	return out
}

// corpus reads the []byte inputs of a fuzz corpus directory (go test fuzz v1 files).
func corpus(tb testing.TB, dir string) [][]byte {
	tb.Helper()
	files, err := os.ReadDir(dir)
	if err != nil {
		tb.Fatal(err)
	}
	var out [][]byte
	for _, fi := range files {
		b, err := os.ReadFile(filepath.Join(dir, fi.Name()))
		if err != nil {
			tb.Fatal(err)
		}
		lines := strings.SplitN(strings.TrimSpace(string(b)), "\n", 2)
		if len(lines) != 2 || !strings.HasPrefix(lines[1], "[]byte(") || !strings.HasSuffix(lines[1], ")") {
			tb.Fatalf("%s: not a go test fuzz v1 []byte input", fi.Name())
		}
		s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")"))
		if err != nil {
			tb.Fatalf("%s: %v", fi.Name(), err)
		}
		out = append(out, []byte(s))
	}
	return out
}
