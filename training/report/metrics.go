package report

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// period accumulates the overview figures of one period.
type period struct {
	sessions, convSessions, engaged  int64
	conversions, exposures, ivClicks int64
	decisions                        int64
	revenue                          float64
	visitors                         map[string]*visitor
}

type visitor struct {
	sessions  int
	converted bool
	customer  bool // had converted before its first session of the period
}

func newPeriod() *period { return &period{visitors: map[string]*visitor{}} }

func (p *period) add(s *sess) {
	p.sessions++
	if s.converted() {
		p.convSessions++
	}
	engaged := s.pageViews > 1
	for _, a := range s.actions {
		engaged = engaged || a
	}
	if engaged {
		p.engaged++
	}
	p.conversions += int64(len(s.convs))
	for _, c := range s.convs {
		p.revenue += c.value
	}
	p.exposures += int64(len(s.exposures))
	p.ivClicks += int64(s.ivClicks)
	v := p.visitors[s.anon]
	if v == nil {
		v = &visitor{customer: s.customer} // sessions arrive in start order: this is the first
		p.visitors[s.anon] = v
	}
	v.sessions++
	v.converted = v.converted || s.converted()
}

// maxRetention caps the repeat-customer share of the CLV formula (at most 10 periods).
const maxRetention = 0.9

// figures returns the overview figures in Overview field order.
func (p *period) figures() [11]float64 {
	var returning, converting, repeat int
	for _, v := range p.visitors {
		if v.sessions > 1 {
			returning++
		}
		if v.converted {
			converting++
			if v.customer {
				repeat++
			}
		}
	}
	nv := float64(len(p.visitors))
	clv := 0.0
	if converting > 0 {
		rho := min(float64(repeat)/float64(converting), maxRetention)
		clv = p.revenue / float64(converting) / (1 - rho)
	}
	return [11]float64{
		float64(p.sessions), nv, float64(p.conversions), p.revenue,
		ratio(float64(p.convSessions), float64(p.sessions)),
		ratio(float64(p.engaged), float64(p.sessions)),
		ratio(float64(returning), nv),
		ratio(float64(p.ivClicks), float64(p.exposures)),
		clv,
		float64(p.decisions), float64(p.exposures),
	}
}

// ratio is a/b, 0 when b is 0.
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func metric(v, prev float64) Metric {
	return Metric{Value: v, Previous: prev, Change: ratio(v-prev, prev)}
}

func (b *builder) overview(r *Report) {
	cur, prev := newPeriod(), newPeriod()
	for _, s := range b.sessions {
		switch {
		case s.inRange:
			cur.add(s)
		case s.prev:
			prev.add(s)
		}
	}
	cur.decisions, prev.decisions = int64(len(b.decs)), int64(b.prevDecisions)
	c, p := cur.figures(), prev.figures()
	dst := []*Metric{
		&r.Overview.Sessions, &r.Overview.Visitors, &r.Overview.Conversions, &r.Overview.Revenue,
		&r.Overview.ConversionRate, &r.Overview.EngagementRate, &r.Overview.ReturnVisitRate,
		&r.Overview.InterventionCTR, &r.Overview.CLV, &r.Overview.Decisions, &r.Overview.Exposures,
	}
	for i, m := range dst {
		*m = metric(c[i], p[i])
	}
}

func (b *builder) series(r *Report, loc *time.Location) {
	var starts []int64
	for t := bucketStart(r.From, r.Group, loc); t.UnixMilli() < b.to; t = nextBucket(t, r.Group) {
		r.Series = append(r.Series, SeriesPoint{Start: t})
		starts = append(starts, t.UnixMilli())
	}
	at := func(ts int64) *SeriesPoint {
		i := sort.Search(len(starts), func(i int) bool { return starts[i] > ts }) - 1
		if i < 0 || ts >= b.to {
			return nil
		}
		return &r.Series[i]
	}
	for _, s := range b.sessions {
		if !s.inRange {
			continue
		}
		p := at(s.start)
		if p == nil {
			continue
		}
		p.Sessions++
		p.Conversions += int64(len(s.convs))
		for _, c := range s.convs {
			p.Revenue += c.value
		}
	}
	for _, d := range b.decs {
		if p := at(d.rec.TS); p != nil {
			p.Decisions++
			if d.rec.Arm != "" {
				p.Treated++
			}
		}
	}
}

func (b *builder) funnel(r *Report) {
	n := len(b.site.Phases)
	reached := make([]int64, n+2) // reached[i]: sessions whose furthest phase is >= i; [n+1] macro
	var total int64
	for _, s := range b.sessions {
		if !s.inRange {
			continue
		}
		total++
		for i := 1; i <= s.furthest && i <= n; i++ {
			reached[i]++
		}
		if s.converted() {
			reached[n+1]++
		}
	}
	prev := float64(total)
	first := 0.0
	for i := 1; i <= n+1; i++ {
		step := FunnelStep{Phase: b.site.Macro.Name, Kind: "macro", Sessions: reached[i]}
		if i <= n {
			step.Phase, step.Kind = b.site.Phases[i-1].Name, "phase"
		}
		if i == 1 {
			first = float64(reached[1])
		}
		step.OfFirst = ratio(float64(step.Sessions), first)
		step.FromPrevious = ratio(float64(step.Sessions), prev)
		step.DropOff = 0
		if prev > 0 {
			step.DropOff = 1 - step.FromPrevious
		}
		r.Funnel = append(r.Funnel, step)
		prev = float64(step.Sessions)
	}
}

func (b *builder) micro(r *Report) {
	type acc struct{ with, withConv int64 }
	accs := make([]acc, len(b.actions))
	var total, conv int64
	for _, s := range b.sessions {
		if !s.inRange {
			continue
		}
		total++
		if s.converted() {
			conv++
		}
		for i, ok := range s.actions {
			if ok {
				accs[i].with++
				if s.converted() {
					accs[i].withConv++
				}
			}
		}
	}
	for i, a := range b.actions {
		c := accs[i]
		r.Micro = append(r.Micro, MicroRate{
			Name: a.name, Kind: a.kind, Phase: a.phase, Sessions: c.with,
			Rate:              ratio(float64(c.with), float64(total)),
			ConversionWith:    ratio(float64(c.withConv), float64(c.with)),
			ConversionWithout: ratio(float64(conv-c.withConv), float64(total-c.with)),
		})
	}
}

// notes adds the caveats that concern the whole report.
func (b *builder) notes(r *Report) {
	if len(b.decs) == 0 {
		r.Notes = append(r.Notes, "no decisions are logged in the range: no lift and no impact")
	}
	if b.unread > 0 {
		what := "their eligibility could not be replayed (every intervention counts as eligible for them)"
		if b.q.Outcome == OutcomeSession {
			what = "they are left out of lift (their session outcome is unknown)"
		}
		r.Notes = append(r.Notes, fmt.Sprintf("%d decisions belong to sessions that started before the look-back of the report: %s", b.unread, what))
	}
	if b.openWindow > 0 {
		r.Notes = append(r.Notes, fmt.Sprintf("%d decisions were taken less than %s before the latest event: their outcome window is not over, so the conversion rates of lift are understated (the randomized comparisons are not biased by it)",
			b.openWindow, b.q.Window))
	}
	r.Notes = dedupe(r.Notes)
}

func dedupe(notes []string) []string {
	seen := map[string]bool{}
	out := notes[:0]
	for _, n := range notes {
		n = strings.TrimSpace(n)
		if n != "" && !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}
