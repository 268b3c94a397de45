package wire

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/nudgehq/nudge/features"
)

var now = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

// ev builds a wire event from a valid base with fields overridden (raw JSON values; "-"
// deletes the field).
func ev(over map[string]string) string {
	f := map[string]string{
		"event_id":     `"e1"`,
		"session_id":   `"s1"`,
		"anonymous_id": `"a1"`,
		"type":         `"page_view"`,
		"timestamp":    `"2026-11-23T11:59:00Z"`,
	}
	for k, v := range over {
		if v == "-" {
			delete(f, k)
		} else {
			f[k] = v
		}
	}
	var b strings.Builder
	b.WriteString("{")
	first := true
	for _, k := range []string{"event_id", "session_id", "anonymous_id", "user_id", "type", "timestamp", "name", "value", "props", "consent"} {
		if v, ok := f[k]; ok {
			if !first {
				b.WriteString(",")
			}
			first = false
			fmt.Fprintf(&b, "%q:%s", k, v)
			delete(f, k)
		}
	}
	for k, v := range f { // unknown fields, in any order
		if !first {
			b.WriteString(",")
		}
		first = false
		fmt.Fprintf(&b, "%q:%s", k, v)
	}
	b.WriteString("}")
	return b.String()
}

func TestDecodeEventValid(t *testing.T) {
	tests := []struct {
		name  string
		over  map[string]string
		check func(t *testing.T, e features.Event)
	}{
		{"minimal page view", nil, func(t *testing.T, e features.Event) {
			if e.EventID != "e1" || e.SessionID != "s1" || e.AnonymousID != "a1" || e.Type != features.PageView || !e.Consent {
				t.Errorf("%+v", e)
			}
			if want := time.Date(2026, 11, 23, 11, 59, 0, 0, time.UTC).UnixMilli(); e.TS != want {
				t.Errorf("TS = %d, want %d", e.TS, want)
			}
		}},
		{"unix ms timestamp", map[string]string{"timestamp": "1795435140000"}, func(t *testing.T, e features.Event) {
			if e.TS != 1795435140000 {
				t.Errorf("TS = %d", e.TS)
			}
		}},
		{"unix ms as float", map[string]string{"timestamp": "1.79543514e12"}, func(t *testing.T, e features.Event) {
			if e.TS != 1795435140000 {
				t.Errorf("TS = %d", e.TS)
			}
		}},
		{"rfc3339 with offset and fraction", map[string]string{"timestamp": `"2026-11-23T12:59:00.250+01:00"`}, func(t *testing.T, e features.Event) {
			if e.TS != time.Date(2026, 11, 23, 11, 59, 0, 250e6, time.UTC).UnixMilli() {
				t.Errorf("TS = %d", e.TS)
			}
		}},
		{"macro conversion with value", map[string]string{"type": `"macro_conversion"`, "name": `"purchase"`, "value": "59.9"}, func(t *testing.T, e features.Event) {
			if e.Type != features.MacroConversion || e.Name != "purchase" || e.Value != 59.9 {
				t.Errorf("%+v", e)
			}
		}},
		{"identify", map[string]string{"type": `"identify"`, "user_id": `"u42"`}, func(t *testing.T, e features.Event) {
			if e.UserID != "u42" {
				t.Errorf("%+v", e)
			}
		}},
		{"props flattened", map[string]string{"props": `{"s":"x","n":3,"f":1.5,"b":true,"c":false,"z":null,"u":"\u00e9\n"}`}, func(t *testing.T, e features.Event) {
			want := map[string]string{"s": "x", "n": "3", "f": "1.5", "b": "true", "c": "false", "u": "é\n"}
			if len(e.Props) != len(want) {
				t.Errorf("props = %v", e.Props)
			}
			for k, v := range want {
				if e.Props[k] != v {
					t.Errorf("props[%q] = %q, want %q", k, e.Props[k], v)
				}
			}
		}},
		{"consent false", map[string]string{"consent": "false"}, func(t *testing.T, e features.Event) {
			if e.Consent {
				t.Error("consent true")
			}
		}},
		{"consent object", map[string]string{"consent": `{"analytics":false}`}, func(t *testing.T, e features.Event) {
			if e.Consent {
				t.Error("consent true")
			}
		}},
		{"null optional fields", map[string]string{"user_id": "null", "name": "null", "value": "null", "props": "null", "consent": "null"}, func(t *testing.T, e features.Event) {
			if e.UserID != "" || e.Props != nil || !e.Consent {
				t.Errorf("%+v", e)
			}
		}},
		{"secrets redacted", map[string]string{"props": `{"path":"/a?x=1&token=abc&API_KEY=k#auth=z","referrer":"https://r.example/?password=p","url":"https://s/?q=1"}`}, func(t *testing.T, e features.Event) {
			if got := e.Props["path"]; got != "/a?x=1&token=REDACTED&API_KEY=REDACTED#auth=REDACTED" {
				t.Errorf("path = %q", got)
			}
			if got := e.Props["referrer"]; got != "https://r.example/?password=REDACTED" {
				t.Errorf("referrer = %q", got)
			}
			if got := e.Props["url"]; got != "https://s/?q=1" {
				t.Errorf("url = %q", got)
			}
		}},
		{"long path and title capped", map[string]string{"props": fmt.Sprintf(`{"path":"/%s","title":"%s"}`, strings.Repeat("p", 1000), strings.Repeat("é", 300))}, func(t *testing.T, e features.Event) {
			if len(e.Props["path"]) != 1001 {
				t.Errorf("path len %d", len(e.Props["path"]))
			}
			if n := len(e.Props["title"]); n > MaxTitleLen || n < MaxTitleLen-1 || !utf8.ValidString(e.Props["title"]) {
				t.Errorf("title len %d valid %v", n, utf8.ValidString(e.Props["title"]))
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := ev(tt.over)
			e, errs := DecodeEvent([]byte(raw), now, DefaultLimits(), true)
			if errs != nil {
				t.Fatalf("%s: errors %v", raw, errs)
			}
			tt.check(t, e)
			if v := Validate(&e, now, DefaultLimits()); v != nil {
				t.Errorf("decoded event fails Validate: %v", v)
			}
		})
	}
}

func TestDecodeEventErrors(t *testing.T) {
	long := `"` + strings.Repeat("x", 1025) + `"`
	tests := []struct {
		name   string
		raw    string // when set, used instead of ev(over)
		over   map[string]string
		field  string
		reason string // substring
	}{
		{"unknown type", "", map[string]string{"type": `"pageview"`}, "type", `unknown event type "pageview" (valid: page_view, click, error, micro_conversion, macro_conversion, exposure, identify, custom)`},
		{"type not a string", "", map[string]string{"type": `1`}, "type", "must be a string, got a number"},
		{"missing type", "", map[string]string{"type": "-"}, "type", "missing"},
		{"missing event_id", "", map[string]string{"event_id": "-"}, "event_id", "missing"},
		{"empty event_id", "", map[string]string{"event_id": `""`}, "event_id", "missing"},
		{"event_id not string", "", map[string]string{"event_id": `12`}, "event_id", "must be a string, got a number"},
		{"missing session_id", "", map[string]string{"session_id": "-"}, "session_id", "missing"},
		{"missing anonymous_id", "", map[string]string{"anonymous_id": "-"}, "anonymous_id", "missing"},
		{"identify without user", "", map[string]string{"type": `"identify"`}, "user_id", "missing"},
		{"micro without name", "", map[string]string{"type": `"micro_conversion"`}, "name", "missing"},
		{"macro without name", "", map[string]string{"type": `"macro_conversion"`}, "name", "missing"},
		{"custom without name", "", map[string]string{"type": `"custom"`}, "name", "missing"},
		{"missing timestamp", "", map[string]string{"timestamp": "-"}, "timestamp", "missing"},
		{"unparsable timestamp", "", map[string]string{"timestamp": `"yesterday"`}, "timestamp", `cannot parse "yesterday" as RFC 3339`},
		{"timestamp bool", "", map[string]string{"timestamp": `true`}, "timestamp", "must be an RFC 3339 string or Unix milliseconds, got a boolean"},
		{"fractional ms", "", map[string]string{"timestamp": `1795435140000.5`}, "timestamp", "must be whole Unix milliseconds"},
		{"future", "", map[string]string{"timestamp": `"2026-11-23T12:16:00Z"`}, "timestamp", "more than 15m0s in the future"},
		{"past", "", map[string]string{"timestamp": `"2025-01-01T00:00:00Z"`}, "timestamp", "in the past"},
		{"seconds not ms", "", map[string]string{"timestamp": `1795435140`}, "timestamp", "before 2000-01-01"},
		{"value string", "", map[string]string{"value": `"10"`}, "value", "must be a number, got a string"},
		{"value overflow", "", map[string]string{"value": `1e999`}, "value", "out of range"},
		{"props array", "", map[string]string{"props": `["a"]`}, "props", "must be an object, got an array"},
		{"props string", "", map[string]string{"props": `"a=b"`}, "props", "must be an object, got a string"},
		{"props nested object", "", map[string]string{"props": `{"x":{"y":1}}`}, "props.x", "nested values are not supported"},
		{"props nested array", "", map[string]string{"props": `{"x":[1]}`}, "props.x", "nested values are not supported"},
		{"too many props", "", map[string]string{"props": manyProps(51)}, "props", "51 props, the limit is 50"},
		{"long event_id", "", map[string]string{"event_id": long}, "event_id", "too long: 1025 bytes, the limit is 1024"},
		{"long name", "", map[string]string{"name": long}, "name", "too long"},
		{"long user_id", "", map[string]string{"user_id": long}, "user_id", "too long"},
		{"long prop value", "", map[string]string{"props": `{"k":` + long + `}`}, "props.k", "too long"},
		{"long prop key", "", map[string]string{"props": `{` + long + `:"v"}`}, "props." + strings.Repeat("x", 64), "key too long"},
		{"invalid utf8 session", "", map[string]string{"session_id": "\"s\xff\""}, "session_id", "invalid UTF-8"},
		{"invalid utf8 prop", "", map[string]string{"props": "{\"k\":\"\xc3\x28\"}"}, "props.k", "invalid UTF-8"},
		{"invalid utf8 prop key", "", map[string]string{"props": "{\"k\xff\":\"v\"}"}, "props", "invalid key: invalid UTF-8"},
		{"invalid utf8 field name", "{\"x\xff\":1," + ev(nil)[1:], nil, "x?", "unknown field"},
		{"NUL in id", "", map[string]string{"session_id": `"a\u0000b"`}, "session_id", "NUL"},
		{"unknown field", "", map[string]string{"sesion_id": `"s"`}, "sesion_id", "unknown field (valid: event_id, session_id"},
		{"case matters", "", map[string]string{"Type": `"click"`}, "Type", "unknown field"},
		{"consent string", "", map[string]string{"consent": `"yes"`}, "consent", "must be a boolean or {\"analytics\": boolean}, got a string"},
		{"consent unknown key", "", map[string]string{"consent": `{"ads":true}`}, "consent.ads", "unknown field"},
		{"consent analytics not bool", "", map[string]string{"consent": `{"analytics":1}`}, "consent.analytics", "must be a boolean"},
		{"not an object", `[1,2]`, nil, "event", "must be a JSON object, got an array"},
		{"broken json", `{"event_id":`, nil, "event", "not valid JSON: unexpected end of JSON input"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := tt.raw
			if raw == "" {
				raw = ev(tt.over)
			}
			e, errs := DecodeEvent([]byte(raw), now, DefaultLimits(), true)
			if errs == nil {
				t.Fatalf("no error for %s: %+v", raw, e)
			}
			found := false
			for _, fe := range errs {
				if fe.Field == tt.field && strings.Contains(fe.Reason, tt.reason) {
					found = true
				}
				if !utf8.ValidString(fe.Field) || !utf8.ValidString(fe.Reason) || !utf8.ValidString(fe.EventID) {
					t.Errorf("error with invalid UTF-8: %+v", fe)
				}
			}
			if !found {
				t.Errorf("want %s: %q..., got %+v", tt.field, tt.reason, errs)
			}
		})
	}
}

func manyProps(n int) string {
	var parts []string
	for i := range n {
		parts = append(parts, fmt.Sprintf(`"p%d":%d`, i, i))
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func TestErrorsNameEventAndAllFields(t *testing.T) {
	raw := ev(map[string]string{"event_id": `"bad-1"`, "type": `"nope"`, "session_id": "-", "timestamp": `"x"`})
	_, errs := DecodeEvent([]byte(raw), now, DefaultLimits(), true)
	fields := map[string]bool{}
	for _, e := range errs {
		fields[e.Field] = true
		if e.EventID != "bad-1" {
			t.Errorf("error without event id: %+v", e)
		}
	}
	for _, f := range []string{"type", "session_id", "timestamp"} {
		if !fields[f] {
			t.Errorf("no error for %s: %+v", f, errs)
		}
	}
}

func TestDecodeBatch(t *testing.T) {
	good := func(id string) string { return ev(map[string]string{"event_id": `"` + id + `"`}) }
	bad := ev(map[string]string{"type": `"nope"`, "event_id": `"b"`})
	body := `{"events":[` + good("a") + "," + bad + "," + good("c") + "," + good("a") + "]}"
	b, err := DecodeBatch([]byte(body), now, DefaultLimits(), false)
	if err != nil {
		t.Fatal(err)
	}
	if b.Received != 4 || len(b.Events) != 3 || len(b.Errors) != 1 {
		t.Fatalf("batch = %+v", b)
	}
	if fmt.Sprint(b.Index) != "[0 2 3]" {
		t.Errorf("Index = %v", b.Index)
	}
	if e := b.Errors[0]; e.Index != 1 || e.EventID != "b" || e.Field != "type" {
		t.Errorf("error = %+v", e)
	}
	if b.Events[0].Consent {
		t.Error("consent default false not applied")
	}
	// A bare array is accepted too.
	b2, err := DecodeBatch([]byte("["+good("x")+"]"), now, DefaultLimits(), true)
	if err != nil || len(b2.Events) != 1 || b2.Events[0].EventID != "x" {
		t.Errorf("bare array: %+v %v", b2, err)
	}
}

func TestDecodeBatchMalformed(t *testing.T) {
	tests := []struct {
		name, body string
		want       error
	}{
		{"empty", "", ErrMalformed},
		{"not json", "hello", ErrMalformed},
		{"truncated", `{"events":[{"a":1}`, ErrMalformed},
		{"number", `42`, ErrMalformed},
		{"events not array", `{"events":{}}`, ErrMalformed},
		{"events missing", `{}`, ErrMalformed},
		{"events null", `{"events":null}`, ErrMalformed},
		{"unknown top-level", `{"events":[],"extra":1}`, ErrMalformed},
		{"trailing garbage", `{"events":[]} x`, ErrMalformed},
		{"too many", "[" + strings.TrimSuffix(strings.Repeat("{},", 501), ",") + "]", ErrTooManyEvents},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeBatch([]byte(tt.body), now, DefaultLimits(), true)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
	lim := DefaultLimits()
	lim.MaxEvents = 2
	if _, err := DecodeBatch([]byte(`[{},{},{}]`), now, lim, true); !errors.Is(err, ErrTooManyEvents) {
		t.Errorf("custom MaxEvents: %v", err)
	}
}

func TestValidate(t *testing.T) {
	good := features.Event{EventID: "e", SessionID: "s", AnonymousID: "a", Type: features.Click, TS: now.UnixMilli()}
	if errs := Validate(&good, now, DefaultLimits()); errs != nil {
		t.Fatalf("valid event rejected: %v", errs)
	}
	tests := []struct {
		name  string
		mod   func(e *features.Event)
		field string
	}{
		{"zero type", func(e *features.Event) { e.Type = 0 }, "type"},
		{"type out of range", func(e *features.Event) { e.Type = 200 }, "type"},
		{"invalid utf8 name", func(e *features.Event) { e.Name = "\xff" }, "name"},
		{"invalid prop", func(e *features.Event) { e.Props = map[string]string{"k": "\xff"} }, "props.k"},
		{"empty prop key", func(e *features.Event) { e.Props = map[string]string{"": "v"} }, "props"},
		{"future", func(e *features.Event) { e.TS = now.Add(time.Hour).UnixMilli() }, "timestamp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := good
			tt.mod(&e)
			errs := Validate(&e, now, DefaultLimits())
			if len(errs) == 0 || errs[0].Field != tt.field {
				t.Fatalf("errs = %v, want field %s", errs, tt.field)
			}
		})
	}
}

func TestRedactURL(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/plain", "/plain"},
		{"/p?q=1", "/p?q=1"},
		{"/p?token=t", "/p?token=REDACTED"},
		{"/p?a=1&Key=k&b=2", "/p?a=1&Key=REDACTED&b=2"},
		{"/p?secret=s;auth=x", "/p?secret=REDACTED;auth=REDACTED"},
		{"/p?api%5Fkey=s", "/p?api%5Fkey=REDACTED"},
		{"/p?monkey=1", "/p?monkey=1"},
		{"/p#access_token=abc&x=1", "/p#access_token=REDACTED&x=1"},
	}
	for _, tt := range tests {
		if got := RedactURL(tt.in); got != tt.want {
			t.Errorf("RedactURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestLimitsDefaults(t *testing.T) {
	// A zero Limits means the defaults.
	long := `"` + strings.Repeat("x", 1025) + `"`
	_, errs := DecodeEvent([]byte(ev(map[string]string{"name": long})), now, Limits{}, true)
	if len(errs) != 1 || errs[0].Field != "name" {
		t.Fatalf("errs = %v", errs)
	}
	// Import-style wide MaxPast accepts old events.
	lim := DefaultLimits()
	lim.MaxPast = 30 * 365 * 24 * time.Hour
	if _, errs := DecodeEvent([]byte(ev(map[string]string{"timestamp": `"2022-08-01T00:00:00Z"`})), now, lim, true); errs != nil {
		t.Fatalf("wide MaxPast: %v", errs)
	}
}
