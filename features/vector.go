package features

import (
	"fmt"
	"math"
	"time"
)

// NoneDays is the value of days_since_prev_visit and days_since_last_conversion when there is
// no such earlier event; it is also their cap (a year ago and "never" look alike to a model,
// and the indicator next to each tells them apart).
const NoneDays = 365

const dayMS = 24 * 60 * 60 * 1000

// Vector writes the features of st as of asOfTS into out, which must have Len() elements.
// Durations as of asOfTS are clamped at zero when asOfTS precedes the session. It does not
// allocate and never writes NaN or Inf.
func (s *Schema) Vector(st *State, asOfTS int64, out []float64) error {
	if len(out) != s.Len() {
		return fmt.Errorf("%w: vector has %d elements, schema %d", ErrSchemaMismatch, len(out), s.Len())
	}
	if !s.Compatible(st) {
		return fmt.Errorf("%w: state was built for another schema", ErrSchemaMismatch)
	}
	i := 0
	put := func(v float64) {
		out[i] = v
		i++
	}
	b2f := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}

	start, last := asOfTS, asOfTS
	if st.events > 0 {
		start, last = st.startTS, st.maxTS
	}
	put(float64(st.events))
	put(float64(last-start) / 1000)
	put(float64(max(0, asOfTS-start)) / 1000)
	put(float64(max(0, asOfTS-last)) / 1000)
	put(float64(st.activeMS+st.engagedMS) / 1000)
	put(float64(st.engagedMS) / 1000)
	put(st.maxScroll)
	put(float64(st.pageViews))
	put(float64(st.nPages))
	put(float64(st.clicks))
	put(float64(st.errors))
	put(float64(st.errClient))
	put(float64(st.errForm))
	put(float64(st.errors) / float64(max(1, st.pageViews)))

	h := &st.hist
	put(float64(max(0, h.Sessions7d)))
	put(float64(max(0, h.Sessions30d)))
	put(b2f(h.LastSessionTS > 0))
	put(daysSince(start, h.LastSessionTS))
	put(float64(max(0, h.Conversions)))
	put(nonNeg(h.Monetary))
	put(b2f(h.Conversions > 0 || h.LastConversionTS > 0))
	put(daysSince(start, h.LastConversionTS))

	put(b2f(st.converted))
	put(float64(st.exposures))
	put(b2f(st.identd))
	put(nonNeg(st.cartValue))
	put(float64(st.cartAdds))

	// Funnel: the deepest phase with a milestone reached (1-based; 0 when none), then one-hot.
	phase := 0
	for a := 0; a < s.nMilestone; a++ {
		if st.actions[a] > 0 {
			phase = max(phase, s.phaseOf[a]+1)
		}
	}
	put(float64(phase))
	for p := 0; p <= len(s.spec.Phases); p++ {
		put(b2f(p == phase))
	}
	for _, c := range st.actions {
		put(float64(c))
		put(b2f(c > 0))
	}

	for d := range numDevices {
		put(b2f(d == st.device))
	}
	ch := st.channel
	if !st.hasLanding {
		ch = chDirect
	}
	for c := range numChannels {
		put(b2f(c == ch))
	}
	src, med, camp, grp := st.srcH, st.medH, st.campH, st.grpH
	if !st.hasLanding {
		src, med, camp, grp = hashDirect, hashNone, hashNone, hashNone
	}
	B := uint64(s.buckets)
	for _, hv := range [...]uint64{src, med, camp, grp} {
		b := hv % B
		for k := range B {
			put(b2f(k == b))
		}
	}

	t := time.UnixMilli(start).In(s.loc)
	hour := float64(t.Hour()) + float64(t.Minute())/60
	dow := float64(t.Weekday())
	put(math.Sin(2 * math.Pi * hour / 24))
	put(math.Cos(2 * math.Pi * hour / 24))
	put(math.Sin(2 * math.Pi * dow / 7))
	put(math.Cos(2 * math.Pi * dow / 7))

	if i != len(out) {
		return fmt.Errorf("%w: wrote %d features, schema has %d", ErrSchemaMismatch, i, len(out))
	}
	for j, v := range out {
		if !finite(v) {
			out[j] = 0
		}
	}
	return nil
}

var (
	hashDirect = HashCategory(SourceDirect)
	hashNone   = HashCategory(ValueNone)
)

// daysSince is whole and fractional days from ts to ref, clamped to [0, NoneDays]; NoneDays when
// ts is 0 (none).
func daysSince(ref, ts int64) float64 {
	if ts <= 0 {
		return NoneDays
	}
	d := float64(ref-ts) / dayMS
	return min(max(d, 0), NoneDays)
}

func nonNeg(v float64) float64 {
	if !finite(v) || v < 0 {
		return 0
	}
	return v
}
