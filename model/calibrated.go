package model

import (
	"fmt"
	"math"
	"sort"
)

// Calibration methods.
const (
	Platt    = "platt"
	Isotonic = "isotonic"
)

// Calibrated wraps a base model and maps its score to a calibrated probability.
//
// Platt: p = Sigmoid(A*Logit(s) + B). Isotonic: a non-decreasing step function given by knots
// (X ascending, Y non-decreasing); between knots it interpolates linearly, outside it clamps.
type Calibrated struct {
	Base   Binary
	Method string
	A, B   float64   // Platt
	X, Y   []float64 // isotonic knots
}

// NewCalibrated checks the parts.
func NewCalibrated(c Calibrated) (*Calibrated, error) {
	if c.Base == nil {
		return nil, fmt.Errorf("model: calibrated: no base model")
	}
	switch c.Method {
	case Platt:
		if math.IsNaN(c.A) || math.IsNaN(c.B) || math.IsInf(c.A, 0) || math.IsInf(c.B, 0) {
			return nil, fmt.Errorf("model: calibrated: platt parameters %v, %v", c.A, c.B)
		}
	case Isotonic:
		if len(c.X) == 0 || len(c.X) != len(c.Y) {
			return nil, fmt.Errorf("model: calibrated: isotonic knots %d x, %d y", len(c.X), len(c.Y))
		}
		if !sort.Float64sAreSorted(c.X) || !sort.Float64sAreSorted(c.Y) {
			return nil, fmt.Errorf("model: calibrated: isotonic knots not ascending")
		}
	default:
		return nil, fmt.Errorf("model: calibrated: unknown method %q", c.Method)
	}
	m := c
	return &m, nil
}

// NumFeatures is the base model's.
func (c *Calibrated) NumFeatures() int { return c.Base.NumFeatures() }

// Score returns the calibrated probability.
func (c *Calibrated) Score(x []float64) (float64, error) {
	s, err := c.Base.Score(x)
	if err != nil {
		return 0, err
	}
	return c.Map(s), nil
}

// Map applies the calibration to a base score.
func (c *Calibrated) Map(s float64) float64 {
	if c.Method == Platt {
		return Sigmoid(c.A*Logit(s) + c.B)
	}
	xs, ys := c.X, c.Y
	if s <= xs[0] {
		return ys[0]
	}
	n := len(xs)
	if s >= xs[n-1] {
		return ys[n-1]
	}
	// first knot > s
	lo, hi := 0, n-1
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if xs[mid] <= s {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	x0, x1, y0, y1 := xs[lo-1], xs[lo], ys[lo-1], ys[lo]
	if x1 == x0 {
		return y1
	}
	return y0 + (y1-y0)*(s-x0)/(x1-x0)
}
