//go:build slow

package pipeline

import "testing"

// TestQualityLearntPolicySlow is issue 5's quality bar at the data size it needs: 40,000
// visitors over 4 weeks per run (about 78,000 logged decisions to learn from), asserting that
// the learnt policy reaches 90% of the oracle's value at the same 30% budget and clearly beats
// "treat everyone" and "treat by highest propensity". It takes 5-7 minutes on 2 cores:
//
//	go test -tags slow -run TestQualityLearntPolicySlow -v -timeout 30m ./training/pipeline
//
// Measured (2026-11-23): learnt 336,501 = 90.7% of the oracle's 371,205; treat everyone
// 52,488; treat by highest propensity -21,963. With 25,000 visitors (49,000 decisions) the same
// pipeline reached 88.0% (203,302 of 231,057): the bar is a matter of logged data.
func TestQualityLearntPolicySlow(t *testing.T) {
	qualityRun(t, 40000, 28, 0.9)
}
