package training_test

import (
	"context"
	"testing"

	"github.com/nudgehq/nudge/training"
)

func benchFit(b *testing.B, l training.Learner) {
	ds := loadUCI(b)
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		if _, err := l.Fit(ctx, ds, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFitLogisticUCI fits logistic regression on the whole UCI table (12,330 rows).
func BenchmarkFitLogisticUCI(b *testing.B) {
	benchFit(b, training.NewLogistic(training.LogisticOptions{L2: 1}))
}

// BenchmarkFitGBDTUCI fits 200 trees of depth 6 (xgboost's baseline settings) on the UCI table.
func BenchmarkFitGBDTUCI(b *testing.B) {
	benchFit(b, training.NewGBDT(training.GBDTOptions{Trees: 200, LearningRate: 0.1, MaxDepth: 6, MinLeaf: 1, Seed: 1}))
}

// BenchmarkFitGBDTSynth100k fits 200 trees of depth 6 on 100,000 generated rows x 30.
func BenchmarkFitGBDTSynth100k(b *testing.B) {
	ds := synth(100_000, 30, 1)
	l := training.NewGBDT(training.GBDTOptions{Trees: 200, LearningRate: 0.1, MaxDepth: 6, MinLeaf: 1, MinHessian: 1, Seed: 1})
	b.ResetTimer()
	for b.Loop() {
		if _, err := l.Fit(context.Background(), ds, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func benchScore(b *testing.B, l training.Learner) {
	ds := loadUCI(b)
	m, err := l.Fit(context.Background(), ds, nil)
	if err != nil {
		b.Fatal(err)
	}
	rows := make([][]float64, 256)
	for i := range rows {
		rows[i] = ds.Row(i * 37 % ds.N())
	}
	b.ReportAllocs()
	b.ResetTimer()
	var s float64
	i := 0
	for b.Loop() {
		v, err := m.Score(rows[i&255])
		if err != nil {
			b.Fatal(err)
		}
		s += v
		i++
	}
	_ = s
}

// BenchmarkScoreLogistic scores one UCI row (17 raw features, 7 categorical one-hot) with a
// fitted logistic regression.
func BenchmarkScoreLogistic(b *testing.B) {
	benchScore(b, training.NewLogistic(training.LogisticOptions{L2: 1}))
}

// BenchmarkScoreGBDT200 scores one UCI row with 200 fitted trees of depth 6.
func BenchmarkScoreGBDT200(b *testing.B) {
	benchScore(b, training.NewGBDT(training.GBDTOptions{Trees: 200, LearningRate: 0.1, MaxDepth: 6, MinLeaf: 1, Seed: 1}))
}
