//go:build slow

package uplift_test

import "testing"

// TestQualitySlow runs the quality bar on a larger simulation (25000 visitors per run).
// Run with: go test -tags slow -run QualitySlow -v ./training/uplift
func TestQualitySlow(t *testing.T) {
	qualityRun(t, 25000, 0.9)
}
