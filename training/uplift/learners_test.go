package uplift

import (
	"bytes"
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/nudgehq/nudge/training"
)

// synth generates a three-arm experiment with heterogeneous effects:
//
//	x0, x1, x2 ~ U(0,1); x3 a category in {0,1,2}
//	p0(x)    = 0.15 + 0.2*x1
//	tau_a(x) = 0.3 if x0 > 0.5 else -0.05     (arm "a")
//	tau_b(x) = 0.25 if x3 == 2 else 0          (arm "b")
//
// assign(x) gives the arm probabilities (nil = uniform).
func synth(n int, seed uint64, assign func(x []float64) [3]float64) (*training.Dataset, [][2]float64) {
	r := rand.New(rand.NewPCG(seed, 99))
	d := &training.Dataset{Names: []string{"x0", "x1", "x2", "x3"}, Categorical: []bool{false, false, false, true},
		Arms: []string{"control", "a", "b"}, TS: make([]int64, n)}
	truth := make([][2]float64, n)
	for i := 0; i < n; i++ {
		x := []float64{r.Float64(), r.Float64(), r.Float64(), float64(r.IntN(3))}
		p0 := 0.15 + 0.2*x[1]
		ta, tb := -0.05, 0.0
		if x[0] > 0.5 {
			ta = 0.3
		}
		if x[3] == 2 {
			tb = 0.25
		}
		probs := [3]float64{1.0 / 3, 1.0 / 3, 1.0 / 3}
		if assign != nil {
			probs = assign(x)
		}
		u, arm := r.Float64(), 0
		for arm < 2 && u >= probs[arm] {
			u -= probs[arm]
			arm++
		}
		p := p0 + [3]float64{0, ta, tb}[arm]
		y := 0.0
		if r.Float64() < p {
			y = 1
		}
		d.X = append(d.X, x...)
		d.Y = append(d.Y, y)
		d.T = append(d.T, arm)
		d.P = append(d.P, probs[arm])
		d.TS[i] = int64(i)
		truth[i] = [2]float64{ta, tb}
	}
	return d, truth
}

func gbdt() training.Learner {
	return training.NewGBDT(training.GBDTOptions{Trees: 60, MaxDepth: 3, LearningRate: 0.1, MinLeaf: 50, Seed: 1})
}

func logistic() training.Learner { return training.NewLogistic(training.LogisticOptions{}) }

func TestLearnersFindHeterogeneousEffects(t *testing.T) {
	train, _ := synth(12000, 1, nil)
	test, truth := synth(6000, 2, nil)
	learners := []Learner{
		TLearner{Base: gbdt()},
		TLearner{Base: logistic()},
		XLearner{Outcome: gbdt()},
		XLearner{Outcome: gbdt(), Effect: Ridge{}, Propensity: logistic()},
		TransformedOutcome{},
		TransformedOutcome{Regressor: ViaClassifier{Learner: gbdt()}, Baseline: logistic()},
	}
	for _, l := range learners {
		t.Run(l.Name(), func(t *testing.T) {
			m, err := l.Fit(context.Background(), train)
			if err != nil {
				t.Fatal(err)
			}
			evs, err := EvaluateModel(m, test, EvalOptions{Bootstrap: 100, Seed: 3})
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) != 2 || evs[0].Arm != "a" || evs[1].Arm != "b" {
				t.Fatalf("arms %+v", evs)
			}
			for _, ev := range evs {
				t.Logf("%s: qini %.3f [%.3f, %.3f] auuc %.4f (random %.4f) uplift@10 %.3f @30 %.3f",
					ev.Arm, ev.Qini, ev.Lo.Qini, ev.Hi.Qini, ev.AUUC, ev.AUUCRandom, ev.UpliftAt10, ev.UpliftAt30)
				if !(ev.Lo.Qini > 0.01) || !(ev.AUUC > ev.AUUCRandom+0.02) {
					t.Errorf("%s: qini %v [%v, %v], auuc %v vs random %v", ev.Arm, ev.Qini, ev.Lo.Qini, ev.Hi.Qini, ev.AUUC, ev.AUUCRandom)
				}
			}
			// ranking quality against the truth: predicted uplift of arm a higher where x0 > 0.5
			pred, err := Predictions(m, test)
			if err != nil {
				t.Fatal(err)
			}
			var hi, lo, nhi, nlo float64
			for i := range truth {
				if truth[i][0] > 0 {
					hi += pred[2*i]
					nhi++
				} else {
					lo += pred[2*i]
					nlo++
				}
			}
			if hi/nhi-lo/nlo < 0.15 {
				t.Errorf("arm a: mean predicted uplift %.3f where true 0.3, %.3f where true -0.05", hi/nhi, lo/nlo)
			}
			// Baseline is the control propensity, near 0.15+0.2*x1 on average (0.25)
			var sb float64
			for i := 0; i < test.N(); i++ {
				b, err := m.Baseline(test.Row(i))
				if err != nil {
					t.Fatal(err)
				}
				sb += b
			}
			if b := sb / float64(test.N()); math.Abs(b-0.25) > 0.04 {
				t.Errorf("mean baseline %.3f, want about 0.25", b)
			}
			// artifact round trip gives the same predictions
			var buf bytes.Buffer
			if err := Write(&buf, m, nil); err != nil {
				t.Fatal(err)
			}
			m2, err := Read(&buf, nil)
			if err != nil {
				t.Fatal(err)
			}
			if m2.Kind() != m.Kind() || len(m2.Arms()) != 3 || m2.NumFeatures() != 4 {
				t.Fatalf("read back %s %v %d", m2.Kind(), m2.Arms(), m2.NumFeatures())
			}
			pred2, err := Predictions(m2, test)
			if err != nil {
				t.Fatal(err)
			}
			for i := range pred {
				if math.Abs(pred[i]-pred2[i]) > 1e-9 {
					t.Fatalf("row %d: prediction %v after round trip, %v before", i/2, pred2[i], pred[i])
				}
			}
			// Predict does not allocate
			out := make([]float64, 2)
			x := test.Row(0)
			if a := testing.AllocsPerRun(100, func() { _ = m.Predict(x, out) }); a != 0 {
				t.Errorf("Predict allocates %v times", a)
			}
			if err := m.Predict(x[:3], out); err == nil {
				t.Error("short vector accepted")
			}
			if err := m.Predict(x, out[:1]); err == nil {
				t.Error("short output accepted")
			}
		})
	}
}

// With logged probabilities that depend on x (arm a shown mostly where the baseline is high),
// the transformed outcome with the logged P recovers the effect; ignoring P does not.
func TestTransformedOutcomeUsesLoggedP(t *testing.T) {
	assign := func(x []float64) [3]float64 {
		if x[1] > 0.5 {
			return [3]float64{0.1, 0.8, 0.1}
		}
		return [3]float64{0.6, 0.2, 0.2}
	}
	d, truth := synth(60000, 5, assign)
	ctx := context.Background()
	withP, err := TransformedOutcome{}.Fit(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	noP := *d
	noP.P = nil
	without, err := TransformedOutcome{}.Fit(ctx, &noP)
	if err != nil {
		t.Fatal(err)
	}
	meanErr := func(m Model) float64 {
		pred, err := Predictions(m, d)
		if err != nil {
			t.Fatal(err)
		}
		var s float64
		for i := range truth {
			s += pred[2*i] - truth[i][0]
		}
		return s / float64(len(truth))
	}
	eWith, eWithout := meanErr(withP), meanErr(without)
	t.Logf("mean error of arm a's predicted uplift: with logged P %.4f, without %.4f", eWith, eWithout)
	if math.Abs(eWith) > 0.03 {
		t.Errorf("with logged P the mean uplift is off by %.4f", eWith)
	}
	if math.Abs(eWithout) < 3*math.Abs(eWith) || math.Abs(eWithout) < 0.05 {
		t.Errorf("ignoring P should bias the estimate: %.4f vs %.4f", eWithout, eWith)
	}
}

func TestCrossValidate(t *testing.T) {
	d, _ := synth(6000, 8, nil)
	ctx := context.Background()
	for _, opt := range []CVOptions{{Folds: 3, Seed: 1}, {TimeOrdered: true, TestFraction: 0.3}} {
		res, err := CrossValidate(ctx, TLearner{Base: gbdt()}, d, opt)
		if err != nil {
			t.Fatal(err)
		}
		want := 6000
		if opt.TimeOrdered {
			want = 1800
		}
		if res.TestRows != want || len(res.Arms) != 2 {
			t.Fatalf("%+v: test rows %d, arms %d", opt, res.TestRows, len(res.Arms))
		}
		for _, a := range res.Arms {
			if !(a.Qini > 0) {
				t.Errorf("%+v arm %s: out-of-sample qini %v", opt, a.Arm, a.Qini)
			}
		}
	}
	noTS := *d
	noTS.TS = nil
	if _, err := CrossValidate(ctx, TLearner{Base: gbdt()}, &noTS, CVOptions{TimeOrdered: true}); err == nil {
		t.Error("time-ordered split without TS accepted")
	}
}

func TestLearnerErrors(t *testing.T) {
	d, _ := synth(100, 1, nil)
	bad := *d
	bad.T = nil
	if _, err := (TLearner{Base: logistic()}).Fit(context.Background(), &bad); err == nil {
		t.Error("no treatment accepted")
	}
	bad = *d
	bad.T = make([]int, d.N()) // every row control
	if _, err := (XLearner{Outcome: logistic()}).Fit(context.Background(), &bad); err == nil {
		t.Error("empty arms accepted")
	}
	bad = *d
	bad.P = make([]float64, d.N())
	if _, err := (TransformedOutcome{}).Fit(context.Background(), &bad); err == nil {
		t.Error("zero probabilities accepted")
	}
	if _, err := Read(bytes.NewReader([]byte(`{"format":"other"}`)), nil); err == nil {
		t.Error("wrong format accepted")
	}
}

func BenchmarkPredict(b *testing.B) {
	train, _ := synth(4000, 1, nil)
	for _, l := range []Learner{TLearner{Base: gbdt()}, XLearner{Outcome: gbdt()}, TransformedOutcome{}} {
		m, err := l.Fit(context.Background(), train)
		if err != nil {
			b.Fatal(err)
		}
		x, out := train.Row(0), make([]float64, 2)
		b.Run(l.Name(), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := m.Predict(x, out); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
