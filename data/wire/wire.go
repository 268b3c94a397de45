// Package wire owns the JSON wire format of tracked events: decoding a batch (or one event,
// for JSON Lines import), validating each event with a precise error per field, and cleaning
// it (flattening props, redacting secrets in URLs, capping path and title lengths). HTTP
// ingest and file import share it, so both accept and reject exactly the same events.
//
// It imports features/ only; it must not import badger, echo, model/, training/ or serve/.
package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
	"unsafe"

	gojson "github.com/goccy/go-json"

	"github.com/nudgehq/nudge/features"
)

// Decoding is one pass over the body (DecodeBatch, decoder.scanEvent): the scanner checks the
// syntax exactly as encoding/json.Valid does (validValue and scanString in valid.go; see
// FuzzValidJSON) while it records the members of each event, then the event is decoded from
// the recorded spans. The text is read once: the string flags of the scan say which strings
// need a UTF-8 or NUL check, and quickValid skips appendValidate's checks when the scan and
// decode show nothing can fail. FuzzDecodeBatchReference checks that the result is exactly
// that of the two-pass decoder this replaced (internal/reference). The JSON library only
// decodes strings with escapes (unmarshal) and explains syntax errors. Decoding each event
// into a map of raw values with the library instead cost 4x more time and allocations
// (BenchmarkDecodeBatch; figures in bench_test.go). goccy/go-json decodes escaped strings
// faster than encoding/json; its Valid is slower than validJSON and rejects valid numbers
// out of float64 range, like 1e999.
var unmarshal = gojson.Unmarshal

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
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return Batch{}, fmt.Errorf("%w: empty body", ErrMalformed)
	}
	if body[0] != '[' && body[0] != '{' {
		return Batch{}, fmt.Errorf("%w: body must be a JSON object {\"events\": [...]} or an array", ErrMalformed)
	}
	s := batchScan{consent: consentDefault}
	s.d.init(lim, now)
	defer s.release()
	var err error // the first error of the top-level object's members
	found := false
	end := -1
	if body[0] == '[' {
		end, found = s.array(body, 0, 0), true
	} else if i := skipWS(body, 1); i < len(body) && body[i] == '}' {
		end = i + 1
	} else {
		// The members of {"events": [...]}: every value is checked (a syntax error anywhere
		// makes the body malformed, whatever else is wrong); the last "events" array is the
		// batch; the first unknown member or non-array "events" is the error.
		for i < len(body) && body[i] == '"' {
			kend, _ := scanString(body, i)
			if kend < 0 {
				break
			}
			k := body[i:kend]
			if i = skipWS(body, kend); i >= len(body) || body[i] != ':' {
				break
			}
			if i = skipWS(body, i+1); i >= len(body) {
				break
			}
			switch {
			case err != nil:
				i = validValue(body, i, 1)
			case string(k) != `"events"`:
				name, _ := decodeString(k)
				err = fmt.Errorf("%w: unknown field %q (a batch is {\"events\": [...]})", ErrMalformed, truncate(name, 64))
				i = validValue(body, i, 1)
			case body[i] != '[':
				err = fmt.Errorf("%w: \"events\" must be an array of events, got %s", ErrMalformed, kind(body[i:]))
				i = validValue(body, i, 1)
			default:
				s.reset()
				i, found = s.array(body, i, 1), true
			}
			if i < 0 {
				break
			}
			if i = skipWS(body, i); i < len(body) && body[i] == ',' {
				i = skipWS(body, i+1)
				continue
			}
			if i < len(body) && body[i] == '}' {
				end = i + 1
			}
			break
		}
	}
	if end < 0 || skipWS(body, end) != len(body) {
		return Batch{}, fmt.Errorf("%w: %s", ErrMalformed, syntaxReason(body))
	}
	if err != nil {
		return Batch{}, err
	}
	if !found {
		return Batch{}, fmt.Errorf("%w: \"events\" must be an array of events", ErrMalformed)
	}
	if s.received > lim.MaxEvents {
		return Batch{Received: s.received}, fmt.Errorf("%w: %d events, the limit is %d", ErrTooManyEvents, s.received, lim.MaxEvents)
	}
	b := Batch{Received: s.received, Errors: s.errs}
	b.Events = make([]features.Event, len(s.sc.evs), s.received)
	copy(b.Events, s.sc.evs)
	b.Index = make([]int, len(s.sc.idx), s.received)
	copy(b.Index, s.sc.idx)
	return b, nil
}

// batchScan decodes the events of a batch as it checks the body's syntax, in one pass.
// Events and indices collect in pooled scratch slices (the count is only known at the end),
// then are copied into slices of the batch's size.
type batchScan struct {
	d        decoder
	consent  bool
	sc       *scratch
	errs     []FieldError
	received int
}

type scratch struct {
	evs []features.Event
	idx []int
}

var scratchPool = sync.Pool{New: func() any { return new(scratch) }}

// reset forgets the events decoded so far (a later "events" member replaces them).
func (s *batchScan) reset() {
	if s.sc != nil {
		clear(s.sc.evs)
		s.sc.evs, s.sc.idx = s.sc.evs[:0], s.sc.idx[:0]
	}
	s.errs, s.received = nil, 0
}

// release returns the scratch slices to the pool, holding no event (unless a huge batch
// grew them: the pool keeps at most maxPooled events' room).
func (s *batchScan) release() {
	if s.sc != nil {
		s.reset()
		if cap(s.sc.evs) <= maxPooled {
			scratchPool.Put(s.sc)
		}
		s.sc = nil
	}
}

const maxPooled = 1000

// array checks the array of events starting at b[i] (a '['), inside depth open containers,
// decoding its first lim.MaxEvents elements and counting all of them. It returns the index
// just past the array, or -1 when the text is not valid JSON.
func (s *batchScan) array(b []byte, i, depth int) int {
	if depth >= maxDepth {
		return -1
	}
	if s.sc == nil {
		s.sc = scratchPool.Get().(*scratch)
	}
	d := &s.d
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == ']' {
		return i + 1
	}
	for i < len(b) {
		idx := s.received
		s.received++
		switch {
		case idx >= d.lim.MaxEvents: // too many: only checked
			i = validValue(b, i, depth+1)
		case b[i] != '{':
			d.reset(idx)
			d.fail("event", "must be a JSON object, got %s", kind(b[i:]))
			s.errs = append(s.errs, d.errs...)
			i = validValue(b, i, depth+1)
		default:
			d.reset(idx)
			if i = d.scanEvent(b, i, depth+1); i < 0 {
				return -1
			}
			// Decoded in place: an Event is 150 bytes.
			n := len(s.sc.evs)
			s.sc.evs = slices.Grow(s.sc.evs, 1)[:n+1]
			d.event(&s.sc.evs[n], s.consent)
			if len(d.errs) > 0 {
				s.sc.evs[n] = features.Event{}
				s.sc.evs = s.sc.evs[:n]
				s.errs = append(s.errs, d.errs...)
				break
			}
			s.sc.idx = append(s.sc.idx, idx)
		}
		if i < 0 {
			return -1
		}
		i = skipWS(b, i)
		if i >= len(b) {
			return -1
		}
		if b[i] == ']' {
			return i + 1
		}
		if b[i] != ',' {
			return -1
		}
		i = skipWS(b, i+1)
	}
	return -1
}

// DecodeEvent decodes and validates one event object (a line of a JSON Lines file). Errors
// carry Index 0.
func DecodeEvent(raw []byte, now time.Time, lim Limits, consentDefault bool) (features.Event, []FieldError) {
	var d decoder
	d.init(lim.withDefaults(), now)
	d.reset(0)
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '{' {
		if d.scanEvent(raw, 0, 0) != len(raw) {
			return features.Event{}, []FieldError{{Field: "event", Reason: "not valid JSON: " + syntaxReason(raw)}}
		}
	} else {
		if !validJSON(raw) {
			return features.Event{}, []FieldError{{Field: "event", Reason: "not valid JSON: " + syntaxReason(raw)}}
		}
		d.fail("event", "must be a JSON object, got %s", kind(raw))
		return features.Event{}, d.errs
	}
	var ev features.Event
	d.event(&ev, consentDefault)
	if len(d.errs) > 0 {
		return features.Event{}, d.errs
	}
	return ev, nil
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

// maxScanProps is how many props members scanEvent records; an event with more is decoded
// from its props' text again (eachMember).
const maxScanProps = 16

// member is a recorded member of an object: raw key and value and their string flags.
type member struct {
	k, v   []byte
	kf, vf uint8
}

// decoder decodes one event at a time, collecting its errors.
type decoder struct {
	index int
	lim   Limits
	now   time.Time
	// hi and lo are now+MaxFuture and now-MaxPast, the bounds appendValidate checks.
	hi, lo time.Time
	id     string
	errs   []FieldError
	// strs backs the event's unescaped strings (ids, name, props): one allocation per
	// event instead of one per string. Bytes are only ever appended within its capacity,
	// never overwritten once a string holds them, and each event gets a new one (see keep
	// and unescape).
	strs []byte

	// Found by scanEvent: the raw value and string flags of each known field (the last
	// one when repeated), the raw keys of unknown fields, and the members of the last
	// props object (the first maxScanProps of nprops).
	vals    [numFields][]byte
	flags   [numFields]uint8
	unknown [][]byte
	props   [maxScanProps]member
	nprops  int

	// What the decoding saw, for quickValid: dirty when a string may hold non-ASCII or NUL
	// bytes; of the props set, the longest key or value, whether a key was empty, and the
	// last value of each cleaned prop (urlProps, then "title"; bit j of cleanSet).
	dirty     bool
	emptyKey  bool
	propMax   int
	cleanSet  uint8
	cleanVals [4]string
}

// init sets the limits and time of a decoder.
func (d *decoder) init(lim Limits, now time.Time) {
	d.lim, d.now = lim, now
	d.hi, d.lo = now.Add(lim.MaxFuture), now.Add(-lim.MaxPast)
}

// reset prepares the decoder for the event at index.
func (d *decoder) reset(index int) {
	d.index, d.id, d.errs, d.strs = index, "", d.errs[:0], nil
	d.vals = [numFields][]byte{}
	d.unknown = d.unknown[:0]
	d.nprops = 0
	d.dirty, d.emptyKey, d.propMax, d.cleanSet = false, false, 0, 0
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
// event's string block. fl are the string's flags from scanString (strAny if not scanned).
func (d *decoder) decodeStr(r []byte, fl uint8) (string, string) {
	if len(r) < 2 || r[0] != '"' {
		return decodeString(r)
	}
	inner := r[1 : len(r)-1]
	switch {
	case fl == 0:
		return d.keep(inner), ""
	case fl&strAny != 0:
		d.dirty = true
		if bytes.IndexByte(inner, '\\') >= 0 {
			return decodeString(r)
		}
		if !utf8.Valid(r) {
			return "", "invalid UTF-8"
		}
		return d.keep(inner), ""
	}
	if fl&strHigh != 0 {
		d.dirty = true
		if !utf8.Valid(r) {
			return "", "invalid UTF-8"
		}
	}
	if fl&strEscape == 0 {
		return d.keep(inner), ""
	}
	if s, ok := d.unescape(inner); ok {
		return s, ""
	}
	d.dirty = true
	return decodeString(r)
}

// unescape returns the text of a string's inner raw bytes, kept in the event's string block,
// when its escapes are all one-byte ones (\" \\ \/ \b \f \n \r \t: every JSON decoder agrees
// on them). On a \u escape it gives up (ok false), and the bytes it appended are dropped:
// no string holds them yet.
func (d *decoder) unescape(inner []byte) (s string, ok bool) {
	n := len(d.strs)
	if n+len(inner) > cap(d.strs) {
		return "", false
	}
	for i := 0; i < len(inner); i++ {
		c := inner[i]
		if c == '\\' {
			i++ // scanString checked that an escape has its letter
			switch c = inner[i]; c {
			case 'b':
				c = '\b'
			case 'f':
				c = '\f'
			case 'n':
				c = '\n'
			case 'r':
				c = '\r'
			case 't':
				c = '\t'
			case 'u':
				d.strs = d.strs[:n]
				return "", false
			}
		}
		d.strs = append(d.strs, c)
	}
	if len(d.strs) == n {
		return "", true
	}
	return unsafe.String(&d.strs[n], len(d.strs)-n), true
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

// scanEvent checks the object starting at b[i] (a '{'), inside depth open containers, and
// records its members (d.vals, d.flags, d.unknown, d.props). It returns the index just
// past the object, or -1 when the text is not valid JSON.
func (d *decoder) scanEvent(b []byte, i, depth int) int {
	if depth >= maxDepth {
		return -1
	}
	depth++
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1
	}
	for i < len(b) && b[i] == '"' {
		kend, _ := scanString(b, i)
		if kend < 0 {
			return -1
		}
		k := b[i:kend]
		if i = skipWS(b, kend); i >= len(b) || b[i] != ':' {
			return -1
		}
		if i = skipWS(b, i+1); i >= len(b) {
			return -1
		}
		f := fieldIndex(k)
		start := i
		var fl uint8
		switch c := b[i]; {
		case c == '"':
			i, fl = scanString(b, i)
		case c == '{' && f == iProps:
			i = d.scanProps(b, i, depth)
		case c == '-' || c >= '0' && c <= '9':
			i = numberValid(b, i)
		default:
			i = validValue(b, i, depth)
		}
		if i < 0 {
			return -1
		}
		if f >= 0 {
			d.vals[f], d.flags[f] = b[start:i], fl
		} else {
			d.unknown = append(d.unknown, k)
		}
		if i = skipWS(b, i); i >= len(b) {
			return -1
		}
		switch b[i] {
		case '}':
			return i + 1
		case ',':
			i = skipWS(b, i+1)
		default:
			return -1
		}
	}
	return -1
}

// scanProps checks the object starting at b[i] (a props value), inside depth open
// containers, and records its members in d.props and their count in d.nprops.
func (d *decoder) scanProps(b []byte, i, depth int) int {
	if depth >= maxDepth {
		return -1
	}
	d.nprops = 0
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1
	}
	for i < len(b) && b[i] == '"' {
		kend, kf := scanString(b, i)
		if kend < 0 {
			return -1
		}
		k := b[i:kend]
		if i = skipWS(b, kend); i >= len(b) || b[i] != ':' {
			return -1
		}
		if i = skipWS(b, i+1); i >= len(b) {
			return -1
		}
		start := i
		var vf uint8
		if b[i] == '"' {
			i, vf = scanString(b, i)
		} else {
			i = validValue(b, i, depth+1)
		}
		if i < 0 {
			return -1
		}
		if d.nprops < len(d.props) {
			d.props[d.nprops] = member{k: k, v: b[start:i], kf: kf, vf: vf}
		}
		d.nprops++
		if i = skipWS(b, i); i >= len(b) {
			return -1
		}
		switch b[i] {
		case '}':
			return i + 1
		case ',':
			i = skipWS(b, i+1)
		default:
			return -1
		}
	}
	return -1
}

// event decodes the event scanEvent recorded into *ev.
func (d *decoder) event(ev *features.Event, consentDefault bool) {
	*ev = features.Event{Consent: consentDefault}
	vals := &d.vals
	// The string block holds at most the raw text of the strings kept.
	n := 0
	for _, i := range [...]int{iEventID, iSessionID, iAnonymousID, iUserID, iName} {
		n += len(vals[i])
	}
	if r := vals[iProps]; len(r) > 0 && r[0] == '{' {
		if d.nprops > len(d.props) {
			n += len(r)
		} else {
			for _, m := range d.props[:d.nprops] {
				n += len(m.k) + len(m.v)
			}
		}
	}
	d.strs = make([]byte, 0, n)
	var unknown []string
	for _, k := range d.unknown {
		name, reason := decodeString(k)
		if reason != "" {
			name = strings.ToValidUTF8(string(k[1:len(k)-1]), "?")
		}
		if name == "" {
			name = `""`
		}
		unknown = append(unknown, truncate(name, 64))
	}
	// The event id first, so that later errors can name it.
	if r := vals[iEventID]; r != nil {
		ev.EventID, _ = d.str(fEventID, r, d.flags[iEventID])
		d.id = ev.EventID
		if d.flags[iEventID] != 0 && !utf8.ValidString(d.id) || len(d.id) > d.lim.MaxString {
			d.id = ""
		}
	}
	for i := iSessionID; i < numFields; i++ {
		r := vals[i]
		if r == nil {
			continue
		}
		k, fl := knownFields[i], d.flags[i]
		switch i {
		case iSessionID:
			ev.SessionID, _ = d.str(k, r, fl)
		case iAnonymousID:
			ev.AnonymousID, _ = d.str(k, r, fl)
		case iUserID:
			ev.UserID, _ = d.str(k, r, fl)
		case iType:
			var s string
			ok := true
			if fl == 0 && r[0] == '"' {
				// Only compared and copied: no need to keep it.
				s = unsafe.String(unsafe.SliceData(r[1:]), len(r)-2)
			} else {
				s, ok = d.str(k, r, fl)
			}
			if ok {
				t, valid := features.ParseEventType(s)
				if !valid {
					d.fail(k, "unknown event type %q (valid: %s)", truncate(s, 64), typeList)
				}
				ev.Type = t
			}
		case iTimestamp:
			ev.TS = d.timestamp(r)
		case iName:
			ev.Name, _ = d.str(k, r, fl)
		case iValue:
			ev.Value = d.number(k, r)
		case iProps:
			ev.Props = d.decodeProps(r)
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
		d.clean(ev)
		if !d.quickValid(ev) {
			d.errs = appendValidate(d.errs, ev, d.index, d.now, d.lim)
		}
		return
	}
	// Report what else is wrong, once per field.
	for _, e := range appendValidate(nil, ev, d.index, d.now, d.lim) {
		if !slices.ContainsFunc(d.errs, func(x FieldError) bool { return x.Field == e.Field }) {
			d.errs = append(d.errs, e)
		}
	}
}

// clean normalises ev's props in place with cleanURL and cleanTitle, from the values
// decodeProps noted (the last of each key): no map lookups, and no write when a value is
// already clean.
func (d *decoder) clean(ev *features.Event) {
	if d.cleanSet == 0 {
		return
	}
	for j, k := range urlProps {
		if d.cleanSet&(1<<j) == 0 {
			continue
		}
		v := d.cleanVals[j]
		if len(v) <= MaxURLLen && strings.IndexByte(v, '?') < 0 && strings.IndexByte(v, '#') < 0 {
			continue // cleanURL returns v
		}
		if c := cleanURL(v); len(c) != len(v) || unsafe.StringData(c) != unsafe.StringData(v) {
			ev.Props[k] = c
			d.propMax = max(d.propMax, len(c))
		}
	}
	if d.cleanSet&(1<<len(urlProps)) != 0 && len(d.cleanVals[len(urlProps)]) > MaxTitleLen {
		ev.Props["title"] = cleanTitle(d.cleanVals[len(urlProps)])
	}
}

// quickValid reports that appendValidate would find nothing wrong with ev, decoded without
// errors and cleaned, from what the decoding saw. False means "check": appendValidate then
// says what is wrong, if anything.
func (d *decoder) quickValid(ev *features.Event) bool {
	m := d.lim.MaxString
	switch {
	case d.dirty || d.emptyKey || d.propMax > m || len(ev.Props) > d.lim.MaxProps:
		return false
	case ev.EventID == "" || ev.SessionID == "" || ev.AnonymousID == "":
		return false
	case len(ev.EventID) > m || len(ev.SessionID) > m || len(ev.AnonymousID) > m || len(ev.UserID) > m || len(ev.Name) > m:
		return false
	case !ev.Type.Valid():
		return false
	case ev.Type == features.Identify && ev.UserID == "":
		return false
	case (ev.Type == features.MicroConversion || ev.Type == features.MacroConversion || ev.Type == features.Custom) && ev.Name == "":
		return false
	}
	t := time.UnixMilli(ev.TS)
	return ev.TS >= minTS && !t.After(d.hi) && !t.Before(d.lo)
}

var typeList = func() string {
	var names []string
	for _, t := range features.EventTypes() {
		names = append(names, t.String())
	}
	return strings.Join(names, ", ")
}()

// str decodes a JSON string value; null is the empty string.
func (d *decoder) str(field string, r []byte, fl uint8) (string, bool) {
	s, reason := d.decodeStr(r, fl)
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

// smallUint parses r when it is 1 to 18 decimal digits (what strconv.ParseInt returns for
// them, without its overhead: a timestamp is 13 digits).
func smallUint(r []byte) (int64, bool) {
	if len(r) == 0 || len(r) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range r {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// smallInt reports whether r is an integer of 1 to 15 digits (an optional minus, no leading
// zero): a float64 holds it exactly and strconv.FormatFloat(f, 'f', -1, 64) writes it back
// as r, "-0" included.
func smallInt(r []byte) bool {
	if len(r) > 0 && r[0] == '-' {
		r = r[1:]
	}
	if len(r) == 0 || len(r) > 15 || r[0] == '0' && len(r) > 1 {
		return false
	}
	for _, c := range r {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
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
		if ms, ok := smallUint(r); ok {
			return ms
		}
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

// decodeProps decodes the props value r: the members scanProps recorded, or r's text again
// when there were more than it records.
func (d *decoder) decodeProps(r []byte) map[string]string {
	if string(r) == "null" {
		return nil
	}
	if len(r) == 0 || r[0] != '{' {
		d.fail(fProps, "must be an object, got %s", kind(r))
		return nil
	}
	if d.nprops > d.lim.MaxProps {
		d.fail(fProps, "%d props, the limit is %d", d.nprops, d.lim.MaxProps)
		return nil
	}
	nerr := len(d.errs)
	var out map[string]string
	if d.nprops <= len(d.props) {
		for _, m := range d.props[:d.nprops] {
			d.prop(&out, m.k, m.v, m.kf, m.vf)
		}
	} else {
		eachMember(r, 0, func(k, v []byte) { d.prop(&out, k, v, strAny, strAny) })
	}
	if len(d.errs) > nerr+1 {
		slices.SortFunc(d.errs[nerr:], func(a, b FieldError) int { return strings.Compare(a.Field, b.Field) })
	}
	return out
}

// prop decodes one member of props into *out (made on the first), noting what quickValid
// and clean need.
func (d *decoder) prop(out *map[string]string, kr, v []byte, kf, vf uint8) {
	k, reason := d.decodeStr(kr, kf)
	if reason != "" {
		d.fail(fProps, "invalid key: %s", reason)
		return
	}
	var val string
	switch v[0] {
	case '"':
		s, reason := d.decodeStr(v, vf)
		if reason != "" {
			d.fail("props."+truncate(k, 64), "%s", reason)
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
		d.fail("props."+truncate(k, 64), "nested values are not supported (use flat strings, numbers or booleans)")
		return
	default:
		if smallInt(v) { // FormatFloat(ParseFloat(v)) is v: keep it without either
			val = d.keep(v)
			break
		}
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil || math.IsInf(f, 0) {
			d.fail("props."+truncate(k, 64), "number out of range")
			return
		}
		val = strconv.FormatFloat(f, 'f', -1, 64)
	}
	if *out == nil {
		*out = make(map[string]string, min(d.nprops, d.lim.MaxProps))
	}
	(*out)[k] = val
	d.emptyKey = d.emptyKey || k == ""
	d.propMax = max(d.propMax, len(k), len(val))
	j := -1 // the index of k in urlProps, then "title" (cleanVals)
	switch k {
	case "path":
		j = 0
	case "url":
		j = 1
	case "referrer":
		j = 2
	case "title":
		j = 3
	}
	if j >= 0 {
		d.cleanSet |= 1 << j
		d.cleanVals[j] = val
	}
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
