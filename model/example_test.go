package model_test

import (
	"bytes"
	"fmt"

	"github.com/nudgehq/nudge/model"
)

// A model round-trips through its artifact and scores raw rows; a wrong-length row is an
// error.
func ExampleWrite() {
	m, err := model.NewLogistic(model.Logistic{
		Features: []string{"pages", "plan"}, Categorical: []bool{false, true}, Levels: []int{0, 2},
		Mean: []float64{5, 0.5, 0.5}, Scale: []float64{2, 0.5, 0.5}, Coef: []float64{1, -0.5, 0.5}, Intercept: -1,
	})
	if err != nil {
		panic(err)
	}
	var buf bytes.Buffer
	if err := model.Write(&buf, m); err != nil {
		panic(err)
	}
	a, err := model.ReadArtifact(&buf)
	if err != nil {
		panic(err)
	}
	p, _ := a.Model.Score([]float64{7, 1})
	_, err = a.Model.Score([]float64{7})
	fmt.Println(a.Info.Kind, a.Info.Features)
	fmt.Printf("%.4f\n", p)
	fmt.Println(err)
	// Output:
	// logistic [pages plan]
	// 0.7311
	// model: wrong feature count: logistic has 2, got 1
}
