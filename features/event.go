package features

import (
	"fmt"
	"time"
)

// EventType is the kind of a tracked event.
type EventType uint8

// The event types a site may send. The zero value is not a valid type.
const (
	TypeUnknown EventType = iota
	PageView
	Click
	Error
	MicroConversion
	MacroConversion
	Exposure
	Identify
	Custom
	numEventTypes
)

var typeNames = [...]string{
	TypeUnknown:     "unknown",
	PageView:        "page_view",
	Click:           "click",
	Error:           "error",
	MicroConversion: "micro_conversion",
	MacroConversion: "macro_conversion",
	Exposure:        "exposure",
	Identify:        "identify",
	Custom:          "custom",
}

// EventTypes lists every valid event type in declaration order.
func EventTypes() []EventType {
	out := make([]EventType, 0, numEventTypes-1)
	for t := PageView; t < numEventTypes; t++ {
		out = append(out, t)
	}
	return out
}

// String returns the wire name of t ("page_view", ...).
func (t EventType) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return fmt.Sprintf("EventType(%d)", uint8(t))
}

// Valid reports whether t is one of the defined event types.
func (t EventType) Valid() bool { return t > TypeUnknown && t < numEventTypes }

// ParseEventType maps a wire name to its type.
func ParseEventType(s string) (EventType, bool) {
	for t := PageView; t < numEventTypes; t++ {
		if typeNames[t] == s {
			return t, true
		}
	}
	return TypeUnknown, false
}

// Event is one thing a visitor did, as validated at ingest. It is the unit of the event log
// and the input of the feature fold.
//
// Well-known Props keys (all optional; values are flat strings): "path" or "url" (page),
// "title", "referrer", "utm_source", "utm_medium", "utm_campaign", "device" ("mobile",
// "tablet", "desktop"), "error_kind" ("client", "form"), "engaged_ms", "scroll_pct",
// "decision_id" and "intervention" (on exposures), "page_group".
type Event struct {
	EventID     string // unique per site; retries with the same id are deduplicated
	SessionID   string // the client's session id
	AnonymousID string // the visitor's cookie id
	UserID      string // set when the visitor is identified (always on Identify)
	Type        EventType
	TS          int64 // Unix milliseconds, UTC
	Name        string
	Value       float64
	Props       map[string]string
	Consent     bool // analytics consent: false means "live session only, not logged"

	// Session is the server-side session this event belongs to, assigned at ingest:
	// SessionID for the first visit, SessionID + "~N" (N = 2, 3, ...) for later visits that
	// reuse the client id after the inactivity timeout. Empty before ingest.
	Session string
}

// Time returns TS as a time.Time in UTC.
func (e *Event) Time() time.Time { return time.UnixMilli(e.TS).UTC() }
