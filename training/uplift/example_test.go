package uplift_test

import (
	"fmt"

	"github.com/nudgehq/nudge/training/uplift"
)

func ExampleEvaluate() {
	// Six rows: predicted uplift, treated or control, converted or not.
	score := []float64{0.9, 0.8, 0.7, 0.6, 0.5, 0.4}
	treated := []bool{true, false, true, false, true, false}
	y := []float64{1, 0, 1, 1, 0, 1}
	ev, err := uplift.Evaluate("discount10", score, treated, y, nil, uplift.EvalOptions{})
	if err != nil {
		panic(err)
	}
	fmt.Printf("qini %.4f auuc %.4f uplift@20%% %.2f\n", ev.Qini, ev.AUUC, ev.UpliftAt20)
	// Output: qini 0.3056 auuc 0.2176 uplift@20% 1.00
}

func ExampleCompare() {
	// Logged by a policy that chose arm 0 or 1 with probability 0.5 each.
	rows := []uplift.Logged{{Arm: 0, P: 0.5, Reward: 0}, {Arm: 1, P: 0.5, Reward: 57}, {Arm: 0, P: 0.5, Reward: 60}, {Arm: 1, P: 0.5, Reward: -3}}
	always1 := uplift.Deterministic(func(int) int { return 1 })
	c, err := uplift.Compare(rows, 2, always1, nil, uplift.OPEOptions{Bootstrap: 50, Seed: 1})
	if err != nil {
		panic(err)
	}
	fmt.Printf("candidate IPS %.1f SNIPS %.1f, current %.1f\n", c.Candidate.IPS.Value, c.Candidate.SNIPS.Value, c.Current.IPS.Value)
	// Output: candidate IPS 27.0 SNIPS 27.0, current 28.5
}
