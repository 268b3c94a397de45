package training

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/nudgehq/nudge/model"
)

// ErrNoTime is returned by TimeSplit when the dataset has no decision times.
var ErrNoTime = errors.New("training: dataset has no decision times (TS)")

// KFold returns the test rows of each of k folds: row i is in fold i % k (the baselines' rule).
func KFold(n, k int) [][]int {
	folds := make([][]int, k)
	for i := 0; i < n; i++ {
		folds[i%k] = append(folds[i%k], i)
	}
	return folds
}

// TimeSplit sorts rows by decision time and returns the earliest (1-testFrac) as train and the
// rest as test, so no training row is later than a test row (ties by time stay together).
func TimeSplit(ds *Dataset, testFrac float64) (train, test *Dataset, err error) {
	if ds.TS == nil {
		return nil, nil, ErrNoTime
	}
	if testFrac <= 0 || testFrac >= 1 {
		return nil, nil, fmt.Errorf("training: time split: test fraction %v not in (0,1)", testFrac)
	}
	idx := make([]int, ds.N())
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		switch {
		case ds.TS[a] < ds.TS[b]:
			return -1
		case ds.TS[a] > ds.TS[b]:
			return 1
		}
		return 0
	})
	cut := int(math.Round(float64(len(idx)) * (1 - testFrac)))
	for cut > 0 && cut < len(idx) && ds.TS[idx[cut]] == ds.TS[idx[cut-1]] {
		cut++
	}
	if cut <= 0 || cut >= len(idx) {
		return nil, nil, fmt.Errorf("training: time split: %d rows cannot be split at %v", len(idx), testFrac)
	}
	return ds.Subset(idx[:cut]), ds.Subset(idx[cut:]), nil
}

// FoldResult is one fold's outcome.
type FoldResult struct {
	Fold    int           `json:"fold"`
	NTrain  int           `json:"n_train"`
	Metrics Metrics       `json:"metrics"`
	Fit     time.Duration `json:"fit_ns"`
}

// CVResult is a learner's cross-validated figures.
type CVResult struct {
	Learner string        `json:"learner"`
	Folds   []FoldResult  `json:"folds"`
	Mean    Metrics       `json:"mean"` // mean of the folds' figures (no calibration table)
	MinAUC  float64       `json:"min_auc"`
	MeanFit time.Duration `json:"mean_fit_ns"`
}

// CrossValidate fits learner on k-1 folds and evaluates it on the held-out fold, for each of k
// folds with the KFold rule (valid is nil: early-stopping learners split their own).
func CrossValidate(ctx context.Context, learner Learner, ds *Dataset, k int) (*CVResult, error) {
	if k < 2 || k > ds.N() {
		return nil, fmt.Errorf("training: cross-validate: %d folds for %d rows", k, ds.N())
	}
	res := &CVResult{Learner: learner.Name(), MinAUC: math.Inf(1)}
	inTest := make([]bool, ds.N())
	for f, test := range KFold(ds.N(), k) {
		clear(inTest)
		for _, i := range test {
			inTest[i] = true
		}
		train := make([]int, 0, ds.N()-len(test))
		for i := range inTest {
			if !inTest[i] {
				train = append(train, i)
			}
		}
		tr, te := ds.Subset(train), ds.Subset(test)
		t0 := time.Now()
		m, err := learner.Fit(ctx, tr, nil)
		fit := time.Since(t0)
		if err != nil {
			return nil, fmt.Errorf("training: cross-validate fold %d: %w", f, err)
		}
		mt, err := Evaluate(m, te)
		if err != nil {
			return nil, fmt.Errorf("training: cross-validate fold %d: %w", f, err)
		}
		res.Folds = append(res.Folds, FoldResult{Fold: f, NTrain: tr.N(), Metrics: mt, Fit: fit})
		res.Mean.N += mt.N
		res.Mean.Positives += mt.Positives
		res.Mean.AUC += mt.AUC / float64(k)
		res.Mean.PRAUC += mt.PRAUC / float64(k)
		res.Mean.LogLoss += mt.LogLoss / float64(k)
		res.Mean.Brier += mt.Brier / float64(k)
		res.MeanFit += fit / time.Duration(k)
		res.MinAUC = min(res.MinAUC, mt.AUC)
	}
	return res, nil
}

// Holdout fits learner on train (valid passed through) and evaluates on test.
func Holdout(ctx context.Context, learner Learner, train, valid, test *Dataset) (model.Binary, Metrics, time.Duration, error) {
	t0 := time.Now()
	m, err := learner.Fit(ctx, train, valid)
	fit := time.Since(t0)
	if err != nil {
		return nil, Metrics{}, fit, fmt.Errorf("training: holdout: %w", err)
	}
	mt, err := Evaluate(m, test)
	if err != nil {
		return nil, Metrics{}, fit, fmt.Errorf("training: holdout: %w", err)
	}
	return m, mt, fit, nil
}

// WriteCVTable prints one line per result: learner, mean AUC (min over folds), PR AUC, log
// loss, Brier and mean fit seconds.
func WriteCVTable(w io.Writer, results ...*CVResult) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "learner\tauc\t(min)\tpr_auc\tlogloss\tbrier\tfit_s")
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%.4f\t%.4f\t%.4f\t%.4f\t%.4f\t%.3f\n", r.Learner, r.Mean.AUC, r.MinAUC,
			r.Mean.PRAUC, r.Mean.LogLoss, r.Mean.Brier, r.MeanFit.Seconds())
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("training: write table: %w", err)
	}
	return nil
}

// WriteMetrics prints one evaluation's figures and its calibration table.
func WriteMetrics(w io.Writer, name string, m Metrics) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "%s\tn=%d\tpositives=%.0f\n", name, m.N, m.Positives)
	fmt.Fprintf(tw, "auc\t%.4f\npr_auc\t%.4f\nlogloss\t%.4f\nbrier\t%.4f\n", m.AUC, m.PRAUC, m.LogLoss, m.Brier)
	if len(m.Calibration) > 0 {
		fmt.Fprintln(tw, "\nbin\tpredicted\tobserved\tcount\trange")
		for k, c := range m.Calibration {
			fmt.Fprintf(tw, "%d\t%.4f\t%.4f\t%d\t[%.4f, %.4f]\n", k+1, c.MeanPredicted, c.Observed, c.Count, c.Lo, c.Hi)
		}
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("training: write metrics: %w", err)
	}
	return nil
}
