package pipeline

import (
	"context"
	"flag"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nudgehq/nudge/data/config"
	"github.com/nudgehq/nudge/data/sim"
	"github.com/nudgehq/nudge/data/store"
	"github.com/nudgehq/nudge/features"
	"github.com/nudgehq/nudge/model"
	"github.com/nudgehq/nudge/training"
	"github.com/nudgehq/nudge/training/uplift"
)

var (
	qualityVisitors = flag.Int("quality.visitors", 0, "visitors per simulated run in TestQualityLearntPolicy (0 = 4000, 1000 under -race)")
	qualityDays     = flag.Int("quality.days", 28, "days per simulated run in TestQualityLearntPolicy")
	qualityMin      = flag.Float64("quality.min", 0, "share of the oracle's value TestQualityLearntPolicy asserts (0 = the sizing's default)")
	qualityLearner  = flag.String("quality.learner", "x", "uplift learner of TestQualityLearntPolicy (t, x, to, auto)")
	qualityBudget   = flag.Float64("quality.budget", 0.3, "budget: share of decided sessions treated at most")
	qualityTrees    = flag.Int("quality.trees", 0, "uplift base trees (0 = default)")
	qualityDepth    = flag.Int("quality.depth", 3, "uplift base depth")
	qualityLeaf     = flag.Int("quality.leaf", 200, "uplift base min leaf")
	qualityLR       = flag.Float64("quality.lr", 0.05, "uplift base learning rate")
	qualityWindow   = flag.Duration("quality.window", DefaultWindow, "label window of TestQualityLearntPolicy")
)

// demoSite returns the demo site (the simulator's shop) and its schema.
func demoSite(t testing.TB) (*config.Site, *features.Schema) {
	t.Helper()
	cfg := config.Demo()
	site := &cfg.Sites[0]
	sc, err := features.NewSchema(site.FeatureSpec())
	if err != nil {
		t.Fatal(err)
	}
	ivs := sim.Interventions()
	if len(ivs) != len(site.Interventions) {
		t.Fatalf("sim has %d interventions, the demo site %d", len(ivs), len(site.Interventions))
	}
	for k, iv := range ivs {
		if site.Interventions[k].ID != iv.Name || site.Interventions[k].Cost != iv.Cost {
			t.Fatalf("intervention %d: sim %+v, site %+v", k, iv, site.Interventions[k])
		}
	}
	return site, sc
}

func openMem(t testing.TB, sc *features.Schema) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), store.Options{InMemory: true,
		Schema: func(string) (*features.Schema, error) { return sc, nil }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close(context.Background()) })
	return st
}

// simulate runs the simulator into st (events through store.Append) with decider, and logs
// every decision with store.LogDecision. It waits until the decisions are readable.
func simulateSized(t testing.TB, st *store.Store, site string, seed uint64, visitors, days int, decider sim.Decider) *sim.Result {
	t.Helper()
	ctx := context.Background()
	s, err := sim.New(sim.Config{Seed: seed, Visitors: visitors, Days: days, Site: site})
	if err != nil {
		t.Fatal(err)
	}
	logged := 0
	logging := sim.DeciderFunc(func(ctx context.Context, req sim.DecisionRequest) (sim.Decision, error) {
		d, err := decider.Decide(ctx, req)
		if err != nil {
			return d, err
		}
		if d.DecisionID == "" {
			d.DecisionID = req.SessionID + "-d"
		}
		sess, err := st.ResolveSession(ctx, site, req.SessionID)
		if err != nil {
			return d, err
		}
		logged++
		return d, st.LogDecision(ctx, &store.DecisionRecord{
			ID: d.DecisionID, Site: site, Session: sess, AnonymousID: req.AnonymousID, UserID: req.UserID,
			TS: req.TS, Group: "explore", Arm: d.Intervention, Probability: d.Probability,
			Interventions: append([]string(nil), req.Eligible...), Reason: "random policy",
		})
	})
	res, err := s.Run(ctx, func(ctx context.Context, evs []features.Event) error {
		_, err := st.Append(ctx, site, evs)
		return err
	}, logging)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := 0
		if err := st.Decisions(ctx, site, 0, 0, func(*store.DecisionRecord) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
		if n == logged {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d logged decisions readable", n, logged)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return res
}

// scored is what the learnt decider saw at one decision point.
type scored struct {
	arm        int     // eligible arm with the highest predicted expected value (0 = none positive)
	ev         float64 // its expected value
	propensity float64
	globalArm  int // best eligible arm by the training data's average effect
}

// TestQualityLearntPolicy is issue 5's quality bar at a size that runs in well under a minute
// (4,000 visitors over 4 weeks per run; 1,000 over 2 weeks under -race, where it only checks
// that the learnt policy clearly beats both baselines). At this size the learnt policy reaches
// about 68% of the oracle and the test asserts 60%; the 90% bar needs more logged data
// (about 78,000 decisions): TestQualityLearntPolicySlow (quality_slow_test.go, build tag slow)
// runs it with 40,000 visitors and asserts 90%.
//
//	go test -run TestQualityLearntPolicy -v ./training/pipeline
func TestQualityLearntPolicy(t *testing.T) {
	visitors, days, minShare := 4000, *qualityDays, 0.6
	if raceEnabled {
		visitors, days, minShare = 1000, 14, 0
	}
	if *qualityVisitors > 0 {
		visitors = *qualityVisitors
	}
	if *qualityMin > 0 {
		minShare = *qualityMin
	}
	qualityRun(t, visitors, days, minShare)
}

// qualityRun: a few weeks of traffic under the random policy go through the real store
// (events and decision log); Train fits the uplift model from it; a fresh simulation (another
// seed) decides with the learnt model on the live feature vectors from the store, and its true
// value (sim Truth) is compared at the same budget with the oracle, "treat everyone" (the best
// single intervention by average effect for every eligible session) and "treat by highest
// propensity" (that intervention for the sessions with the highest predicted conversion
// propensity). It asserts that the learnt policy is clearly above both baselines (by 20% of
// the oracle's value) and reaches minShare of the oracle.
func qualityRun(t *testing.T, visitors, days int, minShare float64) {
	ctx := context.Background()
	site, sc := demoSite(t)
	start := time.Now()

	// 1. Logged traffic under the random policy.
	st := openMem(t, sc)
	trainRes := simulateSized(t, st, site.ID, 101, visitors, days, sim.NewRandomPolicy(1))
	t.Logf("training run: %d visitors, %d sessions, %d events, %d decisions (%.1fs)",
		trainRes.Visitors, trainRes.Sessions, trainRes.Events, len(trainRes.Decisions), time.Since(start).Seconds())

	// 2. Train (registered, then promoted).
	t0 := time.Now()
	// Propensity rows at the logged decisions only (AfterEvents empty): the propensity model is
	// only the "highest propensity" baseline here.
	res, err := Train(ctx, st, Options{Site: site, Schema: sc, UpliftLearner: *qualityLearner, Learner: "gbdt", AfterEvents: []int{},
		Window: *qualityWindow, Refit: true, UpliftBase: qualityBase(), Bootstrap: 50, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("train %.1fs\n%s", time.Since(t0).Seconds(), res.Report)
	if res.Uplift == nil {
		t.Fatal("no uplift model")
	}
	for _, kind := range []*store.ModelRecord{res.Propensity, res.Uplift} {
		if _, err := Promote(ctx, st, site.ID, kind.Version, sc, time.Now(), WithSite(site)); err != nil {
			t.Fatal(err)
		}
	}
	b, err := LoadPromoted(ctx, st, site.ID)
	if err != nil {
		t.Fatal(err)
	}
	ivs := sim.Interventions()
	// average effect per arm in the logged data (the non-personalised baselines' knowledge)
	ate := make([]float64, len(ivs)+1)
	{
		var n, y [8]float64
		ds, err := buildExamples(ctx, st, site, sc, scanRange{window: qualityWindow.Milliseconds(), uplift: true}, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i, a := range ds.upl.T {
			n[a]++
			y[a] += ds.upl.Y[i]
		}
		for k := 1; k <= len(ivs); k++ {
			ate[k] = y[k]/n[k] - y[0]/n[0]
		}
		t.Logf("average effect per arm in the logged data: %v", ate[1:])
	}

	// 3. Fresh traffic decided on the live vectors with the learnt models.
	st2 := openMem(t, sc)
	var mu sync.Mutex
	var seen []scored
	out := make([]float64, len(ivs))
	vec := make([]float64, sc.Len())
	learnt := sim.DeciderFunc(func(ctx context.Context, req sim.DecisionRequest) (sim.Decision, error) {
		sess, err := st2.ResolveSession(ctx, req.Site, req.SessionID)
		if err != nil {
			return sim.Decision{}, err
		}
		if _, err := st2.Features(ctx, req.Site, sess, req.TS, vec); err != nil {
			return sim.Decision{}, err
		}
		if err := b.Uplift.Predict(vec, out); err != nil {
			return sim.Decision{}, err
		}
		p, err := b.Propensity.Score(vec)
		if err != nil {
			return sim.Decision{}, err
		}
		s := scored{propensity: p}
		bestGlobal := math.Inf(-1)
		for k, iv := range ivs {
			if !eligibleName(req.Eligible, iv.Name) {
				continue
			}
			if ev := out[k]*sim.ConversionValue - iv.Cost; ev > s.ev {
				s.arm, s.ev = k+1, ev
			}
			if ev := ate[k+1]*sim.ConversionValue - iv.Cost; ev > bestGlobal {
				s.globalArm, bestGlobal = k+1, ev
			}
		}
		mu.Lock()
		seen = append(seen, s)
		mu.Unlock()
		d := sim.Decision{Probability: 1}
		if s.arm > 0 {
			d.Intervention = ivs[s.arm-1].Name
		}
		return d, nil
	})
	s2, err := sim.New(sim.Config{Seed: 202, Visitors: visitors, Days: days, Site: site.ID})
	if err != nil {
		t.Fatal(err)
	}
	testRes, err := s2.Run(ctx, func(ctx context.Context, evs []features.Event) error {
		_, err := st2.Append(ctx, site.ID, evs)
		return err
	}, learnt)
	if err != nil {
		t.Fatal(err)
	}
	truth := testRes.Truth
	if len(seen) != len(truth) {
		t.Fatalf("%d decisions scored, %d truths", len(seen), len(truth))
	}

	// 4. Values at the budget: the learnt policy treats its best-EV sessions up to the budget.
	budget := int(*qualityBudget * float64(len(truth)))
	learntArms := topArms(seen, budget, func(s scored) float64 { return s.ev }, func(s scored) int { return s.arm })
	treatedN := 0
	for _, a := range learntArms {
		if a > 0 {
			treatedN++
		}
	}
	learntValue := value(t, truth, learntArms)
	oracleArms := sim.OracleArms(truth, treatedN)
	oracleValue := value(t, truth, oracleArms)
	everyone := make([]int, len(truth))
	for i, s := range seen {
		everyone[i] = s.globalArm
	}
	everyoneValue := value(t, truth, everyone)
	byProp := topArms(seen, treatedN, func(s scored) float64 { return s.propensity }, func(s scored) int { return s.globalArm })
	propValue := value(t, truth, byProp)
	unbudgeted := value(t, truth, topArms(seen, -1, func(s scored) float64 { return s.ev }, func(s scored) int { return s.arm }))
	oracleFull := value(t, truth, sim.OracleArms(truth, -1))

	fig := fmt.Sprintf("test run: %d decided sessions; budget %.0f%% (%d sessions), learnt policy treats %d\n"+
		"true value (incremental conversions x %.0f - cost):\n"+
		"  learnt (uplift %s, live vectors)   %8.0f  (%.1f%% of oracle)\n"+
		"  oracle at the same budget          %8.0f\n"+
		"  treat everyone (best single arm)   %8.0f\n"+
		"  treat by highest propensity        %8.0f\n"+
		"  learnt without budget              %8.0f  (oracle without budget %.0f)\n"+
		"total %.1fs",
		len(truth), 100**qualityBudget, budget, treatedN, sim.ConversionValue, res.Uplift.Learner,
		learntValue, 100*learntValue/oracleValue, oracleValue, everyoneValue, propValue, unbudgeted, oracleFull,
		time.Since(start).Seconds())
	t.Log(fig)
	t.Log(segmentTable(truth, map[string][]int{"learnt": learntArms, "oracle": oracleArms}))

	if !(learntValue > everyoneValue+0.2*math.Abs(oracleValue)) || !(learntValue > propValue+0.2*math.Abs(oracleValue)) {
		t.Errorf("learnt %.0f not clearly above treat-everyone %.0f and top-propensity %.0f (margin: 20%% of the oracle)",
			learntValue, everyoneValue, propValue)
	}
	if learntValue < minShare*oracleValue {
		t.Errorf("learnt policy %.0f is below %.0f%% of the oracle %.0f at the same budget", learntValue, 100*minShare, oracleValue)
	}
}

func qualityBase() *training.GBDTOptions {
	if *qualityTrees == 0 {
		return nil
	}
	return &training.GBDTOptions{Trees: *qualityTrees, MaxDepth: *qualityDepth, MinLeaf: *qualityLeaf, LearningRate: *qualityLR, Subsample: 0.7}
}

// segmentTable breaks policies' treated sessions and true value down by latent segment.
func segmentTable(truth []sim.Truth, policies map[string][]int) string {
	var b strings.Builder
	names := make([]string, 0, len(policies))
	for n := range policies {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintf(&b, "%-22s %8s", "segment", "sessions")
	for _, n := range names {
		fmt.Fprintf(&b, " %10s %10s", n+" n", n+" value")
	}
	b.WriteString("\n")
	for _, seg := range sim.Segments() {
		total := 0
		treated := make([]int, len(names))
		val := make([]float64, len(names))
		for i := range truth {
			if truth[i].Segment != seg {
				continue
			}
			total++
			for j, n := range names {
				if a := policies[n][i]; a > 0 {
					treated[j]++
					val[j] += truth[i].Gain(a)
				}
			}
		}
		fmt.Fprintf(&b, "%-22s %8d", seg, total)
		for j := range names {
			fmt.Fprintf(&b, " %10d %10.0f", treated[j], val[j])
		}
		b.WriteString("\n")
	}
	return b.String()
}

func eligibleName(list []string, name string) bool {
	for _, s := range list {
		if s == name {
			return true
		}
	}
	return false
}

// topArms treats the sessions with the highest key whose arm is > 0, at most budget of them
// (budget < 0: all).
func topArms(seen []scored, budget int, key func(scored) float64, arm func(scored) int) []int {
	idx := make([]int, 0, len(seen))
	for i, s := range seen {
		if arm(s) > 0 {
			idx = append(idx, i)
		}
	}
	sort.SliceStable(idx, func(a, b int) bool { return key(seen[idx[a]]) > key(seen[idx[b]]) })
	if budget >= 0 && len(idx) > budget {
		idx = idx[:budget]
	}
	arms := make([]int, len(seen))
	for _, i := range idx {
		arms[i] = arm(seen[i])
	}
	return arms
}

func value(t *testing.T, truth []sim.Truth, arms []int) float64 {
	t.Helper()
	v, err := sim.PolicyValue(truth, arms)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

var (
	_ model.Binary = (*model.Logistic)(nil)
	_ uplift.Model = (*uplift.TModel)(nil)
)
