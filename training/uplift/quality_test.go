package uplift_test

import (
	"context"
	"flag"
	"math"
	"sort"
	"testing"

	"github.com/nudgehq/nudge/data/sim"
	"github.com/nudgehq/nudge/features"
	"github.com/nudgehq/nudge/model"
	"github.com/nudgehq/nudge/training"
	"github.com/nudgehq/nudge/training/uplift"
)

var qualityVisitors = flag.Int("quality.visitors", 8000, "visitors per simulated run in TestQualityOnSimulatedTraffic")

// Hand-made session features at the decision point (the real features package is wired in
// later): what the visitor did in this session before the decision, and its visitor history.
var featNames = []string{"device", "source", "first_source", "page_views", "errors", "form_errors", "clicks",
	"view_product", "add_to_cart", "begin_checkout", "newsletter_signup", "share", "download", "watch_video",
	"pace_s", "engaged_ms", "prior_sessions", "prior_purchases", "identified", "landing_product",
	// one-hot copies of the categoricals (trees split on them more easily than on codes)
	"dev_mobile", "dev_tablet", "dev_desktop",
	"src_direct", "src_newsletter", "src_cpc", "src_compare", "src_facebook", "src_tiktok", "src_organic",
	"first_direct", "first_newsletter", "first_cpc", "first_compare", "first_facebook", "first_tiktok", "first_organic"}

var featCat = func() []bool {
	c := make([]bool, len(featNames))
	c[0], c[1], c[2] = true, true, true
	return c
}()

func sourceCode(p map[string]string) float64 {
	switch p["utm_source"] {
	case "newsletter":
		return 1
	case "google":
		return 2
	case "pricecompare":
		return 3
	case "facebook":
		return 4
	case "tiktok":
		return 5
	}
	if p["referrer"] != "" {
		return 6
	}
	return 0
}

type history struct {
	sessions, purchases int
	first               float64
}

// simData runs the simulator and builds one row per decided session.
func simData(t *testing.T, seed uint64, visitors int, decider sim.Decider) (*training.Dataset, *sim.Result) {
	t.Helper()
	s, err := sim.New(sim.Config{Seed: seed, Visitors: visitors, Days: 28})
	if err != nil {
		t.Fatal(err)
	}
	bySession := map[string][]features.Event{}
	res, err := s.Run(context.Background(), func(_ context.Context, evs []features.Event) error {
		for _, e := range evs {
			bySession[e.SessionID] = append(bySession[e.SessionID], e)
		}
		return nil
	}, decider)
	if err != nil {
		t.Fatal(err)
	}
	return buildDataset(res, bySession), res
}

// buildDataset makes one row per decision of res from the run's events.
func buildDataset(res *sim.Result, bySession map[string][]features.Event) *training.Dataset {
	arms := []string{"none"}
	for _, iv := range sim.Interventions() {
		arms = append(arms, iv.Name)
	}
	d := &training.Dataset{Names: featNames, Categorical: featCat, Arms: arms}
	hist := map[string]*history{}
	for i, dec := range res.Decisions {
		evs := bySession[dec.SessionID]
		h := hist[dec.AnonymousID]
		if h == nil {
			h = &history{}
			hist[dec.AnonymousID] = h
		}
		x := sessionFeatures(evs, dec.TS, h)
		h.add(evs)
		y := 0.0
		if dec.Converted {
			y = 1
		}
		d.X = append(d.X, x...)
		d.Y = append(d.Y, y)
		d.T = append(d.T, dec.Arm)
		d.P = append(d.P, dec.Probability)
		d.TS = append(d.TS, res.Truth[i].TS)
	}
	return d
}

// eligibleRow applies the demo shop's eligibility rules to a feature row: discount10 in the
// cart or checkout phase, chat_offer after 3 page views, help_tip always.
func eligibleRow(x []float64, arm int) bool {
	switch arm {
	case 1:
		return x[8] > 0 || x[9] > 0
	case 2:
		return x[3] >= 3
	}
	return true
}

var devices = map[string]float64{"mobile": 0, "tablet": 1, "desktop": 2}

// sessionFeatures computes the hand features of a session from its events before decTS and
// the visitor's history of earlier sessions.
func sessionFeatures(evs []features.Event, decTS int64, h *history) []float64 {
	x := make([]float64, len(featNames))
	x[0] = devices[evs[0].Props["device"]]
	x[1] = sourceCode(evs[0].Props)
	x[2] = x[1]
	if h.sessions > 0 {
		x[2] = h.first
	}
	x[16], x[17] = float64(h.sessions), float64(h.purchases)
	if evs[0].Props["page_group"] == "product" {
		x[19] = 1
	}
	var engaged float64
	n, last := 0, evs[0].TS
	for _, e := range evs {
		if e.TS >= decTS {
			break
		}
		n++
		last = e.TS
		if e.UserID != "" {
			x[18] = 1
		}
		switch e.Type {
		case features.PageView:
			x[3]++
			engaged += parseFloat(e.Props["engaged_ms"])
		case features.Error:
			x[4]++
			if e.Props["error_kind"] == "form" {
				x[5]++
			}
		case features.Click:
			x[6]++
		case features.MicroConversion:
			for j, name := range featNames[7:14] {
				if e.Name == name {
					x[7+j] = 1
				}
			}
		}
	}
	x[20+int(x[0])] = 1
	x[23+int(x[1])] = 1
	x[30+int(x[2])] = 1
	if n > 1 {
		x[14] = float64(last-evs[0].TS) / float64(n-1) / 1000
	}
	if x[3] > 0 {
		x[15] = engaged / x[3]
	}
	return x
}

// add folds a finished session into the visitor's history.
func (h *history) add(evs []features.Event) {
	if h.sessions == 0 {
		h.first = sourceCode(evs[0].Props)
	}
	h.sessions++
	for _, e := range evs {
		if e.Type == features.MacroConversion {
			h.purchases++
		}
	}
}

func parseFloat(s string) float64 {
	v := 0.0
	for _, c := range s {
		if c < '0' || c > '9' {
			break
		}
		v = v*10 + float64(c-'0')
	}
	return v
}

// policyArms assigns each session the eligible arm with the highest predicted expected value
// (uplift*60 - cost) when positive, treating at most budget sessions (the highest values).
func policyArms(t *testing.T, m uplift.Model, d *training.Dataset, truth []sim.Truth, budget int, thr float64) []int {
	t.Helper()
	ivs := sim.Interventions()
	out := make([]float64, len(ivs))
	type cand struct {
		i, arm int
		ev     float64
	}
	var cs []cand
	for i := range truth {
		if err := m.Predict(d.Row(i), out); err != nil {
			t.Fatal(err)
		}
		best, bestEV := 0, thr
		for k, iv := range ivs {
			if !truth[i].Eligible[k] {
				continue
			}
			if ev := out[k]*sim.ConversionValue - iv.Cost; ev > bestEV {
				best, bestEV = k+1, ev
			}
		}
		if best > 0 {
			cs = append(cs, cand{i, best, bestEV})
		}
	}
	sort.SliceStable(cs, func(a, b int) bool { return cs[a].ev > cs[b].ev })
	if budget >= 0 && len(cs) > budget {
		cs = cs[:budget]
	}
	arms := make([]int, len(truth))
	for _, c := range cs {
		arms[c.i] = c.arm
	}
	return arms
}

// loggedRows turns decisions into off-policy rows: reward = 60 if converted, minus the cost.
func loggedRows(decs []sim.DecisionRecord) []uplift.Logged {
	ivs := sim.Interventions()
	rows := make([]uplift.Logged, len(decs))
	for i, dec := range decs {
		r := 0.0
		if dec.Arm > 0 {
			r = -ivs[dec.Arm-1].Cost
		}
		if dec.Converted {
			r += sim.ConversionValue
		}
		rows[i] = uplift.Logged{Arm: dec.Arm, P: dec.Probability, Reward: r}
	}
	return rows
}

// learntDecider is the learnt policy as a sim.Decider: features from the request's events and
// the visitor's earlier sessions (seen through the sink), the eligible arm with the highest
// predicted expected value above the threshold.
type learntDecider struct {
	m         uplift.Model
	thr       float64
	bySession map[string][]features.Event
	sessions  map[string][]string // anonymous id -> session ids in order
	out       []float64
}

func newLearntDecider(m uplift.Model, thr float64) *learntDecider {
	return &learntDecider{m: m, thr: thr, bySession: map[string][]features.Event{}, sessions: map[string][]string{},
		out: make([]float64, len(m.Arms())-1)}
}

func (l *learntDecider) sink(_ context.Context, evs []features.Event) error {
	for _, e := range evs {
		if _, ok := l.bySession[e.SessionID]; !ok {
			l.sessions[e.AnonymousID] = append(l.sessions[e.AnonymousID], e.SessionID)
		}
		l.bySession[e.SessionID] = append(l.bySession[e.SessionID], e)
	}
	return nil
}

func (l *learntDecider) Decide(_ context.Context, req sim.DecisionRequest) (sim.Decision, error) {
	h := &history{}
	for _, sid := range l.sessions[req.AnonymousID] {
		if sid != req.SessionID {
			h.add(l.bySession[sid])
		}
	}
	x := sessionFeatures(req.Events, req.TS, h)
	if err := l.m.Predict(x, l.out); err != nil {
		return sim.Decision{}, err
	}
	best, bestEV := "", l.thr
	for _, name := range req.Eligible {
		k := sim.ArmIndex(name)
		if ev := l.out[k-1]*sim.ConversionValue - sim.Interventions()[k-1].Cost; ev > bestEV {
			best, bestEV = name, ev
		}
	}
	return sim.Decision{Intervention: best, Probability: 1}, nil
}

func treated(arms []int) int {
	n := 0
	for _, a := range arms {
		if a > 0 {
			n++
		}
	}
	return n
}

// TestQualityOnSimulatedTraffic is the quality bar preview of issue 5: train on a random-policy
// run, evaluate on a fresh seed against the oracle at the same budget, "treat everyone" and
// "treat by highest propensity". The default size (8000 visitors over 4 weeks) reaches 80-85%
// of the oracle; quality_slow_test.go runs 25000 visitors and asserts the 90% bar.
func TestQualityOnSimulatedTraffic(t *testing.T) {
	if raceEnabled {
		t.Skip("quality measurement: minutes under the race detector; run without -race: go test -run Quality -v ./training/uplift")
	}
	qualityRun(t, *qualityVisitors, *qualityMin)
}

var qualityMin = flag.Float64("quality.min", 0.75, "minimum share of the oracle's value the learnt policy must reach")

func qualityRun(t *testing.T, visitors int, minShare float64) {
	ctx := context.Background()
	train, trainRes := simData(t, 101, visitors, sim.NewRandomPolicy(1))
	test, res := simData(t, 202, visitors, sim.NewRandomPolicy(2))
	t.Logf("train %d sessions, test %d sessions", train.N(), test.N())
	truth := res.Truth
	ivs := sim.Interventions()

	oracleFull, _ := sim.PolicyValue(truth, sim.OracleArms(truth, -1))
	t.Logf("oracle (no budget): value %.0f, treats %d of %d", oracleFull, treated(sim.OracleArms(truth, -1)), len(truth))

	// the best single intervention on average (from the training data), used by the
	// non-personalised baselines
	ate := make([]float64, len(ivs)+1)
	{
		var n, y [4]float64
		for i, a := range train.T {
			n[a]++
			y[a] += train.Y[i]
		}
		for k := 1; k <= len(ivs); k++ {
			ate[k] = y[k]/n[k] - y[0]/n[0]
		}
	}
	globalArm := func(i int) int {
		best, bestEV := 0, math.Inf(-1)
		for k, iv := range ivs {
			if truth[i].Eligible[k] {
				if ev := ate[k+1]*sim.ConversionValue - iv.Cost; ev > bestEV {
					best, bestEV = k+1, ev
				}
			}
		}
		return best
	}
	everyone := make([]int, len(truth))
	for i := range truth {
		everyone[i] = globalArm(i)
	}
	everyoneValue, err := sim.PolicyValue(truth, everyone)
	if err != nil {
		t.Fatal(err)
	}

	// propensity baseline: a GBDT on the control rows, treat the top sessions by P(purchase)
	ctrlIdx := []int{}
	for i, a := range train.T {
		if a == 0 {
			ctrlIdx = append(ctrlIdx, i)
		}
	}
	ctrl := train.Subset(ctrlIdx)
	ctrl.T, ctrl.P, ctrl.Arms = nil, nil, nil
	prop, err := training.NewGBDT(training.GBDTOptions{Trees: 100, MaxDepth: 4, MinLeaf: 30, Seed: 1}).Fit(ctx, ctrl, nil)
	if err != nil {
		t.Fatal(err)
	}
	byProp := func(budget int) []int {
		idx := make([]int, len(truth))
		score := make([]float64, len(truth))
		for i := range idx {
			idx[i] = i
			score[i], _ = prop.Score(test.Row(i))
		}
		sort.SliceStable(idx, func(a, b int) bool { return score[idx[a]] > score[idx[b]] })
		arms := make([]int, len(truth))
		for _, i := range idx[:budget] {
			arms[i] = globalArm(i)
		}
		return arms
	}

	base := training.NewGBDT(training.GBDTOptions{Trees: 200, MaxDepth: 3, LearningRate: 0.05, MinLeaf: 200, Subsample: 0.7, Seed: 1})
	learners := []uplift.Learner{
		uplift.TLearner{Base: base},
		uplift.XLearner{Outcome: base, Eligible: eligibleRow},
	}
	for _, l := range learners {
		t.Run(l.Name(), func(t *testing.T) {
			// Choose the policy's expected-value threshold off-policy: fit on the first 75% of
			// the training run (by time), estimate each threshold's value with SNIPS on the
			// last 25% (logged by the random policy), then refit on the whole run.
			cut := train.N() * 3 / 4
			idx := make([]int, train.N())
			for i := range idx {
				idx[i] = i
			}
			fitPart, validPart := train.Subset(idx[:cut]), train.Subset(idx[cut:])
			mv, err := l.Fit(ctx, fitPart)
			if err != nil {
				t.Fatal(err)
			}
			validTruth := trainRes.Truth[cut:]
			rows := loggedRows(trainRes.Decisions[cut:])
			thr, vals, err := uplift.ChooseThreshold(rows, len(ivs)+1, []float64{0, 0.5, 1, 2, 3, 4, 6}, func(thr float64) uplift.Policy {
				arms := policyArms(t, mv, validPart, validTruth, -1, thr)
				return uplift.Deterministic(func(i int) int { return arms[i] })
			}, uplift.OPEOptions{Bootstrap: 1})
			if err != nil {
				t.Fatal(err)
			}
			for i, v := range vals {
				t.Logf("threshold candidate %d: SNIPS %.3f", i, v.SNIPS.Value)
			}
			t.Logf("chosen expected-value threshold %.1f", thr)
			m, err := l.Fit(ctx, train)
			if err != nil {
				t.Fatal(err)
			}
			arms := policyArms(t, m, test, truth, -1, thr)
			budget := treated(arms)
			learnt, err := sim.PolicyValue(truth, arms)
			if err != nil {
				t.Fatal(err)
			}
			oracle, _ := sim.PolicyValue(truth, sim.OracleArms(truth, budget))
			propValue, _ := sim.PolicyValue(truth, byProp(budget))
			t.Logf("budget %d of %d sessions (%.1f%%)", budget, len(truth), 100*float64(budget)/float64(len(truth)))
			t.Logf("value (incremental conversions*60 - cost): learnt %.0f, oracle@budget %.0f (%.1f%%), treat everyone %.0f, top propensity@budget %.0f",
				learnt, oracle, 100*learnt/oracle, everyoneValue, propValue)
			if learnt < minShare*oracle {
				t.Errorf("learnt policy %.0f is below %.0f%% of the oracle %.0f at the same budget", learnt, 100*minShare, oracle)
			}
			if !(learnt > everyoneValue+0.2*math.Abs(oracle)) || !(learnt > propValue+0.2*math.Abs(oracle)) {
				t.Errorf("learnt %.0f not clearly above treat-everyone %.0f and top-propensity %.0f", learnt, everyoneValue, propValue)
			}

			// the same policy deciding live inside the simulator makes the same choices
			s, err := sim.New(sim.Config{Seed: 202, Visitors: visitors, Days: 28})
			if err != nil {
				t.Fatal(err)
			}
			ld := newLearntDecider(m, thr)
			online, err := s.Run(ctx, ld.sink, ld)
			if err != nil {
				t.Fatal(err)
			}
			// The visitors' histories (prior purchases) depend on the policy, so the offline
			// replay uses the online run's own events.
			replay := policyArms(t, m, buildDataset(online, ld.bySession), online.Truth, -1, thr)
			mismatch, conv := 0, 0
			for i, dec := range online.Decisions {
				if dec.Arm != replay[i] {
					mismatch++
				}
				if dec.Converted {
					conv++
				}
			}
			if mismatch > 0 {
				t.Errorf("online decisions differ from the offline policy in %d of %d sessions", mismatch, len(arms))
			}
			onlineValue, err := sim.PolicyValue(online.Truth, replay)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("online run: %d decisions, %d purchases, true value %.0f", len(online.Decisions), conv, onlineValue)

			// uplift metrics per arm on the fresh run (randomised, so unweighted)
			evs, err := uplift.EvaluateModel(m, test, uplift.EvalOptions{Bootstrap: 100, Seed: 1, Eligible: eligibleRow})
			if err != nil {
				t.Fatal(err)
			}
			for _, ev := range evs {
				t.Logf("%s: qini %.3f [%.3f, %.3f], auuc %.4f (random %.4f), uplift@10/20/30 %.3f %.3f %.3f",
					ev.Arm, ev.Qini, ev.Lo.Qini, ev.Hi.Qini, ev.AUUC, ev.AUUCRandom, ev.UpliftAt10, ev.UpliftAt20, ev.UpliftAt30)
			}

			// off-policy estimate of the learnt policy from the random log agrees with the truth
			rows = loggedRows(res.Decisions)
			cmp, err := uplift.Compare(rows, len(ivs)+1, uplift.Deterministic(func(i int) int { return arms[i] }), nil, uplift.OPEOptions{Bootstrap: 200, Seed: 1})
			if err != nil {
				t.Fatal(err)
			}
			trueMean := 0.0
			for i := range truth {
				trueMean += (truth[i].PControl*sim.ConversionValue + truth[i].Gain(arms[i])) / float64(len(truth))
			}
			t.Logf("off-policy: learnt policy SNIPS %.2f [%.2f, %.2f] per session (true %.2f), random policy %.2f, difference %.2f [%.2f, %.2f]",
				cmp.Candidate.SNIPS.Value, cmp.Candidate.SNIPS.Lo, cmp.Candidate.SNIPS.Hi, trueMean,
				cmp.Current.SNIPS.Value, cmp.DiffSNIPS.Value, cmp.DiffSNIPS.Lo, cmp.DiffSNIPS.Hi)
			if !(cmp.Candidate.SNIPS.Lo <= trueMean && trueMean <= cmp.Candidate.SNIPS.Hi) || !(cmp.DiffSNIPS.Lo > 0) {
				t.Errorf("off-policy estimate %+v vs true %.2f; diff %+v", cmp.Candidate.SNIPS, trueMean, cmp.DiffSNIPS)
			}
		})
	}
	var _ model.Binary = prop
}
