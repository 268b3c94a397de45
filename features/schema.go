package features

// NOTE: first-cut contract written by the lead so data/ and serve/ can build against it.
// The features owner replaces the bodies; the exported signatures are the contract.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Phase is one step of the journey towards the macro conversion, with its process milestones
// (event names of micro conversions or custom events that move a visitor on).
type Phase struct {
	Name       string
	Milestones []string
}

// Spec is what a site declares that its features depend on.
type Spec struct {
	MacroConversion  string   // event name of the macro conversion, e.g. "purchase"
	Phases           []Phase  // ordered
	SecondaryActions []string // event names that signal interest without being steps
	HashBuckets      int      // buckets per hashed categorical; 0 means the default
	TimeZone         string   // IANA name for hour-of-day / day-of-week; "" means UTC
}

// VisitorHistory is what is known of a visitor (all linked anonymous ids) strictly before a
// session starts. The store computes it at the session's first event, and replay computes it
// the same way from the log, so live and replayed vectors agree.
type VisitorHistory struct {
	Sessions7d       int     // earlier sessions started within 7 days before this one
	Sessions30d      int     // ... within 30 days
	LastSessionTS    int64   // start of the previous session (Unix ms), 0 if none
	Conversions      int     // earlier macro conversions
	LastConversionTS int64   // Unix ms, 0 if none
	Monetary         float64 // sum of earlier macro conversion values
}

// ErrSchemaMismatch is returned when a vector or state does not fit a schema.
var ErrSchemaMismatch = errors.New("features: schema mismatch")

// Schema is the versioned, ordered list of features for one site's Spec.
type Schema struct {
	Version     int
	Names       []string
	Fingerprint string
	spec        Spec
}

// NewSchema builds the schema of a site's spec.
func NewSchema(spec Spec) (*Schema, error) {
	return &Schema{Version: 0, Names: []string{"page_views"}, Fingerprint: "stub", spec: spec}, nil
}

// Len is the number of features.
func (s *Schema) Len() int { return len(s.Names) }

// State is a session's running feature state. Its zero value is not ready: use NewState.
type State struct {
	StartTS   int64
	LastTS    int64
	PageViews int
	History   VisitorHistory
}

// NewState starts the state of a session whose visitor has the given history.
func (s *Schema) NewState(hist VisitorHistory) State { return State{History: hist} }

// Fold folds one event into the session state. Pure; events are expected in time order.
func (s *Schema) Fold(st *State, ev *Event) {
	if st.StartTS == 0 {
		st.StartTS = ev.TS
	}
	st.LastTS = ev.TS
	if ev.Type == PageView {
		st.PageViews++
	}
}

// Vector writes the features of st as of asOfTS into out, which must have Len() elements.
func (s *Schema) Vector(st *State, asOfTS int64, out []float64) error {
	if len(out) != s.Len() {
		return fmt.Errorf("%w: vector has %d elements, schema %d", ErrSchemaMismatch, len(out), s.Len())
	}
	out[0] = float64(st.PageViews)
	return nil
}

// AppendBinary appends the binary encoding of st to b.
func (st *State) AppendBinary(b []byte) ([]byte, error) {
	b = binary.AppendVarint(b, st.StartTS)
	b = binary.AppendVarint(b, st.LastTS)
	b = binary.AppendVarint(b, int64(st.PageViews))
	b = binary.AppendUvarint(b, math.Float64bits(st.History.Monetary))
	return b, nil
}

// UnmarshalBinary decodes a state written by AppendBinary.
func (st *State) UnmarshalBinary(b []byte) error {
	var vals [3]int64
	for i := range vals {
		v, n := binary.Varint(b)
		if n <= 0 {
			return fmt.Errorf("features: decode state: %w", ErrSchemaMismatch)
		}
		vals[i], b = v, b[n:]
	}
	st.StartTS, st.LastTS, st.PageViews = vals[0], vals[1], int(vals[2])
	return nil
}

// Replay builds the vector of a session as of asOfTS from its events (in time order) and the
// visitor's history at session start, using the same fold as live ingest.
func (s *Schema) Replay(hist VisitorHistory, events []Event, asOfTS int64, out []float64) error {
	st := s.NewState(hist)
	for i := range events {
		if events[i].TS > asOfTS {
			break
		}
		s.Fold(&st, &events[i])
	}
	return s.Vector(&st, asOfTS, out)
}
