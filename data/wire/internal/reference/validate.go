package reference

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nudgehq/nudge/features"
)

// Validate checks a decoded event against the rules of the wire format and the limits; it
// returns nil for a valid event. Errors carry Index 0 and the event's id.
func Validate(ev *features.Event, now time.Time, lim Limits) []FieldError {
	return appendValidate(nil, ev, 0, now, lim.withDefaults())
}

func appendValidate(errs []FieldError, ev *features.Event, index int, now time.Time, lim Limits) []FieldError {
	id := ev.EventID
	if !validString(id) || len(id) > lim.MaxString {
		id = ""
	}
	fail := func(field, format string, args ...any) {
		errs = append(errs, FieldError{Index: index, EventID: id, Field: field, Reason: fmt.Sprintf(format, args...)})
	}
	str := func(field, s string, required bool) {
		switch {
		case s == "" && required:
			fail(field, "missing")
		case len(s) > lim.MaxString:
			fail(field, "too long: %d bytes, the limit is %d", len(s), lim.MaxString)
		case !validString(s):
			fail(field, "invalid UTF-8 or NUL byte")
		}
	}
	str(fEventID, ev.EventID, true)
	str(fSessionID, ev.SessionID, true)
	str(fAnonymousID, ev.AnonymousID, true)
	str(fUserID, ev.UserID, ev.Type == features.Identify)
	switch ev.Type {
	case features.MicroConversion, features.MacroConversion, features.Custom:
		str(fName, ev.Name, true)
	default:
		str(fName, ev.Name, false)
	}
	if !ev.Type.Valid() {
		fail(fType, "unknown event type %q (valid: %s)", ev.Type.String(), typeList)
	}
	t := time.UnixMilli(ev.TS)
	switch {
	case ev.TS < minTS:
		fail(fTimestamp, "%s is before 2000-01-01", t.UTC().Format(time.RFC3339))
	case t.After(now.Add(lim.MaxFuture)):
		fail(fTimestamp, "%s is more than %s in the future", t.UTC().Format(time.RFC3339Nano), lim.MaxFuture)
	case t.Before(now.Add(-lim.MaxPast)):
		fail(fTimestamp, "%s is more than %s in the past", t.UTC().Format(time.RFC3339Nano), lim.MaxPast)
	}
	if len(ev.Props) > lim.MaxProps {
		fail(fProps, "%d props, the limit is %d", len(ev.Props), lim.MaxProps)
	}
	if len(ev.Props) > 0 && !propsOK(ev.Props, lim) {
		keys := make([]string, 0, len(ev.Props))
		for k := range ev.Props {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			v := ev.Props[k]
			field := "props." + truncate(strings.ToValidUTF8(k, "?"), 64)
			switch {
			case k == "":
				fail("props", "empty key")
			case len(k) > lim.MaxString:
				fail(field, "key too long: %d bytes, the limit is %d", len(k), lim.MaxString)
			case !validString(k):
				fail(field, "invalid UTF-8 or NUL byte in key")
			case len(v) > lim.MaxString:
				fail(field, "too long: %d bytes, the limit is %d", len(v), lim.MaxString)
			case !validString(v):
				fail(field, "invalid UTF-8 or NUL byte")
			}
		}
	}
	return errs
}

// propsOK is the allocation-free fast path of the props checks.
func propsOK(p map[string]string, lim Limits) bool {
	for k, v := range p {
		if k == "" || len(k) > lim.MaxString || len(v) > lim.MaxString || !validString(k) || !validString(v) {
			return false
		}
	}
	return true
}
