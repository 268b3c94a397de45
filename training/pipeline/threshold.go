package pipeline

import (
	"fmt"
	"io"
	"math"
	"slices"

	"github.com/nudgehq/nudge/training/uplift"
)

// ThresholdChoice is the expected-value threshold a promoted uplift model suggests for the
// site's budget, with the share of holdout decisions it treats and its off-policy value.
type ThresholdChoice struct {
	Threshold float64 // minimum expected value to intervene (never below the site's own)
	Share     float64 // share of the holdout decisions the greedy policy treats at Threshold
	SNIPS     float64 // self-normalised IPS value per decision of that policy on the holdout
}

// budgetThreshold picks the expected-value threshold under which the greedy policy spends the
// site's share budget on the sessions with the best predicted value instead of on the first
// ones of the day. The live policy treats first come, first served until the share is used up:
// with the threshold at the (1 - share) quantile of the holdout's best expected values, the
// sessions that pass it are about that share, so the budget is not spent before the best
// sessions arrive. Candidates are the quantiles for treated shares 5%, 10%, ... up to the
// budget's max share (100% without one); the one with the best SNIPS value on the
// time-ordered holdout wins, and the table of candidates goes to rep.
func budgetThreshold(rep io.Writer, opts *Options, vp valuePolicy, pred []float64, eligible [][]bool, rows []uplift.Logged, numArms int) (ThresholdChoice, error) {
	k := len(vp.cost) - 1
	best := make([]float64, len(eligible)) // best expected value per decision, -Inf when none eligible
	for i, el := range eligible {
		best[i] = math.Inf(-1)
		for a := 1; a <= k; a++ {
			if el[a] {
				best[i] = max(best[i], pred[i*k+a-1]*vp.value-vp.cost[a])
			}
		}
	}
	sorted := slices.Clone(best)
	slices.Sort(sorted)
	maxShare := opts.Site.Policy.Budget.MaxShare
	if maxShare <= 0 || maxShare > 1 {
		maxShare = 1
	}
	floor := math.Max(vp.threshold, 0)
	var cands []float64
	for s := 0.05; s <= maxShare+1e-9; s += 0.05 {
		// The threshold below which a decision is not treated: the value at rank (1-s)·n.
		j := min(len(sorted)-1, max(0, int(math.Ceil((1-s)*float64(len(sorted))))-1))
		t := math.Max(floor, sorted[j])
		if len(cands) == 0 || t != cands[len(cands)-1] {
			cands = append(cands, t)
		}
	}
	if len(cands) == 0 || len(rows) == 0 {
		return ThresholdChoice{Threshold: floor}, nil
	}
	policyFor := func(thr float64) uplift.Policy {
		v := vp
		v.threshold = thr
		arms := v.greedy(pred, eligible)
		return uplift.Deterministic(func(i int) int { return arms[i] })
	}
	thr, vals, err := uplift.ChooseThreshold(rows, numArms, cands, policyFor, uplift.OPEOptions{Bootstrap: opts.Bootstrap, Seed: opts.Seed})
	if err != nil {
		return ThresholdChoice{}, fmt.Errorf("pipeline: choose threshold: %w", err)
	}
	share := func(t float64) float64 {
		n := 0
		for _, b := range best {
			if b > t {
				n++
			}
		}
		return float64(n) / float64(len(best))
	}
	out := ThresholdChoice{Threshold: thr, Share: share(thr)}
	fmt.Fprintf(rep, "threshold for the budget (max share %.0f%%), SNIPS value per decision on the holdout:\n", 100*maxShare)
	for i, t := range cands {
		mark := ""
		if t == thr {
			mark = "  <- chosen"
			out.SNIPS = vals[i].SNIPS.Value
		}
		fmt.Fprintf(rep, "  threshold %8.3f  treats %5.1f%%  snips %8.4f [%8.4f, %8.4f]%s\n",
			t, 100*share(t), vals[i].SNIPS.Value, vals[i].SNIPS.Lo, vals[i].SNIPS.Hi, mark)
	}
	return out, nil
}
