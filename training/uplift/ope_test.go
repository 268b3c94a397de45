package uplift

import (
	"math"
	"math/rand/v2"
	"testing"
)

// bandit is a synthetic logged bandit: context x ~ U(0,1), three arms with mean reward
// mu_a(x), a non-uniform logging policy mu(a|x). The rewards are value*Bernoulli - cost.
type bandit struct {
	x    []float64
	rows []Logged
}

func meanReward(a int, x float64) float64 {
	switch a {
	case 0:
		return 60*(0.2+0.1*x) - 0
	case 1:
		return 60*(0.1+0.4*x) - 3
	default:
		return 60*(0.35-0.2*x) - 1
	}
}

func loggingProbs(x float64) [3]float64 {
	if x < 0.5 {
		return [3]float64{0.6, 0.1, 0.3}
	}
	return [3]float64{0.2, 0.2, 0.6}
}

func newBandit(n int, seed uint64) *bandit {
	r := rand.New(rand.NewPCG(seed, 5))
	b := &bandit{}
	for i := 0; i < n; i++ {
		x := r.Float64()
		p := loggingProbs(x)
		u, a := r.Float64(), 0
		for a < 2 && u >= p[a] {
			u -= p[a]
			a++
		}
		cost := [3]float64{0, 3, 1}[a]
		conv := (meanReward(a, x) + cost) / 60
		rew := -cost
		if r.Float64() < conv {
			rew += 60
		}
		b.x = append(b.x, x)
		b.rows = append(b.rows, Logged{Arm: a, P: p[a], Reward: rew})
	}
	return b
}

// best is the deterministic target policy: the arm with the highest mean reward.
func best(x float64) int {
	a := 0
	for k := 1; k < 3; k++ {
		if meanReward(k, x) > meanReward(a, x) {
			a = k
		}
	}
	return a
}

// integrate computes E_x[f(x)] for x ~ U(0,1) numerically.
func integrate(f func(float64) float64) float64 {
	const m = 20000
	s := 0.0
	for i := 0; i < m; i++ {
		s += f((float64(i) + 0.5) / m)
	}
	return s / m
}

func TestOffPolicyUnbiased(t *testing.T) {
	b := newBandit(30000, 11)
	trueTarget := integrate(func(x float64) float64 { return meanReward(best(x), x) })
	trueLogging := integrate(func(x float64) float64 {
		p := loggingProbs(x)
		return p[0]*meanReward(0, x) + p[1]*meanReward(1, x) + p[2]*meanReward(2, x)
	})
	target := Deterministic(func(i int) int { return best(b.x[i]) })
	c, err := Compare(b.rows, 3, target, nil, OPEOptions{Bootstrap: 200, Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("target true %.3f: IPS %.3f [%.3f, %.3f], SNIPS %.3f [%.3f, %.3f], ESS %.0f",
		trueTarget, c.Candidate.IPS.Value, c.Candidate.IPS.Lo, c.Candidate.IPS.Hi,
		c.Candidate.SNIPS.Value, c.Candidate.SNIPS.Lo, c.Candidate.SNIPS.Hi, c.Candidate.ESS)
	t.Logf("logging true %.3f: %.3f [%.3f, %.3f]; diff %.3f [%.3f, %.3f]", trueLogging,
		c.Current.IPS.Value, c.Current.IPS.Lo, c.Current.IPS.Hi, c.DiffSNIPS.Value, c.DiffSNIPS.Lo, c.DiffSNIPS.Hi)
	in := func(e Estimate, v float64) bool { return e.Lo <= v && v <= e.Hi }
	if !in(c.Candidate.IPS, trueTarget) || !in(c.Candidate.SNIPS, trueTarget) {
		t.Errorf("target value %.3f outside IPS %+v or SNIPS %+v", trueTarget, c.Candidate.IPS, c.Candidate.SNIPS)
	}
	if !in(c.Current.IPS, trueLogging) || c.Current.IPS != c.Current.SNIPS {
		t.Errorf("logging value %.3f: IPS %+v SNIPS %+v", trueLogging, c.Current.IPS, c.Current.SNIPS)
	}
	if !in(c.DiffIPS, trueTarget-trueLogging) || !(c.DiffSNIPS.Lo > 0) {
		t.Errorf("difference %.3f: IPS %+v SNIPS %+v", trueTarget-trueLogging, c.DiffIPS, c.DiffSNIPS)
	}

	// Unbiasedness over repeated draws: the mean IPS estimate over 40 logs is within 3 standard
	// errors of the truth.
	var ests []float64
	for s := 0; s < 40; s++ {
		bb := newBandit(3000, 100+uint64(s))
		v, err := EvaluatePolicy(bb.rows, 3, Deterministic(func(i int) int { return best(bb.x[i]) }), OPEOptions{Bootstrap: 1})
		if err != nil {
			t.Fatal(err)
		}
		ests = append(ests, v.IPS.Value)
	}
	var m, s2 float64
	for _, e := range ests {
		m += e / float64(len(ests))
	}
	for _, e := range ests {
		s2 += (e - m) * (e - m) / float64(len(ests)-1)
	}
	if se := math.Sqrt(s2 / float64(len(ests))); math.Abs(m-trueTarget) > 3*se {
		t.Errorf("mean IPS %.3f over 40 logs, truth %.3f, se %.3f", m, trueTarget, se)
	}

	// a stochastic target: uniform over arms
	uni := func(_ int, p []float64) { p[0], p[1], p[2] = 1.0/3, 1.0/3, 1.0/3 }
	v, err := EvaluatePolicy(b.rows, 3, uni, OPEOptions{Bootstrap: 300, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	trueUni := integrate(func(x float64) float64 { return (meanReward(0, x) + meanReward(1, x) + meanReward(2, x)) / 3 })
	if !in(v.SNIPS, trueUni) {
		t.Errorf("uniform policy %.3f outside SNIPS %+v", trueUni, v.SNIPS)
	}
	lv, err := LoggingValue(b.rows, 3, OPEOptions{})
	if err != nil || lv.IPS.Value != c.Current.IPS.Value {
		t.Errorf("logging value %+v, %v", lv, err)
	}
}

func TestOffPolicyErrors(t *testing.T) {
	if _, err := EvaluatePolicy([]Logged{{Arm: 0, P: 0, Reward: 1}}, 2, Deterministic(func(int) int { return 0 }), OPEOptions{}); err == nil {
		t.Error("zero probability accepted")
	}
	if _, err := EvaluatePolicy([]Logged{{Arm: 2, P: 0.5, Reward: 1}}, 2, Deterministic(func(int) int { return 0 }), OPEOptions{}); err == nil {
		t.Error("arm out of range accepted")
	}
	if _, err := EvaluatePolicy(nil, 2, Deterministic(func(int) int { return 0 }), OPEOptions{}); err == nil {
		t.Error("no rows accepted")
	}
}
