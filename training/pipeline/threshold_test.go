package pipeline

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/nudgehq/nudge/data/config"
	"github.com/nudgehq/nudge/training/uplift"
)

// TestBudgetThreshold: one intervention (value 10, cost 1) whose predicted uplift u ranks the
// decisions correctly but overstates the effect by 0.06, so it pays (10·(u−0.06) > 1) only for
// u > 0.16, the top 20%. With a 50% share budget, the chosen threshold must treat about the
// best 20%, not the first half: the logged rows come from a 50/50 random policy.
func TestBudgetThreshold(t *testing.T) {
	const n = 20000
	rng := rand.New(rand.NewPCG(7, 8))
	site := config.Demo().Sites[0]
	site.Policy.Threshold = 0
	site.Policy.Budget.MaxShare = 0.5
	vp := valuePolicy{value: 10, cost: []float64{0, 1}}
	pred := make([]float64, n)
	eligible := make([][]bool, n)
	rows := make([]uplift.Logged, n)
	for i := range n {
		u := 0.2 * rng.Float64()
		pred[i] = u
		eligible[i] = []bool{true, true}
		arm := rng.IntN(2)
		p := 0.1
		if arm == 1 {
			p += u - 0.06
		}
		y := 0.0
		if rng.Float64() < p {
			y = 1
		}
		rows[i] = uplift.Logged{Arm: arm, P: 0.5, Reward: y*vp.value - vp.cost[arm]}
	}
	var rep bytes.Buffer
	got, err := budgetThreshold(&rep, &Options{Site: &site, Bootstrap: 50, Seed: 1}, vp, pred, eligible, rows, 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v\n%s", got, rep.String())
	if got.Share < 0.1 || got.Share > 0.35 {
		t.Errorf("chosen threshold %.3f treats %.1f%%, want about the best 20%%", got.Threshold, 100*got.Share)
	}
	if got.Threshold < 0.6 || got.Threshold > 1.4 { // EV of the 20% quantile: 10·0.16−1 = 0.6; of 10%: 0.8
		t.Errorf("threshold %.3f, want near the predicted EV at the top 10-30%%", got.Threshold)
	}
	if !strings.Contains(rep.String(), "<- chosen") || strings.Count(rep.String(), "threshold ") < 5 {
		t.Errorf("report lacks the candidate table:\n%s", rep.String())
	}

	// Without a budget the candidates go up to treating everyone, and a threshold never
	// falls below the site's own.
	site.Policy.Budget.MaxShare = 0
	site.Policy.Threshold = 1.2
	vp.threshold = 1.2
	got, err = budgetThreshold(&rep, &Options{Site: &site, Bootstrap: 50, Seed: 1}, vp, pred, eligible, rows, 2)
	if err != nil {
		t.Fatal(err)
	}
	if got.Threshold < 1.2 {
		t.Errorf("threshold %.3f below the site's 1.2", got.Threshold)
	}
}
