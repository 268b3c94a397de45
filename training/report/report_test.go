package report

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nudgehq/nudge/data/store"
	"github.com/nudgehq/nudge/features"
)

// handLog writes the hand-built log of the table tests (site "demo", UTC):
//
//	2026-03-05 09:00 a0  visitor A  referrer facebook, page_view
//	2026-03-09 10:00 p1  visitor D  page_view, view_product, add_to_cart          (previous period)
//	2026-03-09 12:00 p2  visitor E  page_view, purchase 60                         (previous period)
//	2026-03-10 10:00 s1  visitor A  page_view utm google/cpc, view_product, add_to_cart,
//	                                begin_checkout, purchase 80 at 10:04
//	2026-03-10 11:00 s2  visitor B  page_view referrer facebook, page_view, view_product
//	2026-03-10 14:00 s3  visitor A  page_view (direct), newsletter_signup, decision at 14:01,
//	                                exposure discount10 at 14:02, click on it, purchase (no value) 14:05
//	2026-03-10 15:00 s4  visitor C  page_view
//	2026-03-12 09:00 g1  visitor G  page_view (after the range: keeps To from being clamped)
func handLog(t *testing.T) *store.Store {
	t.Helper()
	_, sc := testSite(t)
	st := openMem(t, sc)
	l := &logBuilder{t: t, st: st}
	at := func(s string) time.Time { return day("2026-03-" + s + ":00Z") }
	l.add("a0", "A", at("05T09:00"), features.PageView, "", 0, "path", "/", "referrer", "https://facebook.com/")
	l.add("p1", "D", at("09T10:00"), features.PageView, "", 0, "path", "/")
	l.add("p1", "D", at("09T10:01"), features.MicroConversion, "view_product", 0)
	l.add("p1", "D", at("09T10:02"), features.MicroConversion, "add_to_cart", 20)
	l.add("p2", "E", at("09T12:00"), features.PageView, "", 0, "path", "/")
	l.add("p2", "E", at("09T12:03"), features.MacroConversion, "purchase", 60)
	l.add("s1", "A", at("10T10:00"), features.PageView, "", 0, "path", "/", "utm_source", "google", "utm_medium", "cpc")
	l.add("s1", "A", at("10T10:01"), features.MicroConversion, "view_product", 0)
	l.add("s1", "A", at("10T10:02"), features.MicroConversion, "add_to_cart", 80)
	l.add("s1", "A", at("10T10:03"), features.MicroConversion, "begin_checkout", 0)
	l.add("s1", "A", at("10T10:04"), features.MacroConversion, "purchase", 80)
	l.add("s2", "B", at("10T11:00"), features.PageView, "", 0, "path", "/", "referrer", "https://facebook.com/")
	l.add("s2", "B", at("10T11:01"), features.PageView, "", 0, "path", "/p/1")
	l.add("s2", "B", at("10T11:02"), features.MicroConversion, "view_product", 0)
	l.add("s3", "A", at("10T14:00"), features.PageView, "", 0, "path", "/")
	l.add("s3", "A", at("10T14:00"), features.MicroConversion, "newsletter_signup", 0)
	l.add("s3", "A", at("10T14:02"), features.Exposure, "discount10", 0, "decision_id", "d1", "intervention", "discount10")
	l.add("s3", "A", at("10T14:03"), features.Click, "discount10", 0, "decision_id", "d1")
	l.add("s3", "A", at("10T14:05"), features.MacroConversion, "purchase", 0)
	l.add("s4", "C", at("10T15:00"), features.PageView, "", 0, "path", "/")
	l.add("g1", "G", at("12T09:00"), features.PageView, "", 0, "path", "/")
	l.flush()
	if err := st.LogDecision(context.Background(), &store.DecisionRecord{ID: "d1", Site: "demo", Session: "s3",
		AnonymousID: "A", TS: at("10T14:01").UnixMilli(), Group: "treatment", Arm: "discount10", Probability: 0.8,
		Interventions: []string{"discount10", "chat_offer", "help_tip"}, Uplift: []float64{0.1, 0.02, 0.001}, UpliftVersion: 2}); err != nil {
		t.Fatal(err)
	}
	waitDecisions(t, st, "demo", 1)
	return st
}

func handReport(t *testing.T) *Report {
	t.Helper()
	st := handLog(t)
	site, _ := testSite(t)
	r, err := Build(context.Background(), st, site, Query{From: day("2026-03-10T00:00:00Z"), To: day("2026-03-11T00:00:00Z")})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestOverviewByHand(t *testing.T) {
	r := handReport(t)
	if r.Group != "hour" || !r.From.Equal(day("2026-03-10T00:00:00Z")) || !r.To.Equal(day("2026-03-11T00:00:00Z")) {
		t.Fatalf("range %s..%s group %s", r.From, r.To, r.Group)
	}
	o := r.Overview
	for _, c := range []struct {
		name       string
		m          Metric
		cur, prev  float64
		wantChange float64
	}{
		{"sessions", o.Sessions, 4, 2, 1},
		{"visitors", o.Visitors, 3, 2, 0.5},
		{"conversions", o.Conversions, 2, 1, 1},
		{"revenue", o.Revenue, 140, 60, 80.0 / 60},
		{"conversion_rate", o.ConversionRate, 0.5, 0.5, 0},
		{"engagement_rate", o.EngagementRate, 0.75, 0.5, 0.5},
		{"return_visit_rate", o.ReturnVisitRate, 1.0 / 3, 0, 0},
		{"intervention_ctr", o.InterventionCTR, 1, 0, 0},
		// one converting visitor (A) with no earlier conversion: CLV = revenue per converting visitor
		{"clv", o.CLV, 140, 60, 80.0 / 60},
		{"decisions", o.Decisions, 1, 0, 0},
		{"exposures", o.Exposures, 1, 0, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			checkNear(t, "value", c.m.Value, c.cur)
			checkNear(t, "previous", c.m.Previous, c.prev)
			checkNear(t, "change", c.m.Change, c.wantChange)
		})
	}
}

func TestFunnelByHand(t *testing.T) {
	r := handReport(t)
	want := []FunnelStep{
		{Phase: "browse", Kind: "phase", Sessions: 3, OfFirst: 1, FromPrevious: 0.75, DropOff: 0.25},
		{Phase: "cart", Kind: "phase", Sessions: 2, OfFirst: 2.0 / 3, FromPrevious: 2.0 / 3, DropOff: 1.0 / 3},
		{Phase: "checkout", Kind: "phase", Sessions: 2, OfFirst: 2.0 / 3, FromPrevious: 1, DropOff: 0},
		{Phase: "purchase", Kind: "macro", Sessions: 2, OfFirst: 2.0 / 3, FromPrevious: 1, DropOff: 0},
	}
	if len(r.Funnel) != len(want) {
		t.Fatalf("%d steps, want %d: %+v", len(r.Funnel), len(want), r.Funnel)
	}
	for i, w := range want {
		g := r.Funnel[i]
		t.Run(w.Phase, func(t *testing.T) {
			if g.Phase != w.Phase || g.Kind != w.Kind || g.Sessions != w.Sessions {
				t.Fatalf("got %+v, want %+v", g, w)
			}
			checkNear(t, "of_first", g.OfFirst, w.OfFirst)
			checkNear(t, "from_previous", g.FromPrevious, w.FromPrevious)
			checkNear(t, "drop_off", g.DropOff, w.DropOff)
		})
	}
}

func TestMicroByHand(t *testing.T) {
	r := handReport(t)
	want := map[string]MicroRate{
		"view_product":      {Kind: "milestone", Phase: "browse", Sessions: 2, Rate: 0.5, ConversionWith: 0.5, ConversionWithout: 0.5},
		"add_to_cart":       {Kind: "milestone", Phase: "cart", Sessions: 1, Rate: 0.25, ConversionWith: 1, ConversionWithout: 1.0 / 3},
		"begin_checkout":    {Kind: "milestone", Phase: "checkout", Sessions: 1, Rate: 0.25, ConversionWith: 1, ConversionWithout: 1.0 / 3},
		"newsletter_signup": {Kind: "secondary", Sessions: 1, Rate: 0.25, ConversionWith: 1, ConversionWithout: 1.0 / 3},
		"share":             {Kind: "secondary", Sessions: 0, Rate: 0, ConversionWith: 0, ConversionWithout: 0.5},
	}
	seen := 0
	for _, g := range r.Micro {
		w, ok := want[g.Name]
		if !ok {
			continue
		}
		seen++
		t.Run(g.Name, func(t *testing.T) {
			if g.Kind != w.Kind || g.Phase != w.Phase || g.Sessions != w.Sessions {
				t.Fatalf("got %+v, want %+v", g, w)
			}
			checkNear(t, "rate", g.Rate, w.Rate)
			checkNear(t, "with", g.ConversionWith, w.ConversionWith)
			checkNear(t, "without", g.ConversionWithout, w.ConversionWithout)
		})
	}
	if seen != len(want) || len(r.Micro) != 7 {
		t.Fatalf("micro rows %+v", r.Micro)
	}
	if r.Micro[0].Name != "view_product" || r.Micro[3].Name != "newsletter_signup" {
		t.Errorf("order: milestones in phase order, then secondary actions: %+v", r.Micro)
	}
}

func TestSeriesByHand(t *testing.T) {
	r := handReport(t)
	if len(r.Series) != 24 {
		t.Fatalf("%d hourly buckets, want 24", len(r.Series))
	}
	var sessions, conversions, decisions int64
	for h, p := range r.Series {
		if !p.Start.Equal(day("2026-03-10T00:00:00Z").Add(time.Duration(h) * time.Hour)) {
			t.Fatalf("bucket %d starts %s", h, p.Start)
		}
		sessions += p.Sessions
		conversions += p.Conversions
		decisions += p.Decisions
	}
	if sessions != 4 || conversions != 2 || decisions != 1 {
		t.Fatalf("totals %d sessions %d conversions %d decisions", sessions, conversions, decisions)
	}
	if p := r.Series[10]; p.Sessions != 1 || p.Conversions != 1 || p.Revenue != 80 {
		t.Errorf("10:00 bucket %+v", p)
	}
	if p := r.Series[14]; p.Sessions != 1 || p.Conversions != 1 || p.Revenue != 60 || p.Decisions != 1 || p.Treated != 1 {
		t.Errorf("14:00 bucket %+v", p)
	}
}

func TestGroupAndRange(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		want string
	}{{time.Hour, "hour"}, {48 * time.Hour, "hour"}, {49 * time.Hour, "day"}, {90 * 24 * time.Hour, "day"}, {91 * 24 * time.Hour, "week"}} {
		if g := pickGroup(c.d); g != c.want {
			t.Errorf("pickGroup(%s) = %s, want %s", c.d, g, c.want)
		}
	}
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Skip("no tz database:", err)
	}
	// 2026-03-29 is the spring DST change in Paris: the day has 23 hours.
	s := bucketStart(day("2026-03-29T10:30:00Z"), "day", paris)
	if s.Format(time.RFC3339) != "2026-03-29T00:00:00+01:00" || nextBucket(s, "day").Sub(s) != 23*time.Hour {
		t.Errorf("day bucket %s, next after %s", s, nextBucket(s, "day").Sub(s))
	}
	if w := bucketStart(day("2026-03-29T10:30:00Z"), "week", paris); w.Format("2006-01-02 Mon") != "2026-03-23 Mon" {
		t.Errorf("week bucket %s", w)
	}

	st := handLog(t)
	site, _ := testSite(t)
	for _, q := range []Query{
		{From: day("2026-03-11T00:00:00Z"), To: day("2026-03-10T00:00:00Z")},
		{Group: "month"},
		{Outcome: "forever"},
		{Site: "other"},
	} {
		if _, err := Build(context.Background(), st, site, q); !errors.Is(err, ErrQuery) {
			t.Errorf("Build(%+v) = %v, want ErrQuery", q, err)
		}
	}
	// Zero range: the data's first event to one millisecond after its last; day buckets.
	r, err := Build(context.Background(), st, site, Query{})
	if err != nil {
		t.Fatal(err)
	}
	if !r.From.Equal(day("2026-03-05T09:00:00Z")) || !r.To.Equal(day("2026-03-12T09:00:00Z").Add(time.Millisecond)) || r.Group != "day" {
		t.Errorf("zero query: %s..%s %s", r.From, r.To, r.Group)
	}
	if r.Overview.Sessions.Value != 8 || len(r.Series) != 8 {
		t.Errorf("zero query: %v sessions, %d buckets", r.Overview.Sessions.Value, len(r.Series))
	}
}
