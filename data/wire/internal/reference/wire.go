// Package reference is data/wire's decoder as of commit a8a1d45 (a validity pass over the
// whole body, then a scanner over the validated text), frozen as the oracle of
// wire.FuzzDecodeBatchReference: the single-pass decoder of data/wire must return exactly
// what this one returns (events, indices, errors, messages) for any body. Only tests
// import it. A deliberate change of the wire format's behaviour changes both.
package reference

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	gojson "github.com/goccy/go-json"

	"github.com/nudgehq/nudge/features"
)

// Decoding is in two passes: valid checks that the whole body is valid JSON (validJSON, an
// allocation-free checker that agrees with encoding/json.Valid, see FuzzValidJSON), then a
// small scanner (scan.go) walks the members of each event over the validated text. The JSON
// library only decodes strings with escapes (unmarshal) and explains syntax errors.
// Decoding each event into a map of raw values with the library instead cost 4x more
// time and allocations (BenchmarkDecodeBatch; figures in bench_test.go). goccy/go-json
// decodes escaped strings faster than encoding/json; its Valid is slower than both
// checkers and rejects valid numbers out of float64 range, like 1e999.
var (
	valid     = validJSON
	unmarshal = gojson.Unmarshal
)

// Sentinel errors of DecodeBatch. HTTP maps ErrMalformed to 400 and ErrTooManyEvents to 413.
var (
	ErrMalformed     = errors.New("wire: malformed batch")
	ErrTooManyEvents = errors.New("wire: too many events in batch")
)

// Limits bound what one batch and one event may contain.
type Limits struct {
	MaxEvents int           // events per batch (default 500)
	MaxString int           // bytes in an id, name, user id, props key or value (default 1024)
	MaxProps  int           // props per event (default 50)
	MaxFuture time.Duration // how far ahead of now a timestamp may be (default 15m)
	MaxPast   time.Duration // how far behind now a timestamp may be (default 400 days)
}

// DefaultLimits returns the limits used by HTTP ingest.
func DefaultLimits() Limits {
	return Limits{
		MaxEvents: 500,
		MaxString: 1024,
		MaxProps:  50,
		MaxFuture: 15 * time.Minute,
		MaxPast:   400 * 24 * time.Hour,
	}
}

// withDefaults fills zero fields with the defaults.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxEvents <= 0 {
		l.MaxEvents = d.MaxEvents
	}
	if l.MaxString <= 0 {
		l.MaxString = d.MaxString
	}
	if l.MaxProps <= 0 {
		l.MaxProps = d.MaxProps
	}
	if l.MaxFuture <= 0 {
		l.MaxFuture = d.MaxFuture
	}
	if l.MaxPast <= 0 {
		l.MaxPast = d.MaxPast
	}
	return l
}

// Caps on well-known props that are truncated (not rejected) when longer.
const (
	MaxURLLen   = 1024 // "path", "url", "referrer"
	MaxTitleLen = 256  // "title"
)

// FieldError says why one event of a batch was rejected.
type FieldError struct {
	Index   int    `json:"index"`              // position of the event in the batch
	EventID string `json:"event_id,omitempty"` // its event_id when it could be read
	Field   string `json:"field"`              // wire field, e.g. "timestamp" or "props.path"
	Reason  string `json:"reason"`
}

func (e FieldError) Error() string {
	return fmt.Sprintf("event %d: %s: %s", e.Index, e.Field, e.Reason)
}

// Batch is the result of decoding a batch: its valid events and the errors of the others.
type Batch struct {
	Events   []features.Event
	Index    []int        // input index of each valid event (parallel to Events)
	Errors   []FieldError // one or more per invalid event, in input order
	Received int          // number of events in the input
}

// DecodeBatch decodes and validates a batch body: {"events":[...]} or a bare JSON array.
// The error is non-nil (ErrMalformed, ErrTooManyEvents) only when the batch as a whole is
// unusable; otherwise every input event is either in Events or has errors in Errors.
func DecodeBatch(body []byte, now time.Time, lim Limits, consentDefault bool) (Batch, error) {
	lim = lim.withDefaults()
	raws, err := splitBatch(body)
	if err != nil {
		return Batch{}, err
	}
	b := Batch{Received: len(raws)}
	if len(raws) > lim.MaxEvents {
		return b, fmt.Errorf("%w: %d events, the limit is %d", ErrTooManyEvents, len(raws), lim.MaxEvents)
	}
	b.Events = make([]features.Event, 0, len(raws))
	b.Index = make([]int, 0, len(raws))
	var d decoder
	for i, raw := range raws {
		d.reset(i, lim, now)
		ev := d.event(raw, consentDefault)
		if len(d.errs) > 0 {
			b.Errors = append(b.Errors, d.errs...)
			continue
		}
		b.Events = append(b.Events, ev)
		b.Index = append(b.Index, i)
	}
	return b, nil
}

// DecodeEvent decodes and validates one event object (a line of a JSON Lines file). Errors
// carry Index 0.
func DecodeEvent(raw []byte, now time.Time, lim Limits, consentDefault bool) (features.Event, []FieldError) {
	var d decoder
	d.reset(0, lim.withDefaults(), now)
	raw = bytes.TrimSpace(raw)
	if !valid(raw) {
		return features.Event{}, []FieldError{{Field: "event", Reason: "not valid JSON: " + syntaxReason(raw)}}
	}
	ev := d.event(raw, consentDefault)
	if len(d.errs) > 0 {
		return features.Event{}, d.errs
	}
	return ev, nil
}

// splitBatch returns the raw events of a batch body.
func splitBatch(body []byte) ([][]byte, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, fmt.Errorf("%w: empty body", ErrMalformed)
	}
	if body[0] != '[' && body[0] != '{' {
		return nil, fmt.Errorf("%w: body must be a JSON object {\"events\": [...]} or an array", ErrMalformed)
	}
	if !valid(body) {
		return nil, fmt.Errorf("%w: %s", ErrMalformed, syntaxReason(body))
	}
	arr := -1
	if body[0] == '[' {
		arr = 0
	} else {
		var err error
		eachMember(body, 0, func(k, v []byte) {
			switch {
			case err != nil:
			case string(k) != `"events"`:
				name, _ := decodeString(k)
				err = fmt.Errorf("%w: unknown field %q (a batch is {\"events\": [...]})", ErrMalformed, truncate(name, 64))
			case v[0] != '[':
				err = fmt.Errorf("%w: \"events\" must be an array of events, got %s", ErrMalformed, kind(v))
			default:
				arr = cap(body) - cap(v) // v is body[arr:...]
			}
		})
		if err != nil {
			return nil, err
		}
		if arr < 0 {
			return nil, fmt.Errorf("%w: \"events\" must be an array of events", ErrMalformed)
		}
	}
	var raws [][]byte
	eachElement(body, arr, func(e []byte) { raws = append(raws, e) })
	return raws, nil
}

// syntaxReason describes why body is not valid JSON.
func syntaxReason(body []byte) string {
	var v json.RawMessage
	if err := json.Unmarshal(body, &v); err != nil {
		return jsonReason(err)
	}
	return "invalid JSON"
}

// jsonReason shortens a JSON library error for a client.
func jsonReason(err error) string {
	s := err.Error()
	s = strings.TrimPrefix(s, "json: ")
	if len(s) > 200 {
		s = s[:200]
	}
	return strings.ToValidUTF8(s, "?")
}

// decoder decodes one event at a time, collecting its errors.
type decoder struct {
	index int
	lim   Limits
	now   time.Time
	id    string
	errs  []FieldError
	// strs backs the event's unescaped strings (ids, name, props): one allocation per
	// event instead of one per string. Bytes are only ever appended within its capacity,
	// never overwritten, and each event gets a new one (see keep).
	strs []byte
}

func (d *decoder) reset(index int, lim Limits, now time.Time) {
	d.index, d.lim, d.now, d.id, d.errs, d.strs = index, lim, now, "", d.errs[:0:0], nil
}

// keep returns b as a string backed by the event's string block (a copy of b: the body may
// be reused once decoded). A string that does not fit is allocated on its own.
func (d *decoder) keep(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	n := len(d.strs)
	if n+len(b) > cap(d.strs) {
		return string(b)
	}
	d.strs = append(d.strs, b...)
	// The bytes [n, n+len(b)) are never written again: the string is immutable.
	return unsafe.String(&d.strs[n], len(b))
}

// decodeStr decodes a raw JSON string (or null) like decodeString, its unescaped text kept in the
// event's string block.
func (d *decoder) decodeStr(r []byte) (string, string) {
	if len(r) >= 2 && r[0] == '"' && bytes.IndexByte(r[1:len(r)-1], '\\') < 0 {
		if !utf8.Valid(r) {
			return "", "invalid UTF-8"
		}
		return d.keep(r[1 : len(r)-1]), ""
	}
	return decodeString(r)
}

func (d *decoder) fail(field, format string, args ...any) {
	d.errs = append(d.errs, FieldError{Index: d.index, EventID: d.id, Field: field, Reason: fmt.Sprintf(format, args...)})
}

// Wire field names.
const (
	fEventID     = "event_id"
	fSessionID   = "session_id"
	fAnonymousID = "anonymous_id"
	fUserID      = "user_id"
	fType        = "type"
	fTimestamp   = "timestamp"
	fName        = "name"
	fValue       = "value"
	fProps       = "props"
	fConsent     = "consent"
)

var knownFields = []string{fEventID, fSessionID, fAnonymousID, fUserID, fType, fTimestamp, fName, fValue, fProps, fConsent}

// field indices, in the order of knownFields.
const (
	iEventID = iota
	iSessionID
	iAnonymousID
	iUserID
	iType
	iTimestamp
	iName
	iValue
	iProps
	iConsent
	numFields
)

// fieldIndex maps a raw key (with quotes) to its field index, or -1.
func fieldIndex(k []byte) int {
	switch string(k) {
	case `"event_id"`:
		return iEventID
	case `"session_id"`:
		return iSessionID
	case `"anonymous_id"`:
		return iAnonymousID
	case `"user_id"`:
		return iUserID
	case `"type"`:
		return iType
	case `"timestamp"`:
		return iTimestamp
	case `"name"`:
		return iName
	case `"value"`:
		return iValue
	case `"props"`:
		return iProps
	case `"consent"`:
		return iConsent
	}
	if bytes.IndexByte(k, '\\') >= 0 { // an escaped key may still name a field
		if s, reason := decodeString(k); reason == "" {
			for i, f := range knownFields {
				if s == f {
					return i
				}
			}
		}
	}
	return -1
}

// event decodes one event from raw, which is valid JSON.
func (d *decoder) event(raw []byte, consentDefault bool) features.Event {
	ev := features.Event{Consent: consentDefault}
	d.strs = make([]byte, 0, len(raw)) // the event's strings are disjoint parts of raw
	if len(raw) == 0 || raw[0] != '{' {
		d.fail("event", "must be a JSON object, got %s", kind(raw))
		return ev
	}
	var vals [numFields][]byte
	var unknown []string
	eachMember(raw, 0, func(k, v []byte) {
		if i := fieldIndex(k); i >= 0 {
			vals[i] = v
			return
		}
		name, reason := decodeString(k)
		if reason != "" {
			name = strings.ToValidUTF8(string(k[1:len(k)-1]), "?")
		}
		if name == "" {
			name = `""`
		}
		unknown = append(unknown, truncate(name, 64))
	})
	// The event id first, so that later errors can name it.
	if r := vals[iEventID]; r != nil {
		ev.EventID, _ = d.str(fEventID, r)
		d.id = ev.EventID
		if !utf8.ValidString(d.id) || len(d.id) > d.lim.MaxString {
			d.id = ""
		}
	}
	for i := iSessionID; i < numFields; i++ {
		r := vals[i]
		if r == nil {
			continue
		}
		k := knownFields[i]
		switch i {
		case iSessionID:
			ev.SessionID, _ = d.str(k, r)
		case iAnonymousID:
			ev.AnonymousID, _ = d.str(k, r)
		case iUserID:
			ev.UserID, _ = d.str(k, r)
		case iType:
			if s, ok := d.str(k, r); ok {
				t, valid := features.ParseEventType(s)
				if !valid {
					d.fail(k, "unknown event type %q (valid: %s)", truncate(s, 64), typeList)
				}
				ev.Type = t
			}
		case iTimestamp:
			ev.TS = d.timestamp(r)
		case iName:
			ev.Name, _ = d.str(k, r)
		case iValue:
			ev.Value = d.number(k, r)
		case iProps:
			ev.Props = d.props(r)
		case iConsent:
			ev.Consent = d.consent(r, consentDefault)
		}
	}
	slices.Sort(unknown)
	for _, k := range unknown {
		d.fail(k, "unknown field (valid: %s)", strings.Join(knownFields, ", "))
	}
	if vals[iType] == nil {
		d.fail(fType, "missing (valid: %s)", typeList)
	}
	if vals[iTimestamp] == nil {
		d.fail(fTimestamp, "missing (RFC 3339 string or Unix milliseconds)")
	}
	if len(d.errs) == 0 {
		clean(&ev)
		d.errs = appendValidate(d.errs, &ev, d.index, d.now, d.lim)
		return ev
	}
	// Report what else is wrong, once per field.
	for _, e := range appendValidate(nil, &ev, d.index, d.now, d.lim) {
		if !slices.ContainsFunc(d.errs, func(x FieldError) bool { return x.Field == e.Field }) {
			d.errs = append(d.errs, e)
		}
	}
	return ev
}

var typeList = func() string {
	var names []string
	for _, t := range features.EventTypes() {
		names = append(names, t.String())
	}
	return strings.Join(names, ", ")
}()

// str decodes a JSON string value; null is the empty string.
func (d *decoder) str(field string, r json.RawMessage) (string, bool) {
	s, reason := d.decodeStr(r)
	if reason != "" {
		d.fail(field, "%s", reason)
		return "", false
	}
	return s, true
}

// decodeString decodes a raw JSON string (or null) and checks it is valid UTF-8; reason is
// non-empty when it is not a string.
func decodeString(r []byte) (string, string) {
	if len(r) == 0 || r[0] != '"' {
		if string(r) == "null" {
			return "", ""
		}
		return "", "must be a string, got " + kind(r)
	}
	if !utf8.Valid(r) {
		return "", "invalid UTF-8"
	}
	inner := r[1 : len(r)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return string(inner), ""
	}
	var s string
	if err := unmarshal(r, &s); err != nil {
		return "", "invalid string: " + jsonReason(err)
	}
	if !utf8.ValidString(s) {
		return "", "invalid UTF-8"
	}
	return s, ""
}

// kind names the JSON kind of a raw value for error messages.
func kind(r []byte) string {
	if len(r) == 0 {
		return "nothing"
	}
	switch r[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	default:
		return "a number"
	}
}

func (d *decoder) number(field string, r json.RawMessage) float64 {
	if string(r) == "null" {
		return 0
	}
	if len(r) == 0 || !(r[0] == '-' || r[0] >= '0' && r[0] <= '9') {
		d.fail(field, "must be a number, got %s", kind(r))
		return 0
	}
	f, err := strconv.ParseFloat(string(r), 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		d.fail(field, "number out of range")
		return 0
	}
	return f
}

// Timestamps before this are certainly wrong (2000-01-01T00:00:00Z), whatever MaxPast says.
const minTS = 946684800000

func (d *decoder) timestamp(r json.RawMessage) int64 {
	if len(r) == 0 {
		d.fail(fTimestamp, "missing")
		return 0
	}
	switch {
	case r[0] == '"':
		s, reason := decodeString(r)
		if reason != "" {
			d.fail(fTimestamp, "%s", reason)
			return 0
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			d.fail(fTimestamp, "cannot parse %q as RFC 3339 (e.g. \"2026-01-02T15:04:05Z\")", truncate(s, 64))
			return 0
		}
		return t.UnixMilli()
	case r[0] == '-' || r[0] >= '0' && r[0] <= '9':
		if ms, err := strconv.ParseInt(string(r), 10, 64); err == nil {
			return ms
		}
		f, err := strconv.ParseFloat(string(r), 64)
		if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
			d.fail(fTimestamp, "must be whole Unix milliseconds, got %s", truncate(string(r), 32))
			return 0
		}
		return int64(f)
	default:
		d.fail(fTimestamp, "must be an RFC 3339 string or Unix milliseconds, got %s", kind(r))
		return 0
	}
}

func (d *decoder) props(r []byte) map[string]string {
	if string(r) == "null" {
		return nil
	}
	if len(r) == 0 || r[0] != '{' {
		d.fail(fProps, "must be an object, got %s", kind(r))
		return nil
	}
	nerr := len(d.errs)
	var out map[string]string
	n := 0
	eachMember(r, 0, func(kr, v []byte) {
		n++
		if n > d.lim.MaxProps {
			return
		}
		k, reason := d.decodeStr(kr)
		if reason != "" {
			d.fail(fProps, "invalid key: %s", reason)
			return
		}
		field := func() string { return "props." + truncate(k, 64) }
		var val string
		switch v[0] {
		case '"':
			s, reason := d.decodeStr(v)
			if reason != "" {
				d.fail(field(), "%s", reason)
				return
			}
			val = s
		case 'n': // null: dropped
			return
		case 't':
			val = "true"
		case 'f':
			val = "false"
		case '{', '[':
			d.fail(field(), "nested values are not supported (use flat strings, numbers or booleans)")
			return
		default:
			f, err := strconv.ParseFloat(string(v), 64)
			if err != nil || math.IsInf(f, 0) {
				d.fail(field(), "number out of range")
				return
			}
			val = strconv.FormatFloat(f, 'f', -1, 64)
		}
		if out == nil {
			out = make(map[string]string, 8)
		}
		out[k] = val
	})
	if n > d.lim.MaxProps {
		d.errs = d.errs[:nerr]
		d.fail(fProps, "%d props, the limit is %d", n, d.lim.MaxProps)
		return nil
	}
	slices.SortFunc(d.errs[nerr:], func(a, b FieldError) int { return strings.Compare(a.Field, b.Field) })
	return out
}

func (d *decoder) consent(r []byte, def bool) bool {
	switch string(r) {
	case "true":
		return true
	case "false":
		return false
	case "null":
		return def
	}
	if len(r) == 0 || r[0] != '{' {
		d.fail(fConsent, "must be a boolean or {\"analytics\": boolean}, got %s", kind(r))
		return def
	}
	out := def
	eachMember(r, 0, func(k, v []byte) {
		if string(k) != `"analytics"` {
			name, reason := decodeString(k)
			if reason != "" {
				name = "?"
			}
			d.fail("consent."+truncate(name, 64), "unknown field (valid: analytics)") // "consent." when empty
			return
		}
		switch string(v) {
		case "true":
			out = true
		case "false":
			out = false
		case "null":
		default:
			d.fail("consent.analytics", "must be a boolean, got %s", kind(v))
		}
	})
	return out
}

// truncate cuts s to at most n bytes on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// allKnown reports whether every key of m is a wire field.
func allKnown(m map[string]json.RawMessage) bool {
	n := 0
	for _, k := range knownFields {
		if _, ok := m[k]; ok {
			n++
		}
	}
	return n == len(m)
}
