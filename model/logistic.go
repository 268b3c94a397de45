package model

import (
	"fmt"
	"math"
)

// Logistic is a fitted logistic regression over raw rows: numeric features are standardised
// with (x-Mean)/Scale, categorical features (integer codes 0..len(Levels)-1) are one-hot
// encoded and each indicator standardised likewise. An unknown or NaN category code
// contributes an all-zero indicator vector; a NaN numeric value is imputed with the mean. Score folds the scaler into the weights at build
// time, so it is one multiply-add per numeric feature and one table lookup per categorical one.
type Logistic struct {
	Features    []string // feature names, in input order
	Categorical []bool   // per feature; nil = all numeric
	Levels      []int    // per feature: number of categories (0 for numeric)
	// Columns of the expanded design: numeric features give one column, a categorical one
	// gives Levels[j] columns (code 0, 1, ...), in feature order.
	Mean, Scale []float64 // per expanded column
	Coef        []float64 // per expanded column, on the standardised scale
	Intercept   float64

	// derived at build time (not serialised)
	w0     float64   // intercept folded with the scaler
	num    []float64 // per feature: slope on the raw value (numeric) or 0
	fill   []float64 // per feature: contribution of a missing (NaN) numeric value, the mean's
	catOff []int     // per feature: offset into cat (categorical) or -1
	cat    []float64 // per category: contribution
}

// NewLogistic checks the parts and derives the folded scoring tables.
func NewLogistic(l Logistic) (*Logistic, error) {
	d := len(l.Features)
	if l.Categorical != nil && len(l.Categorical) != d {
		return nil, fmt.Errorf("model: logistic: %d categorical flags for %d features", len(l.Categorical), d)
	}
	if len(l.Levels) != d {
		return nil, fmt.Errorf("model: logistic: %d level counts for %d features", len(l.Levels), d)
	}
	p := 0
	for j := 0; j < d; j++ {
		if l.isCat(j) {
			if l.Levels[j] < 0 {
				return nil, fmt.Errorf("model: logistic: feature %q: negative level count", l.Features[j])
			}
			p += l.Levels[j]
		} else {
			p++
		}
	}
	if len(l.Mean) != p || len(l.Scale) != p || len(l.Coef) != p {
		return nil, fmt.Errorf("model: logistic: want %d columns, have mean %d scale %d coef %d", p, len(l.Mean), len(l.Scale), len(l.Coef))
	}
	m := l
	m.num = make([]float64, d)
	m.fill = make([]float64, d)
	m.catOff = make([]int, d)
	m.w0 = l.Intercept
	c := 0
	for j := 0; j < d; j++ {
		if !l.isCat(j) {
			s := l.Coef[c] / l.Scale[c]
			m.num[j] = s
			m.fill[j] = s * l.Mean[c]
			m.w0 -= s * l.Mean[c]
			m.catOff[j] = -1
			c++
			continue
		}
		m.catOff[j] = len(m.cat)
		for k := 0; k < l.Levels[j]; k++ {
			s := l.Coef[c] / l.Scale[c]
			m.w0 -= s * l.Mean[c]
			m.cat = append(m.cat, s)
			c++
		}
	}
	return &m, nil
}

func (l *Logistic) isCat(j int) bool { return l.Categorical != nil && l.Categorical[j] }

// NumFeatures is the length of the raw input row.
func (l *Logistic) NumFeatures() int { return len(l.Features) }

// Logit returns the linear predictor for one raw row.
func (l *Logistic) Logit(x []float64) (float64, error) {
	if len(x) != len(l.num) {
		return 0, fmt.Errorf("%w: logistic has %d, got %d", ErrFeatureCount, len(l.num), len(x))
	}
	z := l.w0
	num := l.num[:len(x)]
	off := l.catOff[:len(x)]
	for j, v := range x {
		if o := off[j]; o >= 0 {
			if k := int(v); float64(k) == v && k >= 0 && k < l.Levels[j] {
				z += l.cat[o+k]
			}
			continue
		}
		if v != v { // NaN: imputed with the training mean
			z += l.fill[j]
			continue
		}
		z += num[j] * v
	}
	return z, nil
}

// Score returns the probability of the positive outcome.
func (l *Logistic) Score(x []float64) (float64, error) {
	z, err := l.Logit(x)
	if err != nil {
		return 0, err
	}
	return Sigmoid(z), nil
}

// Sigmoid is the logistic function, stable for large |z|.
func Sigmoid(z float64) float64 {
	if z >= 0 {
		return 1 / (1 + math.Exp(-z))
	}
	e := math.Exp(z)
	return e / (1 + e)
}

// Logit is the inverse of Sigmoid, with p clipped to [1e-15, 1-1e-15].
func Logit(p float64) float64 {
	const eps = 1e-15
	if p < eps {
		p = eps
	} else if p > 1-eps {
		p = 1 - eps
	}
	return math.Log(p / (1 - p))
}
