// Package dashtest holds what the dashboard's tests share: a realistic hand-built report of
// the demo shop (every section filled) and a headless Chromium harness for browser tests.
// Test code only imports it.
package dashtest

import (
	"fmt"
	"math"
	"time"

	"github.com/nudgehq/nudge/training/report"
)

// Fixture returns a report of the demo shop over [from, to) in UTC, in buckets of group
// ("" picks hour up to 2 days, day up to 90, else week, as the engine does), with every
// section filled with plausible figures that depend on the range: a longer range has more
// sessions, so a test can see a page change when the range does. Zero from/to mean the 28
// days before 2026-11-23.
func Fixture(site string, from, to time.Time, group string) *report.Report {
	if to.IsZero() {
		to = time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	}
	if from.IsZero() || !from.Before(to) {
		from = to.AddDate(0, 0, -28)
	}
	if group == "" {
		switch d := to.Sub(from); {
		case d <= 48*time.Hour:
			group = "hour"
		case d <= 90*24*time.Hour:
			group = "day"
		default:
			group = "week"
		}
	}
	step := map[string]time.Duration{"hour": time.Hour, "day": 24 * time.Hour, "week": 7 * 24 * time.Hour}[group]
	if step == 0 {
		group, step = "day", 24*time.Hour
	}
	r := &report.Report{
		Version: report.FormatVersion, Site: site, From: from, To: to, TimeZone: "UTC", Group: group,
		Generated: to.Add(-17 * time.Minute), MacroName: "purchase", Value: 60,
	}
	var sessions, conv, decisions, treated int64
	var revenue float64
	i := 0
	for t := from; t.Before(to); t = t.Add(step) {
		// A weekly rhythm (weekends busier) over a slow rise, deterministic.
		day := t.Sub(from).Hours() / 24
		w := 1 + 0.25*math.Sin(2*math.Pi*float64(t.Weekday())/7) + 0.01*day
		s := int64(math.Round(w * 90 * float64(step) / float64(24*time.Hour)))
		if step == time.Hour {
			s = int64(math.Round(w * 3.75 * (0.4 + 0.94*math.Sin(math.Pi*float64(t.Hour())/24))))
		}
		c := int64(math.Round(float64(s) * (0.06 + 0.01*math.Cos(float64(i)))))
		d := s * 9 / 10
		tr := d * 4 / 10
		r.Series = append(r.Series, report.SeriesPoint{
			Start: t, Sessions: s, Conversions: c, Revenue: float64(c) * 60, Decisions: d, Treated: tr,
		})
		sessions += s
		conv += c
		revenue += float64(c) * 60
		decisions += d
		treated += tr
		i++
	}
	visitors := sessions * 7 / 10
	prev := func(v float64) report.Metric {
		p := math.Round(v * 0.87)
		m := report.Metric{Value: v, Previous: p}
		if p != 0 {
			m.Change = (v - p) / p
		}
		return m
	}
	rate := func(v, p float64) report.Metric {
		m := report.Metric{Value: v, Previous: p}
		if p != 0 {
			m.Change = (v - p) / p
		}
		return m
	}
	cr := 0.0
	if sessions > 0 {
		cr = float64(conv) / float64(sessions)
	}
	r.Overview = report.Overview{
		Sessions: prev(float64(sessions)), Visitors: prev(float64(visitors)),
		Conversions: prev(float64(conv)), Revenue: prev(revenue),
		ConversionRate: rate(cr, cr*0.94), EngagementRate: rate(0.584, 0.602),
		ReturnVisitRate: rate(0.213, 0.198), InterventionCTR: rate(0.087, 0.081),
		CLV: rate(71.4, 68.9), Decisions: prev(float64(decisions)), Exposures: prev(float64(treated)),
	}
	phases := []struct {
		name  string
		share float64
	}{{"browse", 0.81}, {"cart", 0.27}, {"checkout", 0.11}}
	var first, last int64
	for k, p := range phases {
		n := int64(math.Round(float64(sessions) * p.share))
		st := report.FunnelStep{Phase: p.name, Sessions: n, OfFirst: 1, FromPrevious: 1}
		if k == 0 {
			first = n
		} else {
			st.OfFirst = float64(n) / float64(first)
			st.FromPrevious = float64(n) / float64(last)
			st.DropOff = 1 - st.FromPrevious
		}
		last = n
		r.Funnel = append(r.Funnel, st)
	}
	micro := []struct {
		name, kind, phase string
		share, with       float64
	}{
		{"view_product", "milestone", "browse", 0.81, 0.071},
		{"add_to_cart", "milestone", "cart", 0.27, 0.19},
		{"begin_checkout", "milestone", "checkout", 0.11, 0.46},
		{"newsletter_signup", "secondary", "", 0.042, 0.12},
		{"share", "secondary", "", 0.018, 0.09},
		{"download", "secondary", "", 0.025, 0.08},
		{"watch_video", "secondary", "", 0.063, 0.1},
	}
	for _, m := range micro {
		r.Micro = append(r.Micro, report.MicroRate{
			Name: m.name, Kind: m.kind, Phase: m.phase, Sessions: int64(math.Round(float64(sessions) * m.share)),
			Rate: m.share, ConversionWith: m.with, ConversionWithout: math.Max(0.004, cr*(1-m.share)/(1+m.share)),
		})
	}
	hold := max(1, sessions/10)
	hc := int64(math.Round(float64(hold) * 0.052))
	arms := []struct {
		arm        string
		share      float64
		rate, cost float64
	}{
		{"policy", 0.9, 0.066, 1.1}, {"discount10", 0.12, 0.094, 3}, {"chat_offer", 0.16, 0.061, 1}, {"help_tip", 0.12, 0.049, 0.1},
	}
	for _, a := range arms {
		n := int64(math.Round(float64(sessions) * a.share))
		c := int64(math.Round(float64(n) * a.rate))
		hr := float64(hc) / float64(hold)
		l := float64(c)/float64(n) - hr
		se := math.Sqrt(a.rate*(1-a.rate)/float64(n) + hr*(1-hr)/float64(hold))
		inc := l * float64(n)
		cost := a.cost * float64(n)
		roi := 0.0
		if cost > 0 {
			roi = (inc*60 - cost) / cost
		}
		z := math.Abs(l) / se
		r.Lift = append(r.Lift, report.Lift{
			Arm: a.arm, Sessions: n, Conversions: c, Rate: float64(c) / float64(n),
			HoldoutSessions: hold, HoldoutConverted: hc, HoldoutRate: hr,
			Lift: l, CI: report.Interval{Low: l - 1.96*se, High: l + 1.96*se, Level: 0.95}, Relative: l / hr,
			PValue:      math.Erfc(z / math.Sqrt2),
			Incremental: inc, IncrementalCI: report.Interval{Low: (l - 1.96*se) * float64(n), High: (l + 1.96*se) * float64(n), Level: 0.95},
			IncrementalRevenue: inc * 60, Cost: cost, ROI: roi,
		})
	}
	point := func(th, budget float64) report.ImpactPoint {
		share := math.Min(budget, 0.95*math.Exp(-th/4))
		n := int64(math.Round(float64(decisions) * share))
		incConv := float64(decisions) * 0.05 * (1 - math.Exp(-3*share))
		cost := float64(n) * 1.4
		p := report.ImpactPoint{
			Threshold: th, Budget: budget, Treated: n, TreatedShare: share,
			IncrementalConversions: incConv, IncrementalRevenue: incConv * 60, Cost: cost,
		}
		if cost > 0 {
			p.ROI = (p.IncrementalRevenue - cost) / cost
		}
		return p
	}
	r.Impact = report.Impact{ModelVersion: "propensity v1, uplift v2", Current: point(0, 0.5)}
	for _, th := range []float64{-2, -1, 0, 0.5, 1, 2, 3, 5, 8} {
		r.Impact.ByThreshold = append(r.Impact.ByThreshold, point(th, 0.5))
	}
	for _, b := range []float64{0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1} {
		r.Impact.ByBudget = append(r.Impact.ByBudget, point(0, b))
	}
	channels := []struct {
		name  string
		share [5]float64 // first, last, linear, time_decay, position_based
	}{
		{"google / organic", [5]float64{0.41, 0.33, 0.36, 0.35, 0.37}},
		{"(direct)", [5]float64{0.22, 0.31, 0.27, 0.29, 0.26}},
		{"newsletter / email", [5]float64{0.12, 0.17, 0.15, 0.16, 0.14}},
		{"facebook / cpc", [5]float64{0.18, 0.11, 0.14, 0.12, 0.15}},
		{"partner / referral", [5]float64{0.07, 0.08, 0.08, 0.08, 0.08}},
	}
	ints := []struct {
		name  string
		share [5]float64
	}{
		{"discount10", [5]float64{0.21, 0.38, 0.3, 0.33, 0.29}},
		{"chat_offer", [5]float64{0.31, 0.22, 0.26, 0.24, 0.27}},
		{"help_tip", [5]float64{0.48, 0.4, 0.44, 0.43, 0.44}},
	}
	for k, model := range []string{"first_touch", "last_touch", "linear", "time_decay", "position_based"} {
		a := report.Attribution{Model: model}
		for _, ch := range channels {
			a.Rows = append(a.Rows, report.Credit{Kind: "channel", Touch: ch.name, Share: ch.share[k],
				Conversions: ch.share[k] * float64(conv), Revenue: ch.share[k] * revenue})
		}
		touched := 0.35 * float64(conv)
		for _, in := range ints {
			a.Rows = append(a.Rows, report.Credit{Kind: "intervention", Touch: in.name, Share: in.share[k],
				Conversions: in.share[k] * touched, Revenue: in.share[k] * touched * 60})
		}
		r.Attribution = append(r.Attribution, a)
	}
	r.Notes = []string{
		fmt.Sprintf("Only %d holdout sessions: lift intervals are wide; keep the holdout running.", hold),
		"Impact is predicted by the promoted models on the logged decisions, not measured.",
	}
	return r
}
