package training_test

import (
	"bytes"
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/nudgehq/nudge/model"
	"github.com/nudgehq/nudge/training"
)

func mustFit(t testing.TB, l training.Learner, train, valid *training.Dataset) model.Binary {
	t.Helper()
	m, err := l.Fit(context.Background(), train, valid)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func mustEval(t testing.TB, m model.Binary, ds *training.Dataset) training.Metrics {
	t.Helper()
	mt, err := training.Evaluate(m, ds)
	if err != nil {
		t.Fatal(err)
	}
	return mt
}

func TestLogisticRecoversCoefficients(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	n := 40000
	beta := []float64{1, -2, 0.5}
	ds := &training.Dataset{Names: []string{"a", "b", "c"}, X: make([]float64, n*3), Y: make([]float64, n)}
	for i := 0; i < n; i++ {
		z := -0.5
		for j := 0; j < 3; j++ {
			v := rng.NormFloat64()*float64(j+1) + float64(j)
			ds.X[i*3+j] = v
			z += beta[j] * v
		}
		if rng.Float64() < 1/(1+math.Exp(-z)) {
			ds.Y[i] = 1
		}
	}
	m := mustFit(t, training.NewLogistic(training.LogisticOptions{L2: 1e-6}), ds, nil).(*model.Logistic)
	for j := 0; j < 3; j++ {
		if got := m.Coef[j] / m.Scale[j]; math.Abs(got-beta[j]) > 0.08*math.Abs(beta[j])+0.03 {
			t.Errorf("coefficient %d = %.3f, want %.3f", j, got, beta[j])
		}
	}
}

func TestLogisticWeightsEqualDuplicates(t *testing.T) {
	ds := synth(2000, 8, 1)
	w := make([]float64, ds.N())
	var dup []int
	for i := range w {
		w[i] = float64(1 + i%2)
		dup = append(dup, i)
		if i%2 == 1 {
			dup = append(dup, i)
		}
	}
	weighted := *ds
	weighted.W = w
	l := training.NewLogistic(training.LogisticOptions{L2: 1, GradTol: 1e-9})
	mw := mustFit(t, l, &weighted, nil)
	md := mustFit(t, l, ds.Subset(dup), nil)
	for i := 0; i < 50; i++ {
		a, _ := mw.Score(ds.Row(i))
		b, _ := md.Score(ds.Row(i))
		if math.Abs(a-b) > 1e-5 {
			t.Fatalf("row %d: weighted %v, duplicated %v", i, a, b)
		}
	}
}

func TestLearnersOnSynthetic(t *testing.T) {
	train, test := synth(10000, 12, 1), synth(4000, 12, 2)
	lr := mustEval(t, mustFit(t, training.NewLogistic(training.LogisticOptions{}), train, nil), test)
	gb := mustEval(t, mustFit(t, training.NewGBDT(training.GBDTOptions{Trees: 300, MaxDepth: 4, EarlyStop: 20, Seed: 3}), train, nil), test)
	t.Logf("logreg auc %.4f logloss %.4f; gbdt auc %.4f logloss %.4f", lr.AUC, lr.LogLoss, gb.AUC, gb.LogLoss)
	if lr.AUC < 0.75 {
		t.Errorf("logreg AUC %.4f < 0.75", lr.AUC)
	}
	if gb.AUC < lr.AUC+0.02 {
		t.Errorf("gbdt AUC %.4f does not beat logreg's %.4f on data with interactions", gb.AUC, lr.AUC)
	}
}

func TestGBDTLearnsXORAndMissing(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	n := 8000
	ds := &training.Dataset{Names: []string{"a", "b", "m"}, X: make([]float64, n*3), Y: make([]float64, n)}
	for i := 0; i < n; i++ {
		a, b := rng.Float64()*2-1, rng.Float64()*2-1
		m := rng.NormFloat64()
		y := (a > 0) != (b > 0)
		if rng.IntN(4) == 0 { // missing m: always positive
			m = math.NaN()
			y = true
		}
		ds.X[i*3], ds.X[i*3+1], ds.X[i*3+2] = a, b, m
		if y {
			ds.Y[i] = 1
		}
	}
	gb := mustFit(t, training.NewGBDT(training.GBDTOptions{Trees: 100, MaxDepth: 3, Seed: 1}), ds, nil)
	lr := mustFit(t, training.NewLogistic(training.LogisticOptions{}), ds, nil)
	gm, lm := mustEval(t, gb, ds), mustEval(t, lr, ds)
	if gm.AUC < 0.97 || lm.AUC > 0.75 {
		t.Errorf("XOR: gbdt AUC %.3f (want >= 0.97), logreg %.3f (want <= 0.75)", gm.AUC, lm.AUC)
	}
	pMissing, _ := gb.Score([]float64{0.5, 0.5, math.NaN()})
	pPresent, _ := gb.Score([]float64{0.5, 0.5, 0})
	if pMissing < 0.9 || pPresent > 0.2 {
		t.Errorf("missing value: p(NaN) = %.3f (want > 0.9), p(0) = %.3f (want < 0.2)", pMissing, pPresent)
	}
}

func TestGBDTReproducibleAndRoundTrip(t *testing.T) {
	ds := synth(5000, 10, 4)
	opt := training.GBDTOptions{Trees: 40, MaxDepth: 4, Subsample: 0.7, EarlyStop: 5, Seed: 42}
	write := func(m model.Binary) []byte {
		var b bytes.Buffer
		if err := model.Write(&b, m); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	m1 := mustFit(t, training.NewGBDT(opt), ds, nil)
	m2 := mustFit(t, training.NewGBDT(opt), ds, nil)
	a1, a2 := write(m1), write(m2)
	if !bytes.Equal(a1, a2) {
		t.Fatal("two fits with the same seed differ")
	}
	opt.Seed = 43
	if bytes.Equal(a1, write(mustFit(t, training.NewGBDT(opt), ds, nil))) {
		t.Error("a different seed gave the same model")
	}
	back, err := model.Read(bytes.NewReader(a1))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < ds.N(); i++ {
		a, _ := m1.Score(ds.Row(i))
		b, _ := back.Score(ds.Row(i))
		if a != b {
			t.Fatalf("row %d: %v before, %v after round trip", i, a, b)
		}
	}
}

func TestGBDTEarlyStopping(t *testing.T) {
	train, valid := synth(3000, 8, 5), synth(1000, 8, 6)
	var rounds int
	var losses []float64
	opt := training.GBDTOptions{Trees: 500, LearningRate: 0.5, MaxDepth: 6, MinLeaf: 2, EarlyStop: 10, Seed: 1,
		Progress: func(r int, _, v float64) { rounds = r; losses = append(losses, v) }}
	m := mustFit(t, training.NewGBDT(opt), train, valid).(*model.Ensemble)
	if rounds == 500 || m.NumTrees() != rounds-10 {
		t.Fatalf("ran %d rounds, kept %d trees; want an early stop keeping rounds-10", rounds, m.NumTrees())
	}
	best := losses[m.NumTrees()-1]
	for _, l := range losses {
		if l < best {
			t.Errorf("kept round's loss %.5f is not the best (%.5f)", best, l)
		}
	}
}

func TestImportance(t *testing.T) {
	train, valid := synth(6000, 10, 7), synth(2000, 10, 8)
	m := mustFit(t, training.NewGBDT(training.GBDTOptions{Trees: 80, MaxDepth: 4, Seed: 1}), train, nil)
	gain, ok := training.GainImportance(m)
	if !ok || len(gain) != 10 {
		t.Fatalf("gain importance: %v %v", gain, ok)
	}
	sum := 0.0
	for _, g := range gain {
		sum += g.Value
	}
	if math.Abs(sum-1) > 1e-9 {
		t.Errorf("gains sum to %v", sum)
	}
	perm, err := training.PermutationImportance(context.Background(), m, valid, 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	// x0 (main effect and interaction) must rank first by both measures; x8 (uniform, tiny
	// weight) must be near zero.
	if gain[0].Feature != "x0" || perm[0].Feature != "x0" {
		t.Errorf("top feature: gain %s, permutation %s; want x0", gain[0].Feature, perm[0].Feature)
	}
	for _, p := range perm {
		if p.Feature == "x5" && p.Value > 0.01 {
			t.Errorf("x5 (no effect) permutation importance %.4f", p.Value)
		}
	}
	if _, ok := training.GainImportance(mustFit(t, training.NewLogistic(training.LogisticOptions{}), train, nil)); ok {
		t.Error("gain importance for a logistic model")
	}
}

func TestFitRejectsBadData(t *testing.T) {
	one := &training.Dataset{Names: []string{"a"}, X: []float64{1, 2}, Y: []float64{1, 1}}
	bad := &training.Dataset{Names: []string{"a"}, X: []float64{1, 2}, Y: []float64{1, 2}}
	for _, l := range []training.Learner{training.NewLogistic(training.LogisticOptions{}), training.NewGBDT(training.GBDTOptions{})} {
		if _, err := l.Fit(context.Background(), one, nil); err == nil {
			t.Errorf("%s: single class accepted", l.Name())
		}
		if _, err := l.Fit(context.Background(), bad, nil); err == nil {
			t.Errorf("%s: label 2 accepted", l.Name())
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := training.NewGBDT(training.GBDTOptions{}).Fit(ctx, synth(500, 6, 1), nil); err == nil {
		t.Error("cancelled context ignored")
	}
}

func TestCalibration(t *testing.T) {
	t.Run("isotonic PAV", func(t *testing.T) {
		xs, ys := training.FitIsotonic([]float64{1, 2, 3, 4, 5}, []float64{1, 0, 1, 1, 0}, nil)
		// blocks: {1,2}->0.5, {3,4,5}->2/3
		wantX := []float64{1, 2, 3, 5}
		wantY := []float64{0.5, 0.5, 2.0 / 3, 2.0 / 3}
		if len(xs) != len(wantX) {
			t.Fatalf("knots %v %v", xs, ys)
		}
		for k := range xs {
			if xs[k] != wantX[k] || math.Abs(ys[k]-wantY[k]) > 1e-12 {
				t.Errorf("knot %d = (%v, %v), want (%v, %v)", k, xs[k], ys[k], wantX[k], wantY[k])
			}
		}
	})
	t.Run("platt recovers", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(2, 2))
		var s, y []float64
		for i := 0; i < 50000; i++ {
			si := rng.Float64()*0.98 + 0.01
			s = append(s, si)
			p := model.Sigmoid(2*model.Logit(si) - 1)
			if rng.Float64() < p {
				y = append(y, 1)
			} else {
				y = append(y, 0)
			}
		}
		a, b := training.FitPlatt(s, y, nil)
		if math.Abs(a-2) > 0.1 || math.Abs(b+1) > 0.1 {
			t.Errorf("platt a=%.3f b=%.3f, want 2, -1", a, b)
		}
	})
	t.Run("calibrated learner", func(t *testing.T) {
		train, test := synth(8000, 8, 11), synth(4000, 8, 12)
		// a deliberately overconfident base: deep trees, large steps, no early stopping
		base := training.NewGBDT(training.GBDTOptions{Trees: 30, LearningRate: 0.6, MaxDepth: 7, MinLeaf: 2, Seed: 1})
		raw := mustEval(t, mustFit(t, base, train, nil), test)
		for _, method := range []string{model.Platt, model.Isotonic} {
			l := training.NewCalibrated(base, training.CalibrationOptions{Method: method, Seed: 1})
			m := mustFit(t, l, train, nil)
			if _, ok := m.(*model.Calibrated); !ok {
				t.Fatalf("%s: %T", l.Name(), m)
			}
			cal := mustEval(t, m, test)
			t.Logf("%s: logloss %.4f -> %.4f, brier %.4f -> %.4f", l.Name(), raw.LogLoss, cal.LogLoss, raw.Brier, cal.Brier)
			if cal.Brier >= raw.Brier {
				t.Errorf("%s: Brier %.4f not below uncalibrated %.4f", l.Name(), cal.Brier, raw.Brier)
			}
			// isotonic maps extreme blocks to 0 or 1, which log loss punishes: only Platt must
			// improve it
			if method == model.Platt && cal.LogLoss >= raw.LogLoss {
				t.Errorf("%s: log loss %.4f not below uncalibrated %.4f", l.Name(), cal.LogLoss, raw.LogLoss)
			}
		}
	})
}

func TestCrossValidateSynthetic(t *testing.T) {
	ds := synth(3000, 8, 3)
	r, err := training.CrossValidate(context.Background(), training.NewLogistic(training.LogisticOptions{}), ds, 4)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Folds) != 4 || r.Folds[0].NTrain != 2250 || r.Mean.N != 3000 {
		t.Errorf("folds %d, first train %d, total test %d", len(r.Folds), r.Folds[0].NTrain, r.Mean.N)
	}
	var buf bytes.Buffer
	if err := training.WriteCVTable(&buf, r); err != nil || !bytes.Contains(buf.Bytes(), []byte("logreg")) {
		t.Errorf("table: %v\n%s", err, buf.String())
	}
	if err := training.WriteMetrics(&buf, "x", r.Folds[0].Metrics); err != nil {
		t.Error(err)
	}
}

func TestLogisticHonoursContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := training.NewLogistic(training.LogisticOptions{}).Fit(ctx, synth(2000, 8, 1), nil); err == nil {
		t.Error("cancelled context ignored")
	}
}

func TestLearnerParams(t *testing.T) {
	l := training.NewCalibrated(training.NewGBDT(training.GBDTOptions{Trees: 7, Progress: func(int, float64, float64) {}}),
		training.CalibrationOptions{Method: model.Isotonic})
	b, err := training.LearnerParams(l)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"learner":"gbdt+isotonic"`, `"Trees":7`, `"LearningRate":0.1`, `"Method":"isotonic"`} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("params %s lack %s", b, want)
		}
	}
}
