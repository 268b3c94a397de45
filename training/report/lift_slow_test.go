//go:build slow

package report

import (
	"flag"
	"testing"
)

var coverageSeeds = flag.Int("coverage.seeds", 40, "simulated runs of TestLiftCoverageSlow")

// TestLiftCoverageSlow measures the coverage of the 95% intervals over many simulated runs
// (1,500 visitors over 3 weeks each, seeds 100, 101, ...): each arm's interval must cover
// its true effect in at least 85% of the runs (at 95% nominal coverage and 40 runs, fewer
// than 85% has a probability under 1%).
//
//	go test -tags slow -run TestLiftCoverageSlow -v ./training/report
func TestLiftCoverageSlow(t *testing.T) {
	covered := map[string]int{}
	width := map[string]float64{}
	for i := range *coverageSeeds {
		r, truth := liftRun(t, uint64(100+i), 1500, 21)
		for _, l := range r.Lift {
			if l.CI.Low <= truth[l.Arm] && truth[l.Arm] <= l.CI.High {
				covered[l.Arm]++
			}
			width[l.Arm] += l.CI.High - l.CI.Low
		}
	}
	n := float64(*coverageSeeds)
	for _, arm := range []string{"policy", "discount10", "chat_offer", "help_tip"} {
		c := float64(covered[arm]) / n
		t.Logf("%-10s coverage %.3f (%d/%d), mean width %.4f", arm, c, covered[arm], *coverageSeeds, width[arm]/n)
		if c < 0.85 {
			t.Errorf("arm %s: 95%% intervals cover the truth in %.0f%% of the runs", arm, 100*c)
		}
	}
}
