//go:build golearn

package training_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/sjwhitworth/golearn/base"
	"github.com/sjwhitworth/golearn/ensemble"

	"github.com/nudgehq/nudge/training"
)

// TestGolearnRandomForestUCI measures golearn's RandomForest on the UCI table's fold 0 (row i
// in fold i%5): fit time, ROC AUC of its (hard, majority-vote) predictions, and whether two
// fits agree. It asserts nothing about quality; it records why golearn is not a learner here.
//
//	go test -tags golearn -run Golearn -v ./training
func TestGolearnRandomForestUCI(t *testing.T) {
	ds := loadUCI(t)
	var trainIdx, testIdx []int
	for i := 0; i < ds.N(); i++ {
		if i%5 == 0 {
			testIdx = append(testIdx, i)
		} else {
			trainIdx = append(trainIdx, i)
		}
	}
	tr, te := ds.Subset(trainIdx), ds.Subset(testIdx)
	toGrid := func(d *training.Dataset) *base.DenseInstances {
		inst := base.NewDenseInstances()
		specs := make([]base.AttributeSpec, d.D())
		for j, name := range d.Names {
			specs[j] = inst.AddAttribute(base.NewFloatAttribute(name))
		}
		cls := base.NewCategoricalAttribute()
		cls.SetName("y")
		cls.GetSysValFromString("0")
		cls.GetSysValFromString("1")
		cspec := inst.AddAttribute(cls)
		if err := inst.AddClassAttribute(cls); err != nil {
			t.Fatal(err)
		}
		if err := inst.Extend(d.N()); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < d.N(); i++ {
			for j := range specs {
				inst.Set(specs[j], i, base.PackFloatToBytes(d.Row(i)[j]))
			}
			inst.Set(cspec, i, cls.GetSysValFromString(fmt.Sprint(d.Y[i])))
		}
		return inst
	}
	gtr, gte := toGrid(tr), toGrid(te)
	var preds [2][]float64
	for run := 0; run < 2; run++ {
		rf := ensemble.NewRandomForest(50, 4)
		t0 := time.Now()
		if err := rf.Fit(gtr); err != nil {
			t.Fatal(err)
		}
		fit := time.Since(t0)
		out, err := rf.Predict(gte)
		if err != nil {
			t.Fatal(err)
		}
		p := make([]float64, te.N())
		for i := range p {
			if base.GetClass(out, i) == "1" {
				p[i] = 1
			}
		}
		preds[run] = p
		auc, _ := training.ROCAUC(te.Y, p, nil)
		t.Logf("golearn RandomForest(50 trees, 4 features) run %d: fit %v on %d rows, test AUC (hard votes) %.4f", run, fit, tr.N(), auc)
	}
	diff := 0
	for i := range preds[0] {
		if preds[0][i] != preds[1][i] {
			diff++
		}
	}
	t.Logf("two fits disagree on %d of %d test rows (global, unseeded math/rand)", diff, te.N())
}
