package training

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"

	"github.com/nudgehq/nudge/model"
)

// ErrLength is returned when labels, scores and weights differ in length.
var ErrLength = errors.New("training: labels, scores and weights differ in length")

func weightAt(w []float64, i int) float64 {
	if w == nil {
		return 1
	}
	return w[i]
}

func checkLens(y, s, w []float64) error {
	if len(y) != len(s) || (w != nil && len(w) != len(y)) {
		return fmt.Errorf("%w: %d labels, %d scores, %d weights", ErrLength, len(y), len(s), len(w))
	}
	return nil
}

// descOrder returns indices sorted by score, highest first.
func descOrder(s []float64) []int {
	idx := make([]int, len(s))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return s[idx[a]] > s[idx[b]] })
	return idx
}

// ROCAUC is the (weighted) area under the ROC curve; tied scores count one half. It is NaN
// when one class is absent.
func ROCAUC(y, s, w []float64) (float64, error) {
	if err := checkLens(y, s, w); err != nil {
		return 0, err
	}
	idx := descOrder(s)
	var pos, neg, area float64
	for a := 0; a < len(idx); {
		b := a
		var tp, tn float64
		for ; b < len(idx) && s[idx[b]] == s[idx[a]]; b++ {
			i := idx[b]
			if y[i] > 0.5 {
				tp += weightAt(w, i)
			} else {
				tn += weightAt(w, i)
			}
		}
		// negatives in this group rank below positives seen so far (pos), and tie with tp
		area += tn * (pos + 0.5*tp)
		pos += tp
		neg += tn
		a = b
	}
	if pos == 0 || neg == 0 {
		return math.NaN(), nil
	}
	return area / (pos * neg), nil
}

// AveragePrecision is the area under the precision-recall curve as scikit-learn's
// average_precision_score computes it: sum over thresholds of (R_k - R_{k-1}) * P_k.
func AveragePrecision(y, s, w []float64) (float64, error) {
	if err := checkLens(y, s, w); err != nil {
		return 0, err
	}
	idx := descOrder(s)
	var total float64
	for i := range y {
		if y[i] > 0.5 {
			total += weightAt(w, i)
		}
	}
	if total == 0 {
		return math.NaN(), nil
	}
	var tp, fp, ap, prevR float64
	for a := 0; a < len(idx); {
		b := a
		for ; b < len(idx) && s[idx[b]] == s[idx[a]]; b++ {
			i := idx[b]
			if y[i] > 0.5 {
				tp += weightAt(w, i)
			} else {
				fp += weightAt(w, i)
			}
		}
		r := tp / total
		if tp+fp > 0 {
			ap += (r - prevR) * tp / (tp + fp)
		}
		prevR = r
		a = b
	}
	return ap, nil
}

// LogLoss is the weighted mean negative log-likelihood, probabilities clipped to [1e-15, 1-1e-15].
func LogLoss(y, p, w []float64) (float64, error) {
	if err := checkLens(y, p, w); err != nil {
		return 0, err
	}
	if len(y) == 0 {
		return math.NaN(), nil
	}
	return weightedLogLoss(p, y, w, false), nil
}

// Brier is the weighted mean squared error of the probabilities.
func Brier(y, p, w []float64) (float64, error) {
	if err := checkLens(y, p, w); err != nil {
		return 0, err
	}
	var s, sw float64
	for i := range y {
		wi := weightAt(w, i)
		d := p[i] - y[i]
		s += wi * d * d
		sw += wi
	}
	if sw == 0 {
		return math.NaN(), nil
	}
	return s / sw, nil
}

// CalibrationBin is one row of a reliability table.
type CalibrationBin struct {
	Lo, Hi        float64 // predicted probability range of the rows in the bin
	MeanPredicted float64
	Observed      float64 // weighted positive rate
	Count         int
}

// CalibrationTable groups rows into (at most) bins equal-count bins by predicted probability
// (deciles for bins = 10) and compares the mean prediction with the observed rate. Tied
// predictions stay in one bin, so there may be fewer bins.
func CalibrationTable(y, p, w []float64, bins int) ([]CalibrationBin, error) {
	if err := checkLens(y, p, w); err != nil {
		return nil, err
	}
	if bins <= 0 {
		bins = 10
	}
	n := len(y)
	idx := descOrder(p)
	slices.Reverse(idx)
	var out []CalibrationBin
	for a := 0; a < n; {
		b := max(a+1, (len(out)+1)*n/bins)
		for b < n && p[idx[b]] == p[idx[b-1]] {
			b++
		}
		var sp, sy, sw float64
		for _, i := range idx[a:b] {
			wi := weightAt(w, i)
			sp += wi * p[i]
			sy += wi * y[i]
			sw += wi
		}
		c := CalibrationBin{Lo: p[idx[a]], Hi: p[idx[b-1]], Count: b - a}
		if sw > 0 {
			c.MeanPredicted, c.Observed = sp/sw, sy/sw
		}
		out = append(out, c)
		a = b
	}
	return out, nil
}

// Metrics are a model's figures on one evaluation set.
type Metrics struct {
	N           int              `json:"n"`
	Positives   float64          `json:"positives"` // weighted count
	AUC         float64          `json:"auc"`
	PRAUC       float64          `json:"pr_auc"`
	LogLoss     float64          `json:"log_loss"`
	Brier       float64          `json:"brier"`
	Calibration []CalibrationBin `json:"calibration,omitempty"`
}

// Scores scores every row of ds with m.
func Scores(m model.Binary, ds *Dataset) ([]float64, error) {
	if m.NumFeatures() != ds.D() {
		return nil, fmt.Errorf("training: score: %w: model has %d, dataset %d", model.ErrFeatureCount, m.NumFeatures(), ds.D())
	}
	out := make([]float64, ds.N())
	for i := range out {
		s, err := m.Score(ds.Row(i))
		if err != nil {
			return nil, fmt.Errorf("training: score row %d: %w", i, err)
		}
		out[i] = s
	}
	return out, nil
}

// Evaluate scores ds with m and computes all metrics (calibration in deciles).
func Evaluate(m model.Binary, ds *Dataset) (Metrics, error) {
	p, err := Scores(m, ds)
	if err != nil {
		return Metrics{}, err
	}
	return MetricsOf(ds.Y, p, ds.W)
}

// MetricsOf computes all metrics from labels, probabilities and optional weights.
func MetricsOf(y, p, w []float64) (Metrics, error) {
	var m Metrics
	var err error
	if m.AUC, err = ROCAUC(y, p, w); err != nil {
		return m, err
	}
	if m.PRAUC, err = AveragePrecision(y, p, w); err != nil {
		return m, err
	}
	if m.LogLoss, err = LogLoss(y, p, w); err != nil {
		return m, err
	}
	if m.Brier, err = Brier(y, p, w); err != nil {
		return m, err
	}
	if m.Calibration, err = CalibrationTable(y, p, w, 10); err != nil {
		return m, err
	}
	m.N = len(y)
	for i := range y {
		m.Positives += weightAt(w, i) * y[i]
	}
	return m, nil
}

// Importance is one feature's importance.
type Importance struct {
	Feature string  `json:"feature"`
	Value   float64 `json:"value"`
}

// GainImportance returns a tree ensemble's total split gain per feature, normalised to sum to
// 1 and sorted (largest first). ok is false when m carries no gains (not a tree ensemble).
func GainImportance(m model.Binary) (imp []Importance, ok bool) {
	for {
		c, isCal := m.(*model.Calibrated)
		if !isCal {
			break
		}
		m = c.Base
	}
	e, isEns := m.(*model.Ensemble)
	if !isEns || e.Gain == nil {
		return nil, false
	}
	total := 0.0
	for _, g := range e.Gain {
		total += g
	}
	for j, g := range e.Gain {
		v := 0.0
		if total > 0 {
			v = g / total
		}
		imp = append(imp, Importance{Feature: e.Features[j], Value: v})
	}
	sortImportance(imp)
	return imp, true
}

func sortImportance(imp []Importance) {
	slices.SortStableFunc(imp, func(a, b Importance) int {
		switch {
		case a.Value > b.Value:
			return -1
		case a.Value < b.Value:
			return 1
		}
		return 0
	})
}

// PermutationImportance returns, per feature, the mean drop in ROC AUC on ds when that
// feature's column is shuffled (repeats times, seeded), sorted largest first. Works for any
// model.
func PermutationImportance(ctx context.Context, m model.Binary, ds *Dataset, repeats int, seed uint64) ([]Importance, error) {
	if repeats <= 0 {
		repeats = 1
	}
	base, err := Evaluate(m, ds)
	if err != nil {
		return nil, err
	}
	n, d := ds.N(), ds.D()
	rng := rand.New(rand.NewPCG(seed, seed+1))
	row := make([]float64, d)
	p := make([]float64, n)
	imp := make([]Importance, d)
	for j := 0; j < d; j++ {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("training: permutation importance: %w", err)
		}
		drop := 0.0
		for r := 0; r < repeats; r++ {
			perm := rng.Perm(n)
			for i := 0; i < n; i++ {
				copy(row, ds.Row(i))
				row[j] = ds.X[perm[i]*d+j]
				s, err := m.Score(row)
				if err != nil {
					return nil, fmt.Errorf("training: permutation importance: %w", err)
				}
				p[i] = s
			}
			auc, err := ROCAUC(ds.Y, p, ds.W)
			if err != nil {
				return nil, err
			}
			drop += base.AUC - auc
		}
		imp[j] = Importance{Feature: ds.Names[j], Value: drop / float64(repeats)}
	}
	sortImportance(imp)
	return imp, nil
}
