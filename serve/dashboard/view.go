package dashboard

import (
	"fmt"
	"html/template"
	"math"
	"net/url"
	"strings"
	"time"

	"github.com/nudgehq/nudge/training/report"
)

// view is what page.html renders: the report, formatted, with its charts.
type view struct {
	R       *report.Report
	Range   string
	Loc     string
	Cards   []card
	Series  []seriesRow
	Charts  map[string]template.HTML
	Funnel  []funnelRow
	Micro   []microRow
	Lift    []liftRow
	Current impactRow
	ByTh    []impactRow
	ByBud   []impactRow
	Attr    []attrPanel
	Links   map[string]downloads
	// Impact what-if form values.
	Threshold, Budget string
}

type card struct {
	Key, Label, Value, Help string
	Change                  change
}

type downloads struct{ CSV, JSON string }

type seriesRow struct {
	Label                                      string
	Sessions, Conversions, Rate, Revenue, Decs string
	Treated                                    string
}

type funnelRow struct {
	Phase, Kind, Sessions, OfFirst, FromPrevious, DropOff string
	First                                                 bool
}

type microRow struct {
	Name, Kind, Phase, Sessions, Rate, With, Without, Ratio string
	RateBar                                                 template.HTML
}

type liftRow struct {
	Arm, Sessions, Conversions, Rate, Holdout, HoldoutRate string
	Lift, CI, Relative, P, Incremental, IncCI              string
	IncRevenue, Cost, ROI                                  string
	Significant, Positive                                  bool
}

type impactRow struct {
	Threshold, Budget, Treated, Share, IncConv, IncRevenue, Cost, ROI, Net string
}

type attrPanel struct {
	Model, Label, URL            string
	Active                       bool
	Channels, Interventions      template.HTML
	ChannelRows, InterventionRow []creditRow
}

type creditRow struct {
	Touch, Conversions, Revenue, Share string
}

// newView formats r for the page. links builds the download links of a section; pageURL the
// page's own URL with extra parameters (the attribution model tabs).
func newView(r *report.Report, loc *time.Location, model string, links func(section string) downloads, pageURL func(extra url.Values) string) *view {
	v := &view{
		R: r, Loc: loc.String(), Range: rangeLabel(r.From, r.To, loc), Charts: map[string]template.HTML{},
		Links: map[string]downloads{},
	}
	for _, s := range append([]string{"all"}, report.Sections...) {
		v.Links[s] = links(s)
	}
	o := r.Overview
	add := func(key, label, help string, m report.Metric, f func(float64) string) {
		v.Cards = append(v.Cards, card{Key: key, Label: label, Value: f(m.Value), Help: help, Change: metricChange(m, f)})
	}
	add("sessions", "Sessions", "Sessions that started in the range", o.Sessions, fmtInt)
	add("visitors", "Visitors", "Distinct visitors", o.Visitors, fmtInt)
	add("conversions", "Conversions", "Sessions with a "+r.MacroName, o.Conversions, fmtInt)
	add("revenue", "Revenue", "Value of the conversions", o.Revenue, fmtMoney)
	add("conversion_rate", "Conversion rate", "Converting sessions / sessions", o.ConversionRate, fmtPct)
	add("engagement_rate", "Engagement rate", "Sessions with more than one page view or a micro conversion", o.EngagementRate, fmtPct)
	add("return_visit_rate", "Return-visit rate", "Visitors with more than one session", o.ReturnVisitRate, fmtPct)
	add("intervention_ctr", "Intervention CTR", "Clicks on shown interventions / exposures", o.InterventionCTR, fmtPct)
	add("clv", "Customer value", "CLV: the estimated value of a customer (revenue per converting visitor × expected purchases)", o.CLV, fmtMoney)
	add("decisions", "Decisions", "Logged decisions", o.Decisions, fmtInt)
	add("exposures", "Exposures", "Interventions shown", o.Exposures, fmtInt)

	// Series.
	labels := make([]string, len(r.Series))
	sess := make([]float64, len(r.Series))
	treated := make([]float64, len(r.Series))
	conv := make([]float64, len(r.Series))
	rev := make([]float64, len(r.Series))
	convTips := make([]string, len(r.Series))
	for i, p := range r.Series {
		labels[i] = bucketLabel(p.Start, r.Group, loc)
		sess[i], treated[i], conv[i], rev[i] = float64(p.Sessions), float64(p.Treated), float64(p.Conversions), p.Revenue
		rate := 0.0
		if p.Sessions > 0 {
			rate = float64(p.Conversions) / float64(p.Sessions)
		}
		convTips[i] = fmt.Sprintf("%s: %s conversions (%s of sessions), revenue %s", labels[i], fmtInt(conv[i]), fmtPct(rate), fmtMoney(p.Revenue))
		v.Series = append(v.Series, seriesRow{
			Label: labels[i], Sessions: fmtInt(sess[i]), Conversions: fmtInt(conv[i]), Rate: fmtPct(rate),
			Revenue: fmtMoney(p.Revenue), Decs: fmtInt(float64(p.Decisions)), Treated: fmtInt(treated[i]),
		})
	}
	v.Charts["sessions"] = (&plot{
		ID: "chart-sessions", Name: "series-sessions", Title: "Sessions and treated sessions by " + r.Group,
		Desc: fmt.Sprintf("%d buckets from %s; sessions as an area, sessions shown an intervention as a line", len(labels), v.Range),
		Cat:  labels, YFmt: fmtNum, W: 640, H: 230,
		Series: []series{
			{Name: "sessions", Class: "s1", Kind: "area", Y: sess},
			{Name: "treated", Class: "s2", Kind: "line", Y: treated},
		},
	}).SVG()
	v.Charts["conversions"] = (&plot{
		ID: "chart-conversions", Name: "series-conversions", Title: "Conversions by " + r.Group,
		Desc: fmt.Sprintf("%d buckets from %s; %s conversions as bars", len(labels), v.Range, r.MacroName),
		Cat:  labels, YFmt: fmtNum, W: 640, H: 230,
		Series: []series{{Name: "conversions", Class: "s3", Kind: "bar", Y: conv, Tips: convTips}},
	}).SVG()

	// Funnel.
	var fb []bar
	for i, f := range r.Funnel {
		row := funnelRow{Phase: humanize(f.Phase), Kind: f.Kind, Sessions: fmtInt(float64(f.Sessions)),
			OfFirst: fmtPct(f.OfFirst), FromPrevious: fmtPct(f.FromPrevious), DropOff: fmtPct(f.DropOff), First: i == 0}
		v.Funnel = append(v.Funnel, row)
		text := fmtInt(float64(f.Sessions)) + " · " + fmtPct(f.OfFirst)
		if i > 0 {
			text += " · −" + strings.TrimPrefix(fmtPct(f.DropOff), "−") + " drop"
		}
		cls := "s1"
		if f.Kind == "macro" {
			cls = "s3"
		}
		fb = append(fb, bar{Label: humanize(f.Phase), Value: float64(f.Sessions), Text: text, Class: cls,
			Tip: fmt.Sprintf("%s: %s sessions, %s of the first step, %s drop-off from the previous", humanize(f.Phase), fmtInt(float64(f.Sessions)), fmtPct(f.OfFirst), fmtPct(f.DropOff))})
	}
	v.Charts["funnel"] = hbars("chart-funnel", "funnel", "Funnel by phase",
		fmt.Sprintf("%d steps; bar length is the sessions reaching the step", len(r.Funnel)), fb, 0)

	// Micro conversions.
	for _, m := range r.Micro {
		ratio := "–"
		if m.ConversionWithout > 0 {
			ratio = fmt.Sprintf("%.1f×", m.ConversionWith/m.ConversionWithout)
		}
		v.Micro = append(v.Micro, microRow{
			Name: m.Name, Kind: m.Kind, Phase: m.Phase, Sessions: fmtInt(float64(m.Sessions)), Rate: fmtPct(m.Rate),
			With: fmtPct(m.ConversionWith), Without: fmtPct(m.ConversionWithout), Ratio: ratio,
			RateBar: meter(m.Rate),
		})
	}

	// Lift.
	var ci []interval
	for _, l := range r.Lift {
		sig := l.CI.Low > 0 || l.CI.High < 0
		v.Lift = append(v.Lift, liftRow{
			Arm: l.Arm, Sessions: fmtInt(float64(l.Sessions)), Conversions: fmtInt(float64(l.Conversions)),
			Rate: fmtPct(l.Rate), Holdout: fmtInt(float64(l.HoldoutSessions)), HoldoutRate: fmtPct(l.HoldoutRate),
			Lift: fmtPP(l.Lift), CI: "[" + strings.TrimSuffix(fmtPP(l.CI.Low), " pp") + ", " + fmtPP(l.CI.High) + "]", Relative: fmtSignedPct(l.Relative),
			P: fmtP(l.PValue), Incremental: fmtNum(l.Incremental),
			IncCI:      "[" + fmtNum(l.IncrementalCI.Low) + ", " + fmtNum(l.IncrementalCI.High) + "]",
			IncRevenue: fmtMoney(l.IncrementalRevenue), Cost: fmtMoney(l.Cost), ROI: fmtROI(l.ROI, l.Cost),
			Significant: sig, Positive: l.Lift > 0,
		})
		level := l.CI.Level
		if level == 0 {
			level = 0.95
		}
		ci = append(ci, interval{
			Label: l.Arm, Est: l.Lift * 100, Lo: l.CI.Low * 100, Hi: l.CI.High * 100, Significant: sig, Positive: l.Lift > 0,
			Text: fmtPP(l.Lift) + " (p " + fmtP(l.PValue) + ")",
			Tip:  fmt.Sprintf("%s: lift %s, %.0f%% CI [%s, %s], p = %s", l.Arm, fmtPP(l.Lift), level*100, fmtPP(l.CI.Low), fmtPP(l.CI.High), fmtP(l.PValue)),
		})
	}
	v.Charts["lift"] = forest("chart-lift", "lift", "Lift in conversion rate against the holdout",
		"Dots are the measured lift of each arm in percentage points; whiskers its 95% confidence interval; the line at 0 is no effect", ci,
		func(x float64) string { return strings.Replace(fmt.Sprintf("%+g", x), "-", "−", 1) + " pp" })

	// Impact.
	imp := func(p report.ImpactPoint) impactRow {
		return impactRow{
			Threshold: fmtNum(p.Threshold), Budget: fmtPct(p.Budget), Treated: fmtInt(float64(p.Treated)),
			Share: fmtPct(p.TreatedShare), IncConv: fmtNum(p.IncrementalConversions), IncRevenue: fmtMoney(p.IncrementalRevenue),
			Cost: fmtMoney(p.Cost), ROI: fmtROI(p.ROI, p.Cost), Net: fmtMoney(p.IncrementalRevenue - p.Cost),
		}
	}
	v.Current = imp(r.Impact.Current)
	v.Threshold = fmt.Sprint(r.Impact.Current.Threshold)
	v.Budget = fmt.Sprint(r.Impact.Current.Budget)
	curve := func(id, name, title, xname string, pts []report.ImpactPoint, x func(report.ImpactPoint) float64, xfmt func(float64) string, cur float64) template.HTML {
		xs := make([]float64, len(pts))
		revs := make([]float64, len(pts))
		costs := make([]float64, len(pts))
		var tips []string
		for i, p := range pts {
			xs[i], revs[i], costs[i] = x(p), p.IncrementalRevenue, p.Cost
			tips = append(tips, fmt.Sprintf("%s %s: %s treated (%s), +%s conversions, revenue %s, cost %s",
				xname, xfmt(xs[i]), fmtInt(float64(p.Treated)), fmtPct(p.TreatedShare), fmtNum(p.IncrementalConversions), fmtMoney(p.IncrementalRevenue), fmtMoney(p.Cost)))
		}
		return (&plot{
			ID: id, Name: name, Title: title, W: 640, H: 230,
			Desc: fmt.Sprintf("%d policy points; predicted incremental revenue and cost as lines; the rule marks the current %s", len(pts), xname),
			X:    xs, XFmt: xfmt, YFmt: fmtNum, Marker: &marker{X: cur, Label: "current " + xfmt(cur)},
			Series: []series{
				{Name: "incremental revenue", Class: "s1", Kind: "line", Y: revs, Tips: tips},
				{Name: "cost", Class: "s4", Kind: "line", Y: costs, Tips: tips},
			},
		}).SVG()
	}
	for _, p := range r.Impact.ByThreshold {
		v.ByTh = append(v.ByTh, imp(p))
	}
	for _, p := range r.Impact.ByBudget {
		v.ByBud = append(v.ByBud, imp(p))
	}
	v.Charts["impact-threshold"] = curve("chart-impact-threshold", "impact-threshold", "Predicted impact by expected-value threshold", "threshold",
		r.Impact.ByThreshold, func(p report.ImpactPoint) float64 { return p.Threshold }, fmtNum, r.Impact.Current.Threshold)
	v.Charts["impact-budget"] = curve("chart-impact-budget", "impact-budget", "Predicted impact by budget (share of sessions treated)", "budget",
		r.Impact.ByBudget, func(p report.ImpactPoint) float64 { return p.Budget }, func(x float64) string { return fmtPct(x) }, r.Impact.Current.Budget)

	// Attribution: one panel per model, the selected one visible.
	if model == "" {
		model = "last_touch"
	}
	found := false
	for _, a := range r.Attribution {
		found = found || a.Model == model
	}
	if !found && len(r.Attribution) > 0 {
		model = r.Attribution[0].Model
	}
	for _, a := range r.Attribution {
		p := attrPanel{Model: a.Model, Label: modelLabel(a.Model), Active: a.Model == model,
			URL: pageURL(url.Values{"model": {a.Model}}) + "#attribution"}
		var ch, in []bar
		for _, c := range a.Rows {
			row := creditRow{Touch: c.Touch, Conversions: fmtNum(c.Conversions), Revenue: fmtMoney(c.Revenue), Share: fmtPct(c.Share)}
			b := bar{Label: c.Touch, Value: c.Share, Text: fmtPct(c.Share) + " · " + fmtNum(c.Conversions) + " conv.",
				Tip: fmt.Sprintf("%s (%s): %s of the credit, %s conversions, revenue %s", c.Touch, modelLabel(a.Model), fmtPct(c.Share), fmtNum(c.Conversions), fmtMoney(c.Revenue))}
			if c.Kind == "intervention" {
				b.Class = "s2"
				in = append(in, b)
				p.InterventionRow = append(p.InterventionRow, row)
			} else {
				b.Class = "s1"
				ch = append(ch, b)
				p.ChannelRows = append(p.ChannelRows, row)
			}
		}
		p.Channels = hbars("chart-attr-ch-"+a.Model, "attribution-channels", "Conversion credit by channel, "+strings.ToLower(p.Label)+" model",
			"Share of the conversions credited to each traffic channel", ch, 0)
		p.Interventions = hbars("chart-attr-in-"+a.Model, "attribution-interventions", "Conversion credit by intervention, "+strings.ToLower(p.Label)+" model",
			"Share of the intervention-touched conversions credited to each intervention", in, 0)
		v.Attr = append(v.Attr, p)
	}
	return v
}

// meter is a small inline SVG bar for a share in [0, 1] (tables).
func meter(share float64) template.HTML {
	w := math.Max(0, math.Min(1, share)) * 80
	return template.HTML(fmt.Sprintf(`<svg class="meter" viewBox="0 0 80 8" aria-hidden="true" focusable="false"><rect class="track" width="80" height="8" rx="2"/><rect class="fill" width="%s" height="8" rx="2"/></svg>`, f1(w)))
}
