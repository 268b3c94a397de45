//go:build slow

package pipeline

import "testing"

// TestQualityLearntPolicySlow is issue 5's quality bar at the data size it needs: 25,000
// visitors over 4 weeks per run (about 50,000 logged decisions to learn from), asserting that
// the learnt policy reaches 90% of the oracle's value at the same budget and clearly beats
// "treat everyone" and "treat by highest propensity". It takes a few minutes:
//
//	go test -tags slow -run TestQualityLearntPolicySlow -v -timeout 30m ./training/pipeline
func TestQualityLearntPolicySlow(t *testing.T) {
	qualityRun(t, 25000, 28, 0.9)
}
