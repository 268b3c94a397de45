package features

import (
	"slices"
	"strconv"
	"strings"
)

// ActiveGapCapMS caps each gap between consecutive events counted as active time (5 minutes):
// a longer pause counts as 5 minutes of activity, not as its full length.
const ActiveGapCapMS = 5 * 60 * 1000

// MaxUniquePages bounds the set of distinct pages a State remembers: unique_pages is exact up to
// this many and saturates there.
const MaxUniquePages = 64

// maxEngagedMS bounds one event's engaged_ms (a day) so a broken client cannot dominate.
const maxEngagedMS = 24 * 60 * 60 * 1000

// State is a session's running feature state. Its zero value is not ready: use NewState (or
// UnmarshalBinary). It is a plain value: copying it copies everything but the action counters,
// which share their backing array; use Clone for an independent copy.
type State struct {
	fp   uint64 // schema fingerprint prefix; Vector refuses a state of another schema
	hist VisitorHistory

	events  uint32
	startTS int64 // smallest event TS seen (valid when events > 0)
	maxTS   int64 // largest event TS seen

	activeMS  int64 // sum of inter-event gaps, each capped at ActiveGapCapMS
	engagedMS int64 // sum of props engaged_ms
	maxScroll float64

	pageViews, clicks, exposures   uint32
	errors, errClient, errForm     uint32
	cartAdds                       uint32
	cartValue                      float64
	cartPropTS                     int64 // TS of the latest props cart_value applied
	hasCartProp, converted, identd bool

	device   uint8
	hasDev   bool
	deviceTS int64

	hasLanding              bool
	landingTS               int64
	channel                 uint8
	srcH, medH, campH, grpH uint64

	nPages uint8
	pages  [MaxUniquePages]uint64 // sorted hashes of distinct page paths, [0:nPages]

	actions []uint32 // per milestone then secondary action: count
}

// NewState starts the state of a session whose visitor has the given history.
func (s *Schema) NewState(hist VisitorHistory) State {
	return State{fp: s.fp, hist: hist, actions: make([]uint32, s.nActions)}
}

// Clone returns a copy of st that shares no memory with it.
func (st *State) Clone() State {
	c := *st
	c.actions = slices.Clone(st.actions)
	if c.actions == nil {
		c.actions = []uint32{}
	}
	return c
}

// StartTS is the time of the session's earliest event (Unix ms), 0 before any event.
func (st *State) StartTS() int64 {
	if st.events == 0 {
		return 0
	}
	return st.startTS
}

// LastTS is the time of the session's latest event (Unix ms), 0 before any event.
func (st *State) LastTS() int64 {
	if st.events == 0 {
		return 0
	}
	return st.maxTS
}

// Events is the number of events folded.
func (st *State) Events() int { return int(st.events) }

// History is the visitor history the state was started with.
func (st *State) History() VisitorHistory { return st.hist }

// Converted reports whether a macro conversion happened in the session.
func (st *State) Converted() bool { return st.converted }

// Fold folds one event into the session state. It is pure, does not look at Consent (the
// caller decides what is stored), and tolerates events out of time order: a late event never
// makes a duration negative (see the package doc for what it adds).
func (s *Schema) Fold(st *State, ev *Event) {
	ts := ev.TS
	switch {
	case st.events == 0:
		st.startTS, st.maxTS = ts, ts
	case ts > st.maxTS:
		st.activeMS += min(ts-st.maxTS, ActiveGapCapMS)
		st.maxTS = ts
	case ts < st.startTS:
		st.activeMS += min(st.startTS-ts, ActiveGapCapMS)
		st.startTS = ts
	}
	st.events++
	if ev.UserID != "" {
		st.identd = true
	}

	props := ev.Props
	byName := false
	switch ev.Type {
	case PageView:
		st.pageViews++
		p, _ := pagePath(props)
		st.addPage(hashBytes(p))
	case Click:
		st.clicks++
		byName = true
	case Error:
		st.countError(props["error_kind"])
	case MicroConversion, Custom:
		byName = true
	case MacroConversion:
		st.converted = true
	case Exposure:
		st.exposures++
	case Identify:
		st.identd = true
	}
	if byName && ev.Name != "" {
		s.foldName(st, ev)
	}
	if len(props) == 0 {
		return
	}
	if ev.Type != Error {
		if k, ok := props["error_kind"]; ok {
			st.countError(k)
		}
	}
	if v, ok := props["engaged_ms"]; ok {
		if f, ok := parseNonNeg(v); ok {
			st.engagedMS += int64(min(f, maxEngagedMS))
		}
	}
	if v, ok := props["scroll_pct"]; ok {
		if f, ok := parseNonNeg(v); ok {
			st.maxScroll = max(st.maxScroll, min(f, 100))
		}
	}
	if v, ok := props["cart_value"]; ok {
		if f, ok := parseNonNeg(v); ok && (!st.hasCartProp || ts >= st.cartPropTS) {
			st.cartValue, st.cartPropTS, st.hasCartProp = f, ts, true
		}
	}
	if v, ok := props["device"]; ok {
		if d := parseDevice(v); d != deviceUnknown && (!st.hasDev || ts < st.deviceTS) {
			st.device, st.deviceTS, st.hasDev = d, ts, true
		}
	}
	if !st.hasLanding || ts < st.landingTS {
		s.foldLanding(st, ev)
	}
}

func (s *Schema) foldName(st *State, ev *Event) {
	if i, ok := s.actions[ev.Name]; ok && i < len(st.actions) {
		st.actions[i]++
	}
	if ev.Name == s.spec.MacroConversion {
		st.converted = true
	}
	v := ev.Value
	if !finite(v) || v < 0 {
		v = 0
	}
	if _, ok := s.cartAdd[ev.Name]; ok {
		st.cartAdds++
		st.cartValue += v
	} else if _, ok := s.cartRemove[ev.Name]; ok {
		st.cartValue = max(0, st.cartValue-v)
	}
}

// foldLanding makes ev the landing event when it carries page or traffic information.
func (s *Schema) foldLanding(st *State, ev *Event) {
	props := ev.Props
	grp, hasPage := pageGroup(props)
	_, hasSrc := props["utm_source"]
	_, hasRef := props["referrer"]
	if !hasPage && !hasSrc && !hasRef && ev.Type != PageView {
		return
	}
	if !hasPage {
		grp = ValueNone
	}
	src, med, camp, ch := deriveTraffic(props)
	st.hasLanding, st.landingTS = true, ev.TS
	st.channel = ch
	st.srcH, st.medH, st.campH, st.grpH = HashCategory(src), HashCategory(med), HashCategory(camp), HashCategory(grp)
}

func (st *State) countError(kind string) {
	st.errors++
	switch {
	case strings.EqualFold(kind, "client"):
		st.errClient++
	case strings.EqualFold(kind, "form"):
		st.errForm++
	}
}

// addPage inserts h into the sorted page set unless present or full.
func (st *State) addPage(h uint64) {
	n := int(st.nPages)
	i, found := slices.BinarySearch(st.pages[:n], h)
	if found || n == MaxUniquePages {
		return
	}
	copy(st.pages[i+1:n+1], st.pages[i:n])
	st.pages[i] = h
	st.nPages++
}

// parseNonNeg parses a finite, non-negative number.
func parseNonNeg(v string) (float64, bool) {
	if v == "" || len(v) > 32 {
		return 0, false
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil || !finite(f) || f < 0 {
		return 0, false
	}
	return f, true
}

// Compatible reports whether st was started (NewState) or decoded for this schema. Folding
// into an incompatible state is harmless but meaningless, and Vector refuses it: a store that
// finds one after a spec change should rebuild the session by replaying its events.
func (s *Schema) Compatible(st *State) bool {
	return st.fp == s.fp && len(st.actions) == s.nActions
}
