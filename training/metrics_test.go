package training_test

import (
	"math"
	"testing"

	"github.com/nudgehq/nudge/training"
)

func TestROCAUCAndAveragePrecision(t *testing.T) {
	tests := []struct {
		name    string
		y, s, w []float64
		auc, ap float64
	}{
		// scikit-learn's documented example: roc_auc_score = 0.75, average_precision = 0.8333
		{"sklearn example", []float64{0, 0, 1, 1}, []float64{0.1, 0.4, 0.35, 0.8}, nil, 0.75, 0.8333333333333333},
		{"perfect", []float64{0, 0, 1}, []float64{0.1, 0.2, 0.9}, nil, 1, 1},
		{"all tied", []float64{0, 1, 0, 1}, []float64{0.5, 0.5, 0.5, 0.5}, nil, 0.5, 0.5},
		// a tie between one positive and one negative counts one half
		{"one tie", []float64{0, 1, 0, 1}, []float64{0.1, 0.5, 0.5, 0.9}, nil, (1 + 1 + 0.5 + 1) / 4, (0.5*1 + 0.5*(2.0/3)) / 1},
		// weight 2 on a row equals the row twice
		{"weights", []float64{0, 0, 1, 1}, []float64{0.1, 0.4, 0.35, 0.8}, []float64{1, 2, 1, 1}, 4 / 6.0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			auc, err := training.ROCAUC(tc.y, tc.s, tc.w)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(auc-tc.auc) > 1e-12 {
				t.Errorf("AUC = %v, want %v", auc, tc.auc)
			}
			if tc.w != nil {
				// duplicate the weighted row and compare
				y := append(append([]float64{}, tc.y...), tc.y[1])
				s := append(append([]float64{}, tc.s...), tc.s[1])
				dup, _ := training.ROCAUC(y, s, nil)
				apw, _ := training.AveragePrecision(tc.y, tc.s, tc.w)
				apd, _ := training.AveragePrecision(y, s, nil)
				if math.Abs(dup-auc) > 1e-12 || math.Abs(apw-apd) > 1e-12 {
					t.Errorf("weighted AUC %v AP %v, duplicated AUC %v AP %v", auc, apw, dup, apd)
				}
				return
			}
			ap, err := training.AveragePrecision(tc.y, tc.s, tc.w)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(ap-tc.ap) > 1e-12 {
				t.Errorf("AP = %v, want %v", ap, tc.ap)
			}
		})
	}
	if auc, _ := training.ROCAUC([]float64{1, 1}, []float64{0.2, 0.3}, nil); !math.IsNaN(auc) {
		t.Errorf("one class: AUC = %v, want NaN", auc)
	}
	if _, err := training.ROCAUC([]float64{1}, []float64{0.2, 0.3}, nil); err == nil {
		t.Error("length mismatch accepted")
	}
}

func TestLogLossBrierCalibration(t *testing.T) {
	y := []float64{1, 0, 1, 0}
	p := []float64{0.9, 0.2, 0.6, 0.4}
	ll, _ := training.LogLoss(y, p, nil)
	want := -(math.Log(0.9) + math.Log(0.8) + math.Log(0.6) + math.Log(0.6)) / 4
	if math.Abs(ll-want) > 1e-12 {
		t.Errorf("LogLoss = %v, want %v", ll, want)
	}
	br, _ := training.Brier(y, p, nil)
	if wantB := (0.01 + 0.04 + 0.16 + 0.16) / 4; math.Abs(br-wantB) > 1e-12 {
		t.Errorf("Brier = %v, want %v", br, wantB)
	}
	// 100 rows, predictions i/100, outcome 1 for the top 30: 10 bins of 10.
	var yy, pp []float64
	for i := 0; i < 100; i++ {
		pp = append(pp, float64(i)/100)
		if i >= 70 {
			yy = append(yy, 1)
		} else {
			yy = append(yy, 0)
		}
	}
	tab, err := training.CalibrationTable(yy, pp, nil, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(tab) != 10 {
		t.Fatalf("%d bins, want 10", len(tab))
	}
	for k, b := range tab {
		if b.Count != 10 {
			t.Errorf("bin %d: count %d", k, b.Count)
		}
		wantObs := 0.0
		if k >= 7 {
			wantObs = 1
		}
		if b.Observed != wantObs || math.Abs(b.MeanPredicted-(float64(k*10)+4.5)/100) > 1e-12 {
			t.Errorf("bin %d: %+v", k, b)
		}
	}
}

func TestKFoldRule(t *testing.T) {
	folds := training.KFold(12, 5)
	seen := map[int]bool{}
	for f, rows := range folds {
		for _, i := range rows {
			if i%5 != f || seen[i] {
				t.Errorf("row %d in fold %d", i, f)
			}
			seen[i] = true
		}
	}
	if len(seen) != 12 {
		t.Errorf("%d rows covered", len(seen))
	}
}

func TestTimeSplit(t *testing.T) {
	ds := &training.Dataset{Names: []string{"x"}, X: []float64{0, 1, 2, 3, 4, 5}, Y: []float64{0, 1, 0, 1, 0, 1},
		TS: []int64{50, 10, 40, 20, 40, 30}}
	tr, te, err := training.TimeSplit(ds, 0.4)
	if err != nil {
		t.Fatal(err)
	}
	maxTrain := int64(0)
	for _, ts := range tr.TS {
		maxTrain = max(maxTrain, ts)
	}
	for _, ts := range te.TS {
		if ts <= maxTrain {
			t.Errorf("test row at %d not after train's latest %d", ts, maxTrain)
		}
	}
	if tr.N()+te.N() != 6 {
		t.Errorf("split %d + %d", tr.N(), te.N())
	}
	if _, _, err := training.TimeSplit(&training.Dataset{Names: []string{"x"}, X: []float64{1}, Y: []float64{1}}, 0.5); err == nil {
		t.Error("no TS accepted")
	}
}
