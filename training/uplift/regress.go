package uplift

import (
	"context"
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"

	"github.com/nudgehq/nudge/model"
	"github.com/nudgehq/nudge/training"
)

// Regressor fits a Regression on a dataset whose Y holds real values (not only 0/1); W are
// row weights. T, Arms and P are ignored.
type Regressor interface {
	Name() string
	FitRegression(ctx context.Context, d *training.Dataset) (Regression, error)
}

// Ridge is weighted ridge regression (gonum/mat): numeric features are standardised,
// categorical codes one-hot encoded (unknown codes contribute nothing), the intercept is not
// penalised. Lambda is the penalty on the standardised coefficients (0 = 1).
type Ridge struct{ Lambda float64 }

// Name is "ridge".
func (r Ridge) Name() string { return "ridge" }

// Linear is a fitted linear regression on raw rows: Intercept + sum over numeric features of
// Slope[j]*x[j] + sum over categorical features of Cat[CatOff[j]+code].
type Linear struct {
	Names     []string  `json:"features"`
	Slope     []float64 `json:"slope"`   // per feature (0 for categorical)
	CatOff    []int     `json:"cat_off"` // per feature: offset into Cat, -1 for numeric
	Levels    []int     `json:"levels"`  // per feature: number of categories
	Cat       []float64 `json:"cat"`
	Intercept float64   `json:"intercept"`
}

// NumFeatures implements Regression.
func (l *Linear) NumFeatures() int { return len(l.Names) }

// Predict implements Regression.
func (l *Linear) Predict(x []float64) (float64, error) {
	if len(x) != len(l.Names) {
		return 0, fmt.Errorf("uplift: linear: %d values for %d features: %w", len(x), len(l.Names), model.ErrFeatureCount)
	}
	s := l.Intercept
	for j, v := range x {
		if off := l.CatOff[j]; off >= 0 {
			if c := int(v); v >= 0 && c < l.Levels[j] && float64(c) == v {
				s += l.Cat[off+c]
			}
			continue
		}
		s += l.Slope[j] * v
	}
	return s, nil
}

func (l *Linear) validate() error {
	d := len(l.Names)
	if len(l.Slope) != d || len(l.CatOff) != d || len(l.Levels) != d {
		return fmt.Errorf("%w: linear: arrays do not match %d features", ErrArtifact, d)
	}
	for j := 0; j < d; j++ {
		if off := l.CatOff[j]; off >= 0 && off+l.Levels[j] > len(l.Cat) {
			return fmt.Errorf("%w: linear: feature %d categories out of range", ErrArtifact, j)
		}
	}
	return nil
}

func checkRegressionData(d *training.Dataset) error {
	if d == nil || d.N() == 0 {
		return fmt.Errorf("%w: no rows", ErrData)
	}
	if len(d.X) != d.N()*d.D() {
		return fmt.Errorf("%w: X has %d values for %d x %d", ErrData, len(d.X), d.N(), d.D())
	}
	if d.W != nil && len(d.W) != d.N() {
		return fmt.Errorf("%w: %d weights for %d rows", ErrData, len(d.W), d.N())
	}
	if d.Categorical != nil && len(d.Categorical) != d.D() {
		return fmt.Errorf("%w: %d categorical flags for %d features", ErrData, len(d.Categorical), d.D())
	}
	return nil
}

// FitRegression implements Regressor.
func (r Ridge) FitRegression(ctx context.Context, d *training.Dataset) (Regression, error) {
	if err := checkRegressionData(d); err != nil {
		return nil, fmt.Errorf("uplift: ridge: %w", err)
	}
	lambda := r.Lambda
	if lambda <= 0 {
		lambda = 1
	}
	n, dim := d.N(), d.D()
	lin := &Linear{Names: d.Names, Slope: make([]float64, dim), CatOff: make([]int, dim), Levels: make([]int, dim)}
	// expanded columns
	col := make([]int, dim) // first expanded column of feature j
	p := 0
	for j := 0; j < dim; j++ {
		col[j] = p
		lin.CatOff[j] = -1
		if d.Categorical != nil && d.Categorical[j] {
			lv := 0
			for i := 0; i < n; i++ {
				if v := d.X[i*dim+j]; v >= 0 && !math.IsNaN(v) && int(v)+1 > lv && int(v) < 1<<16 {
					lv = int(v) + 1
				}
			}
			lin.Levels[j] = lv
			lin.CatOff[j] = len(lin.Cat)
			lin.Cat = append(lin.Cat, make([]float64, lv)...)
			p += lv
			continue
		}
		p++
	}
	row := make([]float64, p)
	expand := func(i int) {
		clear(row)
		x := d.Row(i)
		for j, v := range x {
			if math.IsNaN(v) {
				continue
			}
			if lin.CatOff[j] >= 0 {
				if c := int(v); v >= 0 && c < lin.Levels[j] {
					row[col[j]+c] = 1
				}
				continue
			}
			row[col[j]] = v
		}
	}
	// weighted means and scales
	mean := make([]float64, p)
	sq := make([]float64, p)
	var sw, ym float64
	for i := 0; i < n; i++ {
		if i%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("uplift: ridge: %w", err)
			}
		}
		w := d.Weight(i)
		expand(i)
		sw += w
		ym += w * d.Y[i]
		for c, v := range row {
			mean[c] += w * v
			sq[c] += w * v * v
		}
	}
	if sw <= 0 {
		return nil, fmt.Errorf("uplift: ridge: %w: total weight %g", ErrData, sw)
	}
	ym /= sw
	scale := make([]float64, p)
	for c := range mean {
		mean[c] /= sw
		v := sq[c]/sw - mean[c]*mean[c]
		scale[c] = math.Sqrt(math.Max(v, 0))
		if scale[c] < 1e-12 {
			scale[c] = 1
		}
	}
	ata := make([]float64, p*p)
	atb := make([]float64, p)
	z := make([]float64, p)
	for i := 0; i < n; i++ {
		w := d.Weight(i)
		expand(i)
		for c, v := range row {
			z[c] = (v - mean[c]) / scale[c]
		}
		yc := d.Y[i] - ym
		for c := 0; c < p; c++ {
			if z[c] == 0 {
				continue
			}
			wz := w * z[c]
			atb[c] += wz * yc
			r := ata[c*p : (c+1)*p]
			for e := c; e < p; e++ {
				r[e] += wz * z[e]
			}
		}
	}
	for c := 0; c < p; c++ {
		ata[c*p+c] += lambda
		for e := 0; e < c; e++ {
			ata[c*p+e] = ata[e*p+c]
		}
	}
	a := mat.NewSymDense(p, ata)
	b := mat.NewVecDense(p, atb)
	var chol mat.Cholesky
	beta := mat.NewVecDense(p, nil)
	if chol.Factorize(a) {
		if err := chol.SolveVecTo(beta, b); err != nil {
			return nil, fmt.Errorf("uplift: ridge: solve: %w", err)
		}
	} else if err := beta.SolveVec(a, b); err != nil {
		return nil, fmt.Errorf("uplift: ridge: solve: %w", err)
	}
	// fold the scaler back onto raw values
	lin.Intercept = ym
	for j := 0; j < dim; j++ {
		if lin.CatOff[j] >= 0 {
			for c := 0; c < lin.Levels[j]; c++ {
				k := col[j] + c
				coef := beta.AtVec(k) / scale[k]
				lin.Cat[lin.CatOff[j]+c] = coef
				lin.Intercept -= coef * mean[k]
			}
			continue
		}
		k := col[j]
		coef := beta.AtVec(k) / scale[k]
		lin.Slope[j] = coef
		lin.Intercept -= coef * mean[k]
	}
	return lin, nil
}

// ViaClassifier is a documented reduction that turns any binary training.Learner into a
// regressor for a bounded target: y in [Lo, Hi] (clipped) is mapped to q = (y-Lo)/(Hi-Lo) in
// [0,1], every row becomes two rows (label 1 with weight w*q, label 0 with weight w*(1-q)),
// the learner minimises the weighted log loss, whose minimiser is E[q|x], and the prediction
// is Lo + (Hi-Lo)*Score(x). Lo = Hi = 0 means [-1, 1], the range of a difference of
// probabilities (the X-learner's imputed effects).
type ViaClassifier struct {
	Learner training.Learner
	Lo, Hi  float64
}

// Name is "via-" + the learner's name.
func (v ViaClassifier) Name() string { return "via-" + v.Learner.Name() }

// Scaled is a Regression given by a binary model: Lo + (Hi-Lo)*Score(x).
type Scaled struct {
	Model  model.Binary
	Lo, Hi float64
}

// NumFeatures implements Regression.
func (s *Scaled) NumFeatures() int { return s.Model.NumFeatures() }

// Predict implements Regression.
func (s *Scaled) Predict(x []float64) (float64, error) {
	p, err := s.Model.Score(x)
	if err != nil {
		return 0, err
	}
	return s.Lo + (s.Hi-s.Lo)*p, nil
}

// FitRegression implements Regressor.
func (v ViaClassifier) FitRegression(ctx context.Context, d *training.Dataset) (Regression, error) {
	if err := checkRegressionData(d); err != nil {
		return nil, fmt.Errorf("uplift: %s: %w", v.Name(), err)
	}
	lo, hi := v.Lo, v.Hi
	if lo == 0 && hi == 0 {
		lo, hi = -1, 1
	}
	if !(hi > lo) {
		return nil, fmt.Errorf("uplift: %s: range [%g, %g]", v.Name(), lo, hi)
	}
	n, dim := d.N(), d.D()
	dd := &training.Dataset{Names: d.Names, Categorical: d.Categorical,
		X: make([]float64, 0, 2*n*dim), Y: make([]float64, 0, 2*n), W: make([]float64, 0, 2*n)}
	for i := 0; i < n; i++ {
		q := (math.Min(hi, math.Max(lo, d.Y[i])) - lo) / (hi - lo)
		w := d.Weight(i)
		x := d.Row(i)
		dd.X = append(dd.X, x...)
		dd.X = append(dd.X, x...)
		dd.Y = append(dd.Y, 1, 0)
		dd.W = append(dd.W, w*q, w*(1-q))
	}
	m, err := v.Learner.Fit(ctx, dd, nil)
	if err != nil {
		return nil, fmt.Errorf("uplift: %s: %w", v.Name(), err)
	}
	return &Scaled{Model: m, Lo: lo, Hi: hi}, nil
}
