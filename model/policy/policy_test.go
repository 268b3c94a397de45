package policy

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/nudgehq/nudge/features"
)

func testSchema(t testing.TB) *features.Schema {
	t.Helper()
	s, err := features.NewSchema(features.Spec{
		MacroConversion: "purchase",
		Phases: []features.Phase{
			{Name: "browse", Milestones: []string{"view_product"}},
			{Name: "cart", Milestones: []string{"add_to_cart"}},
			{Name: "checkout", Milestones: []string{"begin_checkout"}},
		},
		SecondaryActions: []string{"newsletter_signup"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// vec builds a vector with the given phase (0 = none), page views and device.
func vec(t testing.TB, s *features.Schema, phase, pageViews int, device string) []float64 {
	t.Helper()
	x := make([]float64, s.Len())
	set := func(name string, v float64) {
		i, ok := s.Index(name)
		if !ok {
			t.Fatalf("no feature %s", name)
		}
		x[i] = v
	}
	set("funnel_phase", float64(phase))
	set("page_views", float64(pageViews))
	set("device_"+device, 1)
	return x
}

var catalogue = []Intervention{
	{ID: "discount10", Kind: "discount_popup", Cost: 3, Phases: []string{"cart", "checkout"}, PerSession: 1, PerVisitorPerDay: 2},
	{ID: "chat_offer", Kind: "chat", Cost: 1, MinPageViews: 3, PerSession: 1},
	{ID: "help_tip", Kind: "help_tip", Cost: 0.1, Devices: []string{"desktop"}, PathPrefixes: []string{"/help"}},
}

var day = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func newPolicy(t testing.TB, p Params) *Policy {
	t.Helper()
	if p.Value == 0 {
		p.Value = 60
	}
	pol, err := New(testSchema(t), p, catalogue)
	if err != nil {
		t.Fatal(err)
	}
	return pol
}

func TestGreedyExpectedValue(t *testing.T) {
	s := testSchema(t)
	tests := []struct {
		name      string
		x         []float64
		page      string
		uplift    []float64
		threshold float64
		want      int
	}{
		{"discount wins in cart", vec(t, s, 2, 5, "mobile"), "/cart", []float64{0.1, 0.02, 0}, 0, 0}, // 3 vs 0.2
		{"chat wins when its EV is higher", vec(t, s, 2, 5, "mobile"), "/cart", []float64{0.05, 0.05, 0}, 0, 1},
		{"discount not eligible before cart", vec(t, s, 1, 5, "mobile"), "/p", []float64{0.5, 0.02, 0}, 0, 1},
		{"chat needs 3 page views", vec(t, s, 1, 2, "mobile"), "/p", []float64{0.5, 0.5, 0.5}, 0, -1},
		{"help tip needs desktop and /help", vec(t, s, 0, 1, "desktop"), "/help/faq", []float64{0, 0, 0.01}, 0, 2},
		{"help tip not on mobile", vec(t, s, 0, 1, "mobile"), "/help/faq", []float64{0, 0, 0.01}, 0, -1},
		{"help tip not elsewhere", vec(t, s, 0, 1, "desktop"), "/shop", []float64{0, 0, 0.01}, 0, -1},
		{"negative uplift never treated", vec(t, s, 3, 9, "desktop"), "/help", []float64{-0.1, -0.1, -0.1}, 0, -1},
		{"uplift below cost", vec(t, s, 3, 9, "desktop"), "/x", []float64{0.04, 0.01, 0}, 0, -1}, // 2.4-3, 0.6-1
		{"threshold", vec(t, s, 3, 9, "desktop"), "/x", []float64{0.1, 0, 0}, 3.5, -1},           // EV 3 < 3.5
		{"threshold met", vec(t, s, 3, 9, "desktop"), "/x", []float64{0.1, 0, 0}, 2.5, 0},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pol := newPolicy(t, Params{Threshold: tt.threshold})
			var d Decision
			req := Request{DecisionID: fmt.Sprint("d", i), Visitor: fmt.Sprint("v", i), Session: fmt.Sprint("s", i),
				Page: tt.page, Features: tt.x, Uplift: tt.uplift, Now: day}
			if err := pol.Decide(&req, &d); err != nil {
				t.Fatal(err)
			}
			if d.Group != Treatment || d.Arm != tt.want {
				t.Fatalf("group %v arm %d (%s), want treatment arm %d", d.Group, d.Arm, d.Reason, tt.want)
			}
			if d.Probability != 1 {
				t.Fatalf("probability %v without randomisation, want 1", d.Probability)
			}
			if d.Reason == "" {
				t.Fatal("empty reason")
			}
		})
	}
}

func TestNoUpliftModelNeverTreatsOutsideExploration(t *testing.T) {
	s := testSchema(t)
	pol := newPolicy(t, Params{})
	var d Decision
	req := Request{DecisionID: "d", Visitor: "v", Session: "s", Features: vec(t, s, 3, 9, "mobile"), Now: day}
	if err := pol.Decide(&req, &d); err != nil {
		t.Fatal(err)
	}
	if d.Arm != -1 || d.Reason != "no uplift model is promoted" {
		t.Fatalf("arm %d reason %q", d.Arm, d.Reason)
	}
}

func TestCaps(t *testing.T) {
	s := testSchema(t)
	pol := newPolicy(t, Params{})
	x := vec(t, s, 2, 5, "mobile")
	up := []float64{0.2, 0, 0}
	decide := func(visitor, session string) int {
		var d Decision
		req := Request{DecisionID: visitor + session, Visitor: visitor, Session: session, Features: x, Uplift: up, Now: day}
		if err := pol.Decide(&req, &d); err != nil {
			t.Fatal(err)
		}
		return d.Arm
	}
	if a := decide("v1", "s1"); a != 0 {
		t.Fatalf("first decision arm %d", a)
	}
	if a := decide("v1", "s1"); a != -1 {
		t.Fatalf("per-session cap 1 not applied: arm %d", a)
	}
	if a := decide("v1", "s2"); a != 0 {
		t.Fatalf("second session of the day arm %d", a)
	}
	if a := decide("v1", "s3"); a != -1 {
		t.Fatalf("per-visitor-per-day cap 2 not applied: arm %d", a)
	}
	if a := decide("v2", "s4"); a != 0 {
		t.Fatalf("another visitor capped: arm %d", a)
	}
	// Next day the visitor's caps are reset.
	var d Decision
	req := Request{DecisionID: "next", Visitor: "v1", Session: "s5", Features: x, Uplift: up, Now: day.Add(24 * time.Hour)}
	if err := pol.Decide(&req, &d); err != nil || d.Arm != 0 {
		t.Fatalf("next day: arm %d err %v", d.Arm, err)
	}
}

func TestBudget(t *testing.T) {
	s := testSchema(t)
	x := vec(t, s, 2, 5, "mobile")
	up := []float64{0.2, 0, 0}
	run := func(p Params, n int) (treated int, spend float64) {
		pol := newPolicy(t, p)
		var d Decision
		for i := range n {
			req := Request{DecisionID: fmt.Sprint(i), Visitor: fmt.Sprint("v", i), Session: fmt.Sprint("s", i), Features: x, Uplift: up, Now: day}
			if err := pol.Decide(&req, &d); err != nil {
				t.Fatal(err)
			}
			if d.Arm >= 0 {
				treated++
				spend += catalogue[d.Arm].Cost
			}
		}
		return
	}
	if tr, _ := run(Params{MaxShare: 0.25}, 400); tr != 100 {
		t.Fatalf("max share 0.25 of 400 decisions treated %d, want 100", tr)
	}
	if _, sp := run(Params{MaxSpendPerDay: 30}, 400); sp != 30 {
		t.Fatalf("max spend 30 spent %v", sp)
	}
}

func TestHoldoutAndExploration(t *testing.T) {
	s := testSchema(t)
	const h, e, n = 0.1, 0.2, 40000
	pol := newPolicy(t, Params{HoldoutShare: h, ExplorationShare: e, Seed: 42})
	x := vec(t, s, 2, 5, "mobile") // discount and chat eligible, help tip not
	up := []float64{0.1, 0.02, 0}  // greedy = discount
	var d Decision
	counts := map[int]int{}
	probs := map[int]float64{}
	groups := map[Group]int{}
	for i := range n {
		v := fmt.Sprint("v", i)
		req := Request{DecisionID: fmt.Sprint("d", i), Visitor: v, Session: fmt.Sprint("s", i), Features: x, Uplift: up, Now: day}
		if err := pol.Decide(&req, &d); err != nil {
			t.Fatal(err)
		}
		if d.Group == Holdout && d.Arm != -1 {
			t.Fatal("holdout treated")
		}
		if pol.InHoldout(v) != (d.Group == Holdout) {
			t.Fatal("holdout not sticky")
		}
		counts[d.Arm]++
		groups[d.Group]++
		probs[d.Arm] = d.Probability
	}
	// Expected marginal probabilities (package doc): E = {discount, chat}, g = discount.
	want := map[int]float64{
		0:  (1 - h) * ((1 - e) + e/3),
		1:  (1 - h) * e / 3,
		-1: h + (1-h)*e/3,
	}
	sum := 0.0
	for a, p := range want {
		sum += p
		if math.Abs(probs[a]-p) > 1e-12 {
			t.Errorf("logged probability of arm %d = %v, want %v", a, probs[a], p)
		}
		got := float64(counts[a]) / n
		se := math.Sqrt(p * (1 - p) / n)
		if math.Abs(got-p) > 5*se {
			t.Errorf("arm %d taken %.4f of the time, logged probability %.4f (5 s.e. = %.4f)", a, got, p, 5*se)
		}
	}
	if math.Abs(sum-1) > 1e-12 {
		t.Fatalf("probabilities sum to %v", sum)
	}
	if got := float64(groups[Holdout]) / n; math.Abs(got-h) > 0.01 {
		t.Errorf("holdout share %.4f, want %.2f", got, h)
	}
	if got := float64(groups[Explore]) / n; math.Abs(got-(1-h)*e) > 0.01 {
		t.Errorf("explore share %.4f, want %.3f", got, (1-h)*e)
	}
}

func TestDeterministicAcrossInstances(t *testing.T) {
	s := testSchema(t)
	a := newPolicy(t, Params{HoldoutShare: 0.3, ExplorationShare: 0.3, Seed: 7})
	b := newPolicy(t, Params{HoldoutShare: 0.3, ExplorationShare: 0.3, Seed: 7})
	c := newPolicy(t, Params{HoldoutShare: 0.3, ExplorationShare: 0.3, Seed: 8})
	x := vec(t, s, 2, 5, "mobile")
	diff := 0
	for i := range 200 {
		var da, db, dc Decision
		req := Request{DecisionID: fmt.Sprint(i), Visitor: fmt.Sprint("v", i), Session: fmt.Sprint("s", i), Features: x, Uplift: []float64{0.1, 0.02, 0}, Now: day}
		for _, pd := range []struct {
			p *Policy
			d *Decision
		}{{a, &da}, {b, &db}, {c, &dc}} {
			if err := pd.p.Decide(&req, pd.d); err != nil {
				t.Fatal(err)
			}
		}
		if da.Arm != db.Arm || da.Group != db.Group {
			t.Fatalf("same seed, different decisions at %d", i)
		}
		if da.Group != dc.Group {
			diff++
		}
	}
	if diff == 0 {
		t.Fatal("a different seed gave the same groups 200 times")
	}
}

func TestBadInput(t *testing.T) {
	s := testSchema(t)
	if _, err := New(s, Params{HoldoutShare: 0.6, ExplorationShare: 0.5}, catalogue); err == nil {
		t.Fatal("holdout+exploration >= 1 accepted")
	}
	if _, err := New(s, Params{}, []Intervention{{ID: "x", Phases: []string{"nope"}}}); err == nil {
		t.Fatal("unknown phase accepted")
	}
	if _, err := New(s, Params{}, []Intervention{{ID: "x", Devices: []string{"tv"}}}); err == nil {
		t.Fatal("unknown device accepted")
	}
	pol := newPolicy(t, Params{})
	var d Decision
	if err := pol.Decide(&Request{Features: vec(t, s, 0, 0, "mobile"), Uplift: []float64{1}, Now: day}, &d); err == nil {
		t.Fatal("wrong uplift length accepted")
	}
	if err := pol.Decide(&Request{Features: []float64{1, 2}, Now: day}, &d); err == nil {
		t.Fatal("short vector accepted")
	}
}

func BenchmarkDecide(b *testing.B) {
	s := testSchema(b)
	ivs := []Intervention{{ID: "a", Cost: 3}, {ID: "b", Cost: 1}, {ID: "c", Cost: 0.1}}
	pol, err := New(s, Params{Value: 60, HoldoutShare: 0.1, ExplorationShare: 0.05, MaxShare: 0.5, MaxSpendPerDay: 1e12}, ivs)
	if err != nil {
		b.Fatal(err)
	}
	x := vec(b, s, 2, 5, "mobile")
	req := Request{DecisionID: "d1", Visitor: "v1", Session: "s1", Features: x, Uplift: []float64{0.1, 0.02, 0.01}, Now: day}
	var d Decision
	b.ReportAllocs()
	for b.Loop() {
		if err := pol.Decide(&req, &d); err != nil {
			b.Fatal(err)
		}
	}
}

func TestBudgetFirstDecisionOfTheDayCanTreat(t *testing.T) {
	s := testSchema(t)
	pol := newPolicy(t, Params{MaxShare: 0.5})
	var d Decision
	req := Request{DecisionID: "first", Visitor: "v", Session: "s", Features: vec(t, s, 2, 5, "mobile"), Uplift: []float64{0.2, 0, 0}, Now: day}
	if err := pol.Decide(&req, &d); err != nil {
		t.Fatal(err)
	}
	if d.Arm != 0 {
		t.Fatalf("first decision of the day with a 50%% share budget: arm %d (%s)", d.Arm, d.Reason)
	}
}

// TestReasonsMatchFormat checks the hand-built reasons against the fmt formats they replace,
// on values that round differently at 2 and 3 decimals, negatives, NaN and infinities.
func TestReasonsMatchFormat(t *testing.T) {
	vals := []float64{0, 1, -1, 0.005, 0.0049999, 12.3456, -0.001, 1e9, math.NaN(), math.Inf(1), math.Inf(-1), math.Copysign(0, -1)}
	for _, ev := range vals {
		for _, u := range vals {
			want := fmt.Sprintf("%s has the highest expected value (%.2f = uplift %.3f x %.2f - cost %.2f)", "iv", ev, u, 60.0, u)
			if got := greedyReason("iv", ev, u, 60, u); got != want {
				t.Fatalf("greedyReason = %q, want %q", got, want)
			}
		}
	}
}

// TestReasons checks the reason of each kind of decision.
func TestReasons(t *testing.T) {
	s := testSchema(t)
	ivs := []Intervention{{ID: "a", Cost: 3}, {ID: "b", Cost: 1}}
	x := vec(t, s, 2, 5, "mobile")
	tests := []struct {
		name   string
		params Params
		uplift []float64
		want   string
	}{
		{"greedy", Params{Value: 60}, []float64{0.1, 0.02}, "a has the highest expected value (3.00 = uplift 0.100 x 60.00 - cost 3.00)"},
		{"below threshold", Params{Value: 60, Threshold: 5}, []float64{0.1, 0.02}, "no eligible intervention has a positive expected value above the threshold (best 3.00)"},
		{"negative", Params{Value: 60}, []float64{-0.1, -0.02}, "no eligible intervention has a positive expected value above the threshold (best -2.20)"},
		{"no model", Params{Value: 60}, nil, "no uplift model is promoted"},
		{"explore", Params{Value: 60, ExplorationShare: 0.999}, []float64{0.1, 0.02}, "exploration: "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pol, err := New(s, tc.params, ivs)
			if err != nil {
				t.Fatal(err)
			}
			var d Decision
			if err := pol.Decide(&Request{DecisionID: "d", Visitor: "v", Session: "s", Features: x, Uplift: tc.uplift, Now: day}, &d); err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(d.Reason, tc.want) {
				t.Fatalf("reason %q, want %q", d.Reason, tc.want)
			}
			if d.Group == Explore && d.Arm >= 0 && d.Reason != "exploration: random eligible intervention "+ivs[d.Arm].ID {
				t.Fatalf("exploring reason %q for arm %d", d.Reason, d.Arm)
			}
		})
	}
}
