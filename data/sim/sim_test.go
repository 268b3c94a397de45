package sim

import (
	"context"
	"errors"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/nudgehq/nudge/features"
)

type collector struct {
	events  []features.Event
	batches int
}

func (c *collector) sink(_ context.Context, evs []features.Event) error {
	c.batches++
	c.events = append(c.events, evs...)
	return nil
}

func run(t *testing.T, cfg Config, d Decider) (*Result, []features.Event) {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var c collector
	res, err := s.Run(context.Background(), c.sink, d)
	if err != nil {
		t.Fatal(err)
	}
	return res, c.events
}

func TestDeterministicPerSeed(t *testing.T) {
	cfg := Config{Seed: 7, Visitors: 300}
	r1, e1 := run(t, cfg, NewRandomPolicy(1))
	r2, e2 := run(t, cfg, NewRandomPolicy(1))
	if !reflect.DeepEqual(r1, r2) || !reflect.DeepEqual(e1, e2) {
		t.Fatal("two runs with the same seed differ")
	}
	r3, e3 := run(t, Config{Seed: 8, Visitors: 300}, NewRandomPolicy(1))
	if reflect.DeepEqual(e1, e3) || reflect.DeepEqual(r1.Truth, r3.Truth) {
		t.Fatal("different seeds give the same traffic")
	}
	if r1.Events != len(e1) || r1.Sessions != len(r1.Truth) || len(r1.Truth) != len(r1.Decisions) {
		t.Fatalf("counts: events %d/%d sessions %d truth %d decisions %d", r1.Events, len(e1), r1.Sessions, len(r1.Truth), len(r1.Decisions))
	}
	// Common random numbers: the same seed under another policy gives the same sessions and truth.
	r4, _ := run(t, cfg, &OraclePolicy{})
	if !reflect.DeepEqual(r1.Truth, r4.Truth) {
		t.Fatal("truth depends on the policy")
	}
}

func TestSegmentShares(t *testing.T) {
	shares := map[string]float64{PersuadablePrice: 0.1, PersuadableConfused: 0.2, SureThing: 0.3, LostCause: 0.25, SleepingDog: 0.15}
	res, _ := run(t, Config{Seed: 3, Visitors: 5000, Shares: shares, Days: 7}, NewRandomPolicy(2))
	for name, want := range shares {
		got := float64(res.Segments[name]) / float64(res.Visitors)
		// binomial sd at n=5000 is at most 0.0071; allow 3.5 sd
		if math.Abs(got-want) > 0.025 {
			t.Errorf("%s: share %.4f, want %.2f", name, got, want)
		}
	}
}

func TestTrueUpliftOrdering(t *testing.T) {
	res, _ := run(t, Config{Seed: 11, Visitors: 3000}, NewRandomPolicy(3))
	type acc struct {
		up [3]float64
		n  float64
	}
	by := map[string]*acc{}
	for _, tr := range res.Truth {
		a := by[tr.Segment]
		if a == nil {
			a = &acc{}
			by[tr.Segment] = a
		}
		a.n++
		for k := range tr.PArm {
			a.up[k] += tr.PArm[k] - tr.PControl
		}
	}
	mean := func(seg string, k int) float64 { return by[seg].up[k] / by[seg].n }
	for k := 0; k < 3; k++ {
		if mean(PersuadablePrice, k) <= 0 || mean(PersuadableConfused, k) <= 0 {
			t.Errorf("arm %d: persuadables' uplift %.3f %.3f, want > 0", k+1, mean(PersuadablePrice, k), mean(PersuadableConfused, k))
		}
		if mean(SleepingDog, k) >= 0 {
			t.Errorf("arm %d: sleeping dogs' uplift %.3f, want < 0", k+1, mean(SleepingDog, k))
		}
		if math.Abs(mean(LostCause, k)) > 1e-9 {
			t.Errorf("arm %d: lost causes' uplift %.3f, want 0", k+1, mean(LostCause, k))
		}
	}
	// discount works on price-sensitive visitors, chat on confused ones
	if mean(PersuadablePrice, 0) <= mean(PersuadableConfused, 0) || mean(PersuadableConfused, 1) <= mean(PersuadablePrice, 1) {
		t.Error("effects do not differ by intervention and segment as designed")
	}
	// sure things buy anyway
	pc := map[string]float64{}
	for _, tr := range res.Truth {
		pc[tr.Segment] += tr.PControl / by[tr.Segment].n
	}
	if !(pc[SureThing] > pc[SleepingDog] && pc[SleepingDog] > pc[PersuadablePrice] && pc[LostCause] < 0.02) {
		t.Errorf("control conversion by segment out of order: %v", pc)
	}
}

func TestRandomPolicyLogsProbabilities(t *testing.T) {
	res, _ := run(t, Config{Seed: 5, Visitors: 2500}, NewRandomPolicy(9))
	// For each eligibility count m, the arms are chosen with probability 1/(m+1) each.
	counts := map[[3]bool][]float64{}
	for i, d := range res.Decisions {
		m := 0
		var key [3]bool
		for k, e := range res.Truth[i].Eligible {
			if e {
				m++
				key[k] = true
			}
		}
		if math.Abs(d.Probability-1/float64(m+1)) > 1e-12 {
			t.Fatalf("decision %d: probability %g with %d eligible", i, d.Probability, m)
		}
		if counts[key] == nil {
			counts[key] = make([]float64, 4)
		}
		counts[key][d.Arm]++
		if d.Arm > 0 && !res.Truth[i].Eligible[d.Arm-1] {
			t.Fatalf("decision %d: ineligible arm chosen", i)
		}
	}
	for key, c := range counts {
		n, m := 0.0, 0
		for _, x := range c {
			n += x
		}
		for _, e := range key {
			if e {
				m++
			}
		}
		if n < 300 {
			continue
		}
		p := 1 / float64(m+1)
		for arm, x := range c {
			want := n * p
			if arm > 0 && !key[arm-1] {
				want = 0
			}
			if sd := math.Sqrt(n * p * (1 - p)); math.Abs(x-want) > 4*sd {
				t.Errorf("eligible %v: counts %v over %g decisions", key, c, n)
			}
		}
	}
	if len(counts) < 2 {
		t.Errorf("eligibility never varies: %v", counts)
	}
}

func TestEventStreams(t *testing.T) {
	res, evs := run(t, Config{Seed: 21, Visitors: 1000, DecideAfterEvents: 8}, NewRandomPolicy(4))
	bySession := map[string][]features.Event{}
	ids := map[string]bool{}
	users := map[string]map[string]bool{}
	for _, e := range evs {
		if !e.Type.Valid() || e.EventID == "" || e.SessionID == "" || e.AnonymousID == "" || !e.Consent {
			t.Fatalf("bad event %+v", e)
		}
		if ids[e.EventID] {
			t.Fatalf("duplicate event id %s", e.EventID)
		}
		ids[e.EventID] = true
		bySession[e.SessionID] = append(bySession[e.SessionID], e)
		if e.UserID != "" {
			if users[e.UserID] == nil {
				users[e.UserID] = map[string]bool{}
			}
			users[e.UserID][e.AnonymousID] = true
		}
	}
	conv := 0
	for i, d := range res.Decisions {
		es := bySession[d.SessionID]
		if es[0].Type != features.PageView || es[0].Props["device"] == "" {
			t.Fatalf("session %s does not start with a page view: %+v", d.SessionID, es[0])
		}
		for j := 1; j < len(es); j++ {
			if es[j].TS < es[j-1].TS {
				t.Fatalf("session %s: events out of order", d.SessionID)
			}
		}
		before, exposures, purchases := 0, 0, 0
		for _, e := range es {
			if e.TS < d.TS {
				before++
			}
			switch e.Type {
			case features.Exposure:
				exposures++
				if e.Props["decision_id"] != d.DecisionID || e.Props["intervention"] != d.Intervention {
					t.Fatalf("exposure %+v for decision %+v", e, d)
				}
			case features.MacroConversion:
				purchases++
				if e.Name != Macro || e.Value != ConversionValue {
					t.Fatalf("bad purchase %+v", e)
				}
			}
		}
		if before < 8 {
			t.Fatalf("session %s: %d events before the decision", d.SessionID, before)
		}
		if (exposures == 1) != (d.Arm > 0) || exposures > 1 {
			t.Fatalf("session %s: %d exposures for arm %d", d.SessionID, exposures, d.Arm)
		}
		if (purchases == 1) != d.Converted {
			t.Fatalf("session %s: purchases %d, converted %v", d.SessionID, purchases, d.Converted)
		}
		if d.Converted {
			conv++
		}
		_ = i
	}
	if conv == 0 {
		t.Fatal("nobody converted")
	}
	twoDevices := 0
	for _, anons := range users {
		if len(anons) == 2 {
			twoDevices++
		}
	}
	if len(users) == 0 || twoDevices == 0 {
		t.Errorf("identified visitors %d, on two devices %d", len(users), twoDevices)
	}
	if res.Sessions <= res.Visitors {
		t.Errorf("no revisits: %d sessions for %d visitors", res.Sessions, res.Visitors)
	}
	last := time.UnixMilli(res.Truth[len(res.Truth)-1].TS).UTC()
	if first := time.UnixMilli(res.Truth[0].TS).UTC(); last.Sub(first) < 14*24*time.Hour {
		t.Errorf("traffic spans %v to %v only", first, last)
	}
}

func TestOracle(t *testing.T) {
	res, _ := run(t, Config{Seed: 2, Visitors: 1000}, &OraclePolicy{})
	arms := make([]int, len(res.Decisions))
	for i, d := range res.Decisions {
		arms[i] = d.Arm
	}
	online, err := PolicyValue(res.Truth, arms)
	if err != nil {
		t.Fatal(err)
	}
	offline, _ := PolicyValue(res.Truth, OracleArms(res.Truth, -1))
	if online <= 0 || math.Abs(online-offline) > 1e-9 {
		t.Fatalf("oracle value online %g offline %g", online, offline)
	}
	treated := 0
	for _, a := range arms {
		if a > 0 {
			treated++
		}
	}
	half, _ := PolicyValue(res.Truth, OracleArms(res.Truth, treated/2))
	if !(half < offline && half > offline/2) {
		t.Errorf("oracle at half budget %g vs full %g", half, offline)
	}
	all := make([]int, len(arms))
	for i := range all {
		all[i], _ = res.Truth[i].BestArm()
		if all[i] == 0 {
			for k, e := range res.Truth[i].Eligible {
				if e {
					all[i] = k + 1
				}
			}
		}
	}
	everyone, _ := PolicyValue(res.Truth, all)
	if everyone >= offline {
		t.Errorf("treat everyone %g >= oracle %g", everyone, offline)
	}
}

func TestErrors(t *testing.T) {
	if _, err := New(Config{Shares: map[string]float64{"nope": 1}}); !errors.Is(err, ErrConfig) {
		t.Errorf("unknown segment: %v", err)
	}
	if _, err := New(Config{DecideAfterEvents: 1}); !errors.Is(err, ErrConfig) {
		t.Errorf("decide after 1: %v", err)
	}
	s, _ := New(Config{Visitors: 10})
	boom := errors.New("boom")
	_, err := s.Run(context.Background(), func(context.Context, []features.Event) error { return boom }, NewRandomPolicy(1))
	if !errors.Is(err, boom) {
		t.Errorf("sink error: %v", err)
	}
	_, err = s.Run(context.Background(), nil, DeciderFunc(func(context.Context, DecisionRequest) (Decision, error) {
		return Decision{Intervention: "free_car"}, nil
	}))
	if err == nil {
		t.Error("unknown intervention accepted")
	}
}

func BenchmarkRun(b *testing.B) {
	s, _ := New(Config{Seed: 1, Visitors: 3000, Days: 21})
	for b.Loop() {
		if _, err := s.Run(context.Background(), func(context.Context, []features.Event) error { return nil }, NewRandomPolicy(1)); err != nil {
			b.Fatal(err)
		}
	}
}
