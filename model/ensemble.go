package model

import (
	"fmt"
	"math"
)

// Ensemble is a fitted tree ensemble for binary outcomes (gradient-boosted trees): the
// probability is Sigmoid(Base + sum of the leaf values each tree sends the row to).
//
// Trees are flattened into parallel arrays indexed by node: an internal node sends x to Left
// when x[Feature] <= Threshold and to Right otherwise (NaN goes left); a leaf has Feature -1
// and carries Value. Roots[t] is tree t's root node. Scoring walks the arrays and allocates
// nothing. Categorical features are ordinal codes compared like numbers.
type Ensemble struct {
	Features    []string
	Categorical []bool // per feature; nil = all numeric
	Base        float64
	Roots       []int32
	Feature     []int32
	Threshold   []float64
	Left, Right []int32
	Value       []float64
	Gain        []float64 // per feature: total split gain (importance); may be nil
}

// NewEnsemble checks the arrays: every child index is in range and points forward, so a walk
// always ends at a leaf.
func NewEnsemble(e Ensemble) (*Ensemble, error) {
	n := len(e.Feature)
	if len(e.Threshold) != n || len(e.Left) != n || len(e.Right) != n || len(e.Value) != n {
		return nil, fmt.Errorf("model: ensemble: node arrays differ in length")
	}
	d := len(e.Features)
	if e.Categorical != nil && len(e.Categorical) != d {
		return nil, fmt.Errorf("model: ensemble: %d categorical flags for %d features", len(e.Categorical), d)
	}
	if e.Gain != nil && len(e.Gain) != d {
		return nil, fmt.Errorf("model: ensemble: %d gains for %d features", len(e.Gain), d)
	}
	for _, r := range e.Roots {
		if r < 0 || int(r) >= n {
			return nil, fmt.Errorf("model: ensemble: root %d out of range", r)
		}
	}
	for i := 0; i < n; i++ {
		f := e.Feature[i]
		if f < 0 {
			if math.IsNaN(e.Value[i]) || math.IsInf(e.Value[i], 0) {
				return nil, fmt.Errorf("model: ensemble: node %d: leaf value %v", i, e.Value[i])
			}
			continue
		}
		if int(f) >= d {
			return nil, fmt.Errorf("model: ensemble: node %d: feature %d of %d", i, f, d)
		}
		if l, r := e.Left[i], e.Right[i]; l <= int32(i) || r <= int32(i) || int(l) >= n || int(r) >= n {
			return nil, fmt.Errorf("model: ensemble: node %d: children %d,%d", i, l, r)
		}
	}
	m := e
	return &m, nil
}

// NumFeatures is the length of the input row.
func (e *Ensemble) NumFeatures() int { return len(e.Features) }

// NumTrees is the number of trees.
func (e *Ensemble) NumTrees() int { return len(e.Roots) }

// Margin returns Base plus the sum of the trees' leaf values (the log-odds).
func (e *Ensemble) Margin(x []float64) (float64, error) {
	if len(x) != len(e.Features) {
		return 0, fmt.Errorf("%w: ensemble has %d, got %d", ErrFeatureCount, len(e.Features), len(x))
	}
	feat, thr, left, right, val := e.Feature, e.Threshold, e.Left, e.Right, e.Value
	s := e.Base
	for _, n := range e.Roots {
		for {
			f := feat[n]
			if f < 0 {
				break
			}
			if x[f] > thr[n] {
				n = right[n]
			} else {
				n = left[n]
			}
		}
		s += val[n]
	}
	return s, nil
}

// Score returns the probability of the positive outcome.
func (e *Ensemble) Score(x []float64) (float64, error) {
	m, err := e.Margin(x)
	if err != nil {
		return 0, err
	}
	return Sigmoid(m), nil
}
