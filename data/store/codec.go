package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/nudgehq/nudge/features"
)

// ErrCorrupt is returned when a stored value cannot be decoded.
var ErrCorrupt = errors.New("store: corrupt value")

const (
	eventCodecV1   byte = 1
	sessionCodecV1 byte = 1

	eventFlagConsent byte = 1 << 0
)

// appendEvent appends the v1 encoding of ev (everything but the site, which is in the key):
//
//	version | type | flags | ts varint | value float64 LE | strings (uvarint len + bytes):
//	event_id, session_id, anonymous_id, user_id, name, session | props count, then sorted
//	key/value string pairs.
func appendEvent(b []byte, ev *features.Event) []byte {
	var flags byte
	if ev.Consent {
		flags |= eventFlagConsent
	}
	b = append(b, eventCodecV1, byte(ev.Type), flags)
	b = binary.AppendVarint(b, ev.TS)
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(ev.Value))
	b = appendStr(b, ev.EventID)
	b = appendStr(b, ev.SessionID)
	b = appendStr(b, ev.AnonymousID)
	b = appendStr(b, ev.UserID)
	b = appendStr(b, ev.Name)
	b = appendStr(b, ev.Session)
	b = binary.AppendUvarint(b, uint64(len(ev.Props)))
	switch len(ev.Props) {
	case 0:
	case 1:
		for k, v := range ev.Props {
			b = appendStr(b, k)
			b = appendStr(b, v)
		}
	default:
		var buf [16]string
		keys := buf[:0]
		for k := range ev.Props {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			b = appendStr(b, k)
			b = appendStr(b, ev.Props[k])
		}
	}
	return b
}

// decodeEvent decodes a value written by appendEvent.
func decodeEvent(b []byte, ev *features.Event) error {
	if len(b) < 3 || b[0] != eventCodecV1 {
		return fmt.Errorf("%w: event codec version", ErrCorrupt)
	}
	ev.Type = features.EventType(b[1])
	ev.Consent = b[2]&eventFlagConsent != 0
	b = b[3:]
	ts, n := binary.Varint(b)
	if n <= 0 || len(b) < n+8 {
		return fmt.Errorf("%w: event ts", ErrCorrupt)
	}
	ev.TS = ts
	ev.Value = math.Float64frombits(binary.LittleEndian.Uint64(b[n:]))
	b = b[n+8:]
	var err error
	for _, dst := range []*string{&ev.EventID, &ev.SessionID, &ev.AnonymousID, &ev.UserID, &ev.Name, &ev.Session} {
		if *dst, b, err = readStr(b); err != nil {
			return fmt.Errorf("%w: event field", ErrCorrupt)
		}
	}
	np, k := binary.Uvarint(b)
	if k <= 0 || np > uint64(len(b)) {
		return fmt.Errorf("%w: event props", ErrCorrupt)
	}
	b = b[k:]
	ev.Props = nil
	if np > 0 {
		ev.Props = make(map[string]string, np)
		for range np {
			var pk, pv string
			if pk, b, err = readStr(b); err != nil {
				return fmt.Errorf("%w: event prop key", ErrCorrupt)
			}
			if pv, b, err = readStr(b); err != nil {
				return fmt.Errorf("%w: event prop value", ErrCorrupt)
			}
			ev.Props[pk] = pv
		}
	}
	return nil
}

// sessionRecord is what the store keeps per server session: sessionisation metadata, the
// visitor history the state was started with, and the encoded features.State.
type sessionRecord struct {
	Client, Anon, User string
	Fingerprint        string // schema fingerprint the state was built with
	Visit              int    // 1 for the client id's first visit, N for "~N"
	StartTS, LastTS    int64
	HistTS             int64 // time the history was computed as of (first event's time)
	Events             int   // events folded (logged or not)
	LoggedEvents       int
	Converted          bool
	Withdrawn          bool // a Consent=false event was seen: nothing more is logged
	Indexed            bool // first event was logged: the session is in the time/visitor indexes
	Hist               features.VisitorHistory
	State              []byte
}

const (
	recFlagConverted byte = 1 << iota
	recFlagWithdrawn
	recFlagIndexed
)

// sessionRecordSize is an upper bound of the length of appendSession's encoding of r (each
// varint at its longest), so that the record is allocated once.
func sessionRecordSize(r *sessionRecord) int {
	const varints = 12 // visit .. state length
	return 2 + 4*binary.MaxVarintLen64 + len(r.Client) + len(r.Anon) + len(r.User) + len(r.Fingerprint) +
		varints*binary.MaxVarintLen64 + 8 + len(r.State)
}

func appendSession(b []byte, r *sessionRecord) []byte {
	var flags byte
	if r.Converted {
		flags |= recFlagConverted
	}
	if r.Withdrawn {
		flags |= recFlagWithdrawn
	}
	if r.Indexed {
		flags |= recFlagIndexed
	}
	b = append(b, sessionCodecV1, flags)
	b = appendStr(b, r.Client)
	b = appendStr(b, r.Anon)
	b = appendStr(b, r.User)
	b = appendStr(b, r.Fingerprint)
	b = binary.AppendUvarint(b, uint64(r.Visit))
	b = binary.AppendVarint(b, r.StartTS)
	b = binary.AppendVarint(b, r.LastTS)
	b = binary.AppendVarint(b, r.HistTS)
	b = binary.AppendUvarint(b, uint64(r.Events))
	b = binary.AppendUvarint(b, uint64(r.LoggedEvents))
	h := &r.Hist
	b = binary.AppendUvarint(b, uint64(h.Sessions7d))
	b = binary.AppendUvarint(b, uint64(h.Sessions30d))
	b = binary.AppendVarint(b, h.LastSessionTS)
	b = binary.AppendUvarint(b, uint64(h.Conversions))
	b = binary.AppendVarint(b, h.LastConversionTS)
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(h.Monetary))
	b = binary.AppendUvarint(b, uint64(len(r.State)))
	return append(b, r.State...)
}

func decodeSession(b []byte, r *sessionRecord) error {
	if len(b) < 2 || b[0] != sessionCodecV1 {
		return fmt.Errorf("%w: session codec version", ErrCorrupt)
	}
	flags := b[1]
	r.Converted = flags&recFlagConverted != 0
	r.Withdrawn = flags&recFlagWithdrawn != 0
	r.Indexed = flags&recFlagIndexed != 0
	b = b[2:]
	var err error
	for _, dst := range []*string{&r.Client, &r.Anon, &r.User, &r.Fingerprint} {
		if *dst, b, err = readStr(b); err != nil {
			return fmt.Errorf("%w: session field", ErrCorrupt)
		}
	}
	d := decoder{b: b}
	r.Visit = int(d.uvarint())
	r.StartTS = d.varint()
	r.LastTS = d.varint()
	r.HistTS = d.varint()
	r.Events = int(d.uvarint())
	r.LoggedEvents = int(d.uvarint())
	r.Hist.Sessions7d = int(d.uvarint())
	r.Hist.Sessions30d = int(d.uvarint())
	r.Hist.LastSessionTS = d.varint()
	r.Hist.Conversions = int(d.uvarint())
	r.Hist.LastConversionTS = d.varint()
	r.Hist.Monetary = math.Float64frombits(d.u64())
	n := d.uvarint()
	if d.bad || uint64(len(d.b)) < n {
		return fmt.Errorf("%w: session record", ErrCorrupt)
	}
	r.State = d.b[:n:n]
	return nil
}

// sessionState returns the schema fingerprint and the encoded features.State of an encoded
// session record without decoding (or allocating) the rest: the read path of Features. Both
// alias b.
func sessionState(b []byte) (fingerprint, state []byte, err error) {
	if len(b) < 2 || b[0] != sessionCodecV1 {
		return nil, nil, fmt.Errorf("%w: session codec version", ErrCorrupt)
	}
	d := decoder{b: b[2:]}
	for range 3 { // client, anonymous and user ids
		d.skip(d.uvarint())
	}
	n := d.uvarint()
	if d.bad || uint64(len(d.b)) < n {
		return nil, nil, fmt.Errorf("%w: session fingerprint", ErrCorrupt)
	}
	fingerprint = d.b[:n:n]
	d.b = d.b[n:]
	// visit, start, last, hist ts, events, logged events; history: 2 counts, ts, count, ts
	for range 11 {
		d.uvarint() // a varint's length is the same read as uvarint
	}
	d.u64() // history monetary value
	n = d.uvarint()
	if d.bad || uint64(len(d.b)) < n {
		return nil, nil, fmt.Errorf("%w: session record", ErrCorrupt)
	}
	return fingerprint, d.b[:n:n], nil
}

type decoder struct {
	b   []byte
	bad bool
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.bad = true
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) skip(n uint64) {
	if d.bad || uint64(len(d.b)) < n {
		d.bad = true
		return
	}
	d.b = d.b[n:]
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.bad = true
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) u64() uint64 {
	if len(d.b) < 8 {
		d.bad = true
		return 0
	}
	v := binary.LittleEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}
