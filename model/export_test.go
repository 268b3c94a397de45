package model

// LeafTestMargin is Margin by the walk with a leaf test at each step (the one Margin uses for
// rows wider than maxFlatFeatures), so tests and benchmarks can compare the two walks.
func LeafTestMargin(e *Ensemble, x []float64) float64 { return e.marginLeafTest(x) }

// MaxFlatFeatures is maxFlatFeatures.
const MaxFlatFeatures = maxFlatFeatures
