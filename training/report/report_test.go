package report

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
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

func TestAttributionByHand(t *testing.T) {
	r := handReport(t)
	const (
		fb     = "facebook.com / social"
		google = "google / cpc"
	)
	h := float64((7 * 24 * time.Hour).Milliseconds())
	ms := func(d time.Duration) float64 { return float64(d.Milliseconds()) }
	// time decay: conversion 1 (10:04, value 80) has touches a0 (5d 1h04m before) and s1 (4m);
	// conversion 2 (14:05, value 60) a0 (5d 5h05m), s1 (4h05m), s3 (5m).
	w1 := []float64{math.Exp2(-ms(5*24*time.Hour+64*time.Minute) / h), math.Exp2(-ms(4*time.Minute) / h)}
	w2 := []float64{math.Exp2(-ms(5*24*time.Hour+305*time.Minute) / h), math.Exp2(-ms(245*time.Minute) / h), math.Exp2(-ms(5*time.Minute) / h)}
	s1, s2 := w1[0]+w1[1], w2[0]+w2[1]+w2[2]
	type cr struct{ conv, rev float64 }
	want := map[string]map[string]cr{
		"first_touch":    {fb: {2, 140}},
		"last_touch":     {google: {1, 80}, "direct": {1, 60}},
		"linear":         {fb: {0.5 + 1.0/3, 40 + 20}, google: {0.5 + 1.0/3, 40 + 20}, "direct": {1.0 / 3, 20}},
		"time_decay":     {fb: {w1[0]/s1 + w2[0]/s2, 80*w1[0]/s1 + 60*w2[0]/s2}, google: {w1[1]/s1 + w2[1]/s2, 80*w1[1]/s1 + 60*w2[1]/s2}, "direct": {w2[2] / s2, 60 * w2[2] / s2}},
		"position_based": {fb: {0.5 + 0.4, 40 + 24}, google: {0.5 + 0.2, 40 + 12}, "direct": {0.4, 24}},
	}
	if len(r.Attribution) != len(Models) {
		t.Fatalf("%d models", len(r.Attribution))
	}
	for i, a := range r.Attribution {
		t.Run(a.Model, func(t *testing.T) {
			if a.Model != Models[i] {
				t.Fatalf("model %d is %s", i, a.Model)
			}
			chans := 0
			share := map[string]float64{}
			for j, c := range a.Rows {
				share[c.Kind] += c.Share
				if j > 0 && c.Conversions > a.Rows[j-1].Conversions {
					t.Errorf("rows not sorted by conversions: %+v", a.Rows)
				}
				switch c.Kind {
				case "channel":
					chans++
					w, ok := want[a.Model][c.Touch]
					if !ok {
						t.Errorf("unexpected channel %q", c.Touch)
						continue
					}
					checkNear(t, c.Touch+" conversions", c.Conversions, w.conv)
					checkNear(t, c.Touch+" revenue", c.Revenue, w.rev)
					checkNear(t, c.Touch+" share", c.Share, w.conv/2)
				case "intervention":
					// one touch per conversion: every model gives it the whole conversion
					switch c.Touch {
					case NoIntervention:
						checkNear(t, "none", c.Revenue, 80)
					case "discount10":
						checkNear(t, "discount10", c.Revenue, 60)
					default:
						t.Errorf("unexpected intervention %q", c.Touch)
					}
					checkNear(t, c.Touch+" conversions", c.Conversions, 1)
				}
			}
			if chans != len(want[a.Model]) {
				t.Errorf("%d channel rows, want %d: %+v", chans, len(want[a.Model]), a.Rows)
			}
			checkNear(t, "channel shares", share["channel"], 1)
			checkNear(t, "intervention shares", share["intervention"], 1)
		})
	}
}

func TestAttributionWeights(t *testing.T) {
	for _, c := range []struct {
		model string
		n     int
		want  []float64
	}{
		{"position_based", 1, []float64{1}},
		{"position_based", 2, []float64{0.5, 0.5}},
		{"position_based", 3, []float64{0.4, 0.2, 0.4}},
		{"position_based", 4, []float64{0.4, 0.1, 0.1, 0.4}},
		{"first_touch", 3, []float64{1, 0, 0}},
		{"last_touch", 3, []float64{0, 0, 1}},
		{"linear", 4, []float64{0.25, 0.25, 0.25, 0.25}},
		// touches 2 and 1 half-lives before the conversion, and at it: 1/4, 1/2, 1 normalised
		{"time_decay", 3, []float64{0.25 / 1.75, 0.5 / 1.75, 1 / 1.75}},
	} {
		t.Run(fmt.Sprintf("%s/%d", c.model, c.n), func(t *testing.T) {
			ts := make([]int64, c.n)
			for i := range ts {
				ts[i] = int64(10 - c.n + 1 + i) // 8, 9, 10 for n = 3
			}
			got := weights(c.model, ts, 10, 1, nil)
			for i := range c.want {
				checkNear(t, fmt.Sprint("w", i), got[i], c.want[i])
			}
		})
	}
}

func TestLiftAndImpactByHand(t *testing.T) {
	r := handReport(t)
	if len(r.Lift) != 2 || r.Lift[0].Arm != "policy" || r.Lift[1].Arm != "discount10" {
		t.Fatalf("lift arms %+v", r.Lift)
	}
	// one treatment session (s3, whose visitor converts within 24h after the decision), no holdout
	if p := r.Lift[0]; p.Sessions != 1 || p.Conversions != 1 || p.HoldoutSessions != 0 || p.Cost != 3 {
		t.Errorf("policy %+v", p)
	}
	hasNote := func(sub string) bool {
		for _, n := range r.Notes {
			if strings.Contains(n, sub) {
				return true
			}
		}
		return false
	}
	for _, n := range []string{"no holdout sessions", "arm discount10: no comparable decisions"} {
		if !hasNote(n) {
			t.Errorf("no note %q in %q", n, r.Notes)
		}
	}
	// Impact: d1 is on s3 at 14:01 (1 page view, no milestone): discount10 was shown (so
	// possible), chat_offer needs 3 page views, help_tip is eligible with EV 0.001*60-0.1 < 0;
	// discount10's EV is 0.1*60-3 = 3.
	im := r.Impact
	if im.ModelVersion != "v2" || len(im.ByThreshold) != 11 || len(im.ByBudget) != 10 {
		t.Fatalf("impact %+v", im)
	}
	want := ImpactPoint{Threshold: 0, Budget: 0.5, Treated: 1, TreatedShare: 1, IncrementalConversions: 0.1,
		IncrementalRevenue: 6, Cost: 3, ROI: 1}
	got := im.Current
	if got.Treated != want.Treated || !near(got.Budget, want.Budget) || !near(got.IncrementalConversions, 0.1) ||
		!near(got.IncrementalRevenue, 6) || !near(got.Cost, 3) || !near(got.ROI, 1) {
		t.Errorf("current %+v, want %+v", got, want)
	}
	checkNear(t, "max threshold", im.ByThreshold[10].Threshold, 3)
	if im.ByThreshold[10].Treated != 1 {
		t.Errorf("at the max EV threshold the decision is still treated: %+v", im.ByThreshold[10])
	}
}

// An empty store gives a report (with a note) that encodes as JSON: no NaN anywhere.
func TestEmptyStore(t *testing.T) {
	site, sc := testSite(t)
	st := openMem(t, sc)
	r, err := Build(context.Background(), st, site, Query{})
	if err != nil {
		t.Fatal(err)
	}
	var buf strings.Builder
	if err := r.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	if r.Overview.Sessions.Value != 0 || len(r.Lift) != 0 || len(r.Notes) == 0 || !strings.Contains(r.Notes[0], "no events") {
		t.Errorf("empty report: %+v", r)
	}
}

// Buckets follow the site's time zone: the hand log in Paris starts on 5 March at 10:00
// local time, so the first day bucket starts at local midnight.
func TestSeriesTimeZone(t *testing.T) {
	st := handLog(t)
	site, _ := testSite(t)
	site.TimeZone = "Europe/Paris"
	if site.Location() == time.UTC {
		t.Skip("no tz database")
	}
	r, err := Build(context.Background(), st, site, Query{})
	if err != nil {
		t.Fatal(err)
	}
	if r.TimeZone != "Europe/Paris" || r.Series[0].Start.Format(time.RFC3339) != "2026-03-05T00:00:00+01:00" {
		t.Fatalf("zone %s, first bucket %s", r.TimeZone, r.Series[0].Start.Format(time.RFC3339))
	}
	var buf strings.Builder
	if err := r.WriteCSV(&buf, "series"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "from=2026-03-05T10:00:00+01:00") || !strings.Contains(buf.String(), "\n2026-03-10T00:00:00+01:00,4,2,140,1,1\n") {
		t.Errorf("series csv in Paris time:\n%s", buf.String())
	}
}
