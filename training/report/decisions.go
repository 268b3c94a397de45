package report

import (
	"strings"
	"time"

	"github.com/nudgehq/nudge/data/config"
)

// eligibility holds the site's static eligibility rules resolved against the feature schema,
// as model/policy applies them at decision time.
type eligibility struct {
	iPhase, iPV int
	devIdx      []int
	ok          bool
}

// staticEligible evaluates the site's static eligibility rules (phase, device, page views,
// path prefixes) of every intervention on a replayed feature vector x at decision time and
// the decision's page. Caps are applied later (applyCaps); the daily budget is not replayed.
func (b *builder) staticEligible(x []float64, page string) []bool {
	e := b.elig()
	out := make([]bool, len(b.site.Interventions))
	phases := b.site.Phases
	for k := range b.site.Interventions {
		iv := &b.site.Interventions[k].Eligibility
		ok := true
		if e.ok && len(iv.Phases) > 0 {
			ph := int(x[e.iPhase])
			allowed := false
			for _, name := range iv.Phases {
				if name == "none" && ph == 0 {
					allowed = true
				}
				for j := range phases {
					if phases[j].Name == name && ph == j+1 {
						allowed = true
					}
				}
			}
			ok = allowed
		}
		if ok && e.ok && iv.MinPageViews > 0 && x[e.iPV] < float64(iv.MinPageViews) {
			ok = false
		}
		if ok && e.ok && len(iv.Devices) > 0 {
			known, allowed := false, false
			for i, j := range e.devIdx {
				if x[j] > 0.5 {
					known = true
					for _, d := range iv.Devices {
						allowed = allowed || d == config.Devices[i]
					}
				}
			}
			ok = known && allowed
		}
		if ok && len(iv.PathPrefixes) > 0 {
			hit := false
			for _, p := range iv.PathPrefixes {
				hit = hit || (page != "" && strings.HasPrefix(page, p))
			}
			ok = hit
		}
		out[k] = ok
	}
	return out
}

func (b *builder) elig() *eligibility {
	if b.eligRules != nil {
		return b.eligRules
	}
	e := &eligibility{}
	var ok1, ok2 bool
	e.iPhase, ok1 = b.sc.Index("funnel_phase")
	e.iPV, ok2 = b.sc.Index("page_views")
	e.ok = ok1 && ok2
	for _, d := range config.Devices {
		j, ok := b.sc.Index("device_" + d)
		e.ok = e.ok && ok
		e.devIdx = append(e.devIdx, j)
	}
	b.eligRules = e
	return e
}

// outcomes settles each decision's eligible set (logged list, static rules, caps) and its
// outcome.
func (b *builder) outcomes() {
	n := len(b.site.Interventions)
	perSession := map[string][]int{}
	type dayKey struct {
		visitor string
		day     string
	}
	perDay := map[dayKey][]int{}
	loc := b.site.Location()
	for _, d := range b.decs {
		if d.s == nil {
			b.unread++
		}
		if d.eligible == nil {
			d.eligible = make([]bool, n)
			for k := range d.eligible {
				d.eligible[k] = true
			}
		}
		// The logged list: the eligible set when it is shorter than the catalogue (the
		// training pipeline's convention); the serve path logs the whole catalogue.
		if len(d.rec.Interventions) > 0 && len(d.rec.Interventions) < n {
			in := make([]bool, n)
			for _, id := range d.rec.Interventions {
				if k, ok := b.ivIndex[id]; ok {
					in[k-1] = true
				}
			}
			for k := range d.eligible {
				d.eligible[k] = d.eligible[k] && in[k]
			}
		}
		// Frequency caps, replayed on the logged choices in time order.
		vis := d.rec.UserID
		if vis == "" {
			vis = d.rec.AnonymousID
		}
		dk := dayKey{vis, time.UnixMilli(d.rec.TS).In(loc).Format("2006-01-02")}
		ses := perSession[d.rec.Session]
		day := perDay[dk]
		for k := range d.eligible {
			c := b.site.Interventions[k].Caps
			if c.PerSession > 0 && ses != nil && ses[k] >= c.PerSession {
				d.eligible[k] = false
			}
			if c.PerVisitorPerDay > 0 && day != nil && day[k] >= c.PerVisitorPerDay {
				d.eligible[k] = false
			}
		}
		if d.arm > 0 {
			d.eligible[d.arm-1] = true // it was shown, so it was possible
			if ses == nil {
				ses = make([]int, n)
				perSession[d.rec.Session] = ses
			}
			if day == nil {
				day = make([]int, n)
				perDay[dk] = day
			}
			ses[d.arm-1]++
			day[d.arm-1]++
		}

		switch b.q.Outcome {
		case OutcomeSession:
			if d.s != nil {
				d.yKnown = true
				for _, c := range d.s.convs {
					if c.ts > d.rec.TS {
						d.y = true
						break
					}
				}
			}
		default:
			if d.rec.TS+b.q.Window.Milliseconds() > b.lastTS {
				b.openWindow++
			}
			anon := d.rec.AnonymousID
			if anon == "" && d.s != nil {
				anon = d.s.anon
			}
			d.yKnown = anon != ""
			end := d.rec.TS + b.q.Window.Milliseconds()
			for _, ts := range b.visConv[anon] {
				if ts > d.rec.TS && ts <= end {
					d.y = true
					break
				}
			}
		}
	}
}
