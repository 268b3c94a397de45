package uplift

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
)

// Logged is one logged decision: the arm the logging policy took, the probability it had of
// taking it, and the reward observed (e.g. conversion value minus the intervention's cost).
type Logged struct {
	Arm    int
	P      float64
	Reward float64
}

// Policy gives a target policy's probabilities of choosing each arm for logged row i (probs
// has one slot per arm, zeroed before the call). A policy may be deterministic (one 1).
type Policy func(i int, probs []float64)

// Deterministic turns an arm chooser into a Policy.
func Deterministic(choose func(i int) int) Policy {
	return func(i int, probs []float64) { probs[choose(i)] = 1 }
}

// Estimate is a point estimate with a bootstrap percentile interval.
type Estimate struct {
	Value, Lo, Hi float64
}

// PolicyValue is an off-policy estimate of a policy's mean reward per decision.
type PolicyValue struct {
	N     int
	IPS   Estimate // (1/n) sum w_i r_i, w_i = pi(a_i|x_i)/P_i
	SNIPS Estimate // sum w_i r_i / sum w_i
	// ESS is the effective sample size of the weights, (sum w)^2 / sum w^2: small means the
	// estimate rests on few logged rows.
	ESS float64
}

// Comparison is a candidate policy against the current one on the same logged rows, with
// paired bootstrap intervals of the differences (candidate - current).
type Comparison struct {
	Candidate, Current PolicyValue
	DiffIPS, DiffSNIPS Estimate
}

// OPEOptions configures the off-policy estimates.
type OPEOptions struct {
	Bootstrap int     // replicates (0 = 200)
	Seed      uint64  // seeds the bootstrap
	Level     float64 // 0 = 0.95
	MinP      float64 // logged probabilities are clipped below at MinP (0 = no clipping)
}

func (o *OPEOptions) defaults() {
	if o.Bootstrap <= 0 {
		o.Bootstrap = 200
	}
	if o.Level <= 0 || o.Level >= 1 {
		o.Level = 0.95
	}
}

// weights computes w_i = pi(a_i|i)/P_i; pi nil is the logging policy itself (w_i = 1).
func weights(rows []Logged, numArms int, pi Policy, minP float64) ([]float64, error) {
	w := make([]float64, len(rows))
	probs := make([]float64, numArms)
	for i, r := range rows {
		if r.Arm < 0 || r.Arm >= numArms {
			return nil, fmt.Errorf("uplift: off-policy: %w: row %d: arm %d of %d", ErrArms, i, r.Arm, numArms)
		}
		if !(r.P > 0 && r.P <= 1) || math.IsNaN(r.Reward) {
			return nil, fmt.Errorf("uplift: off-policy: %w: row %d: probability %v, reward %v", ErrData, i, r.P, r.Reward)
		}
		if pi == nil {
			w[i] = 1
			continue
		}
		clear(probs)
		pi(i, probs)
		w[i] = probs[r.Arm] / math.Max(r.P, minP)
	}
	return w, nil
}

func ipsSnips(rows []Logged, w []float64, mult []int32) (ips, snips float64) {
	var swr, sw float64
	n := 0
	for i := range rows {
		m := 1.0
		if mult != nil {
			if mult[i] == 0 {
				continue
			}
			m = float64(mult[i])
		}
		n += int(m)
		swr += m * w[i] * rows[i].Reward
		sw += m * w[i]
	}
	ips = swr / float64(n)
	snips = math.NaN()
	if sw > 0 {
		snips = swr / sw
	}
	return ips, snips
}

func ess(w []float64) float64 {
	var s, s2 float64
	for _, v := range w {
		s += v
		s2 += v * v
	}
	if s2 == 0 {
		return 0
	}
	return s * s / s2
}

// EvaluatePolicy estimates the value of target from rows logged by another policy.
func EvaluatePolicy(rows []Logged, numArms int, target Policy, opt OPEOptions) (*PolicyValue, error) {
	if target == nil {
		return nil, fmt.Errorf("uplift: off-policy: nil target policy")
	}
	c, err := Compare(rows, numArms, target, nil, opt)
	if err != nil {
		return nil, err
	}
	return &c.Candidate, nil
}

// LoggingValue is the value of the logging policy itself: the mean reward (IPS and SNIPS
// coincide).
func LoggingValue(rows []Logged, numArms int, opt OPEOptions) (*PolicyValue, error) {
	c, err := Compare(rows, numArms, nil, nil, opt)
	if err != nil {
		return nil, err
	}
	return &c.Current, nil
}

// Compare estimates candidate and current (nil = the logging policy) on the same rows with a
// paired bootstrap. A nil candidate is the logging policy too.
func Compare(rows []Logged, numArms int, candidate, current Policy, opt OPEOptions) (*Comparison, error) {
	if len(rows) == 0 {
		return nil, fmt.Errorf("uplift: off-policy: %w: no rows", ErrData)
	}
	opt.defaults()
	wa, err := weights(rows, numArms, candidate, opt.MinP)
	if err != nil {
		return nil, err
	}
	wb, err := weights(rows, numArms, current, opt.MinP)
	if err != nil {
		return nil, err
	}
	n := len(rows)
	res := &Comparison{Candidate: PolicyValue{N: n, ESS: ess(wa)}, Current: PolicyValue{N: n, ESS: ess(wb)}}
	ai, as := ipsSnips(rows, wa, nil)
	bi, bs := ipsSnips(rows, wb, nil)
	res.Candidate.IPS.Value, res.Candidate.SNIPS.Value = ai, as
	res.Current.IPS.Value, res.Current.SNIPS.Value = bi, bs
	res.DiffIPS.Value, res.DiffSNIPS.Value = ai-bi, as-bs

	rng := rand.New(rand.NewPCG(opt.Seed, 0x0be))
	mult := make([]int32, n)
	reps := make([][6]float64, opt.Bootstrap)
	for b := range reps {
		clear(mult)
		for i := 0; i < n; i++ {
			mult[rng.IntN(n)]++
		}
		ai, as := ipsSnips(rows, wa, mult)
		bi, bs := ipsSnips(rows, wb, mult)
		reps[b] = [6]float64{ai, as, bi, bs, ai - bi, as - bs}
	}
	targets := [6]*Estimate{&res.Candidate.IPS, &res.Candidate.SNIPS, &res.Current.IPS, &res.Current.SNIPS, &res.DiffIPS, &res.DiffSNIPS}
	col := make([]float64, 0, opt.Bootstrap)
	for j, e := range targets {
		col = col[:0]
		for _, r := range reps {
			if !math.IsNaN(r[j]) {
				col = append(col, r[j])
			}
		}
		sort.Float64s(col)
		e.Lo = quantile(col, (1-opt.Level)/2)
		e.Hi = quantile(col, 1-(1-opt.Level)/2)
	}
	return res, nil
}

// ChooseThreshold picks, among candidate thresholds, the one whose policy (policyFor(thr))
// has the highest self-normalised IPS value on rows logged by a randomised policy; it returns
// the threshold and every candidate's estimate (same order as thresholds).
func ChooseThreshold(rows []Logged, numArms int, thresholds []float64, policyFor func(thr float64) Policy, opt OPEOptions) (float64, []PolicyValue, error) {
	if len(thresholds) == 0 {
		return 0, nil, fmt.Errorf("uplift: choose threshold: no candidates")
	}
	best, bestV := thresholds[0], math.Inf(-1)
	vals := make([]PolicyValue, len(thresholds))
	for i, thr := range thresholds {
		v, err := EvaluatePolicy(rows, numArms, policyFor(thr), opt)
		if err != nil {
			return 0, nil, fmt.Errorf("uplift: choose threshold %g: %w", thr, err)
		}
		vals[i] = *v
		if v.SNIPS.Value > bestV {
			best, bestV = thr, v.SNIPS.Value
		}
	}
	return best, vals, nil
}
