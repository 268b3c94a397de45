package table_test

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/nudgehq/nudge/training/table"
)

const sample = `age,plan,city,active,weight,arm,ts,bought
31,pro,Paris,TRUE,1,control,1700000000000,yes
,free,Berlin,false,2,email,1700000001000,No
45,pro,,true,1,control,2023-11-14T22:13:22Z,1
27,team,Paris,FALSE,0.5,coupon,1700000003000,FALSE
`

func TestReadTypesAndRoles(t *testing.T) {
	ds, enc, err := table.Read(strings.NewReader(sample), table.Options{Label: "bought", Weight: "weight",
		Treatment: "arm", Time: "ts", Categorical: []string{"plan"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(ds.Names, ","); got != "age,plan,city,active" {
		t.Fatalf("features %s", got)
	}
	wantCat := []bool{false, true, true, false}
	for j, c := range wantCat {
		if ds.Categorical[j] != c {
			t.Errorf("feature %s categorical = %v", ds.Names[j], ds.Categorical[j])
		}
	}
	// sorted codes: plan free=0 pro=1 team=2; city Berlin=0 Paris=1; empty = NaN
	want := [][]float64{{31, 1, 1, 1}, {math.NaN(), 0, 0, 0}, {45, 1, math.NaN(), 1}, {27, 2, 1, 0}}
	for i, row := range want {
		for j, v := range row {
			got := ds.X[i*4+j]
			if got != v && !(math.IsNaN(got) && math.IsNaN(v)) {
				t.Errorf("row %d %s = %v, want %v", i, ds.Names[j], got, v)
			}
		}
	}
	if strings.Join(enc.Columns[1].Levels, ",") != "free,pro,team" || strings.Join(enc.Columns[2].Levels, ",") != "Berlin,Paris" {
		t.Errorf("levels %v %v", enc.Columns[1].Levels, enc.Columns[2].Levels)
	}
	if y := ds.Y; y[0] != 1 || y[1] != 0 || y[2] != 1 || y[3] != 0 {
		t.Errorf("labels %v", y)
	}
	if ds.W[1] != 2 || ds.W[3] != 0.5 {
		t.Errorf("weights %v", ds.W)
	}
	if strings.Join(ds.Arms, ",") != "control,email,coupon" || ds.T[0] != 0 || ds.T[1] != 1 || ds.T[3] != 2 {
		t.Errorf("arms %v t %v", ds.Arms, ds.T)
	}
	if ds.TS[2] != 1700000002000 {
		t.Errorf("RFC 3339 time = %d", ds.TS[2])
	}
	// the encoding codes new cells the same way
	for _, tc := range []struct {
		j    int
		s    string
		want float64
	}{{1, "team", 2}, {1, "enterprise", math.NaN()}, {0, "3.5", 3.5}, {3, "True", 1}, {2, "", math.NaN()}} {
		v, err := enc.Value(tc.j, tc.s)
		if err != nil || (v != tc.want && !(math.IsNaN(v) && math.IsNaN(tc.want))) {
			t.Errorf("Value(%d, %q) = %v, %v; want %v", tc.j, tc.s, v, err, tc.want)
		}
	}
	if _, err := enc.Value(0, "abc"); !errors.Is(err, table.ErrFormat) {
		t.Errorf("non-number in numeric column: %v", err)
	}
}

func TestCodeOrders(t *testing.T) {
	csv := "n,c,y\n10,b,0\n9,a,1\n10,c,1\n2,b,0\n"
	tests := []struct {
		order, levels string
	}{{table.Sorted, "2,9,10"}, {table.FirstSeen, "10,9,2"}}
	for _, tc := range tests {
		t.Run(tc.order, func(t *testing.T) {
			_, enc, err := table.Read(strings.NewReader(csv), table.Options{Label: "y", Categorical: []string{"n"}, Order: tc.order})
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(enc.Columns[0].Levels, ","); got != tc.levels {
				t.Errorf("levels %s, want %s (numeric levels sort as numbers)", got, tc.levels)
			}
		})
	}
}

func TestReadErrors(t *testing.T) {
	tests := []struct {
		name, csv string
		opt       table.Options
		want      string
	}{
		{"bad label", "a,y\n1,0\n2,maybe\n", table.Options{Label: "y"}, "line 3 column 2"},
		{"missing label column", "a,b\n1,0\n", table.Options{Label: "y"}, `no column "y"`},
		{"negative weight", "a,w,y\n1,-1,0\n", table.Options{Label: "y", Weight: "w"}, "line 2 column 2"},
		{"ragged row", "a,y\n1,0\n1,0,3\n", table.Options{Label: "y"}, "line 3"},
		{"no control", "a,t,y\n1,x,0\n1,z,1\n", table.Options{Label: "y", Treatment: "t"}, "no control arm"},
		{"no rows", "a,y\n", table.Options{Label: "y"}, "no rows"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := table.Read(strings.NewReader(tc.csv), tc.opt)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestExportRoundTrip(t *testing.T) {
	opt := table.Options{Label: "bought", Weight: "weight", Treatment: "arm", Time: "ts", Categorical: []string{"plan"}}
	ds, enc, err := table.Read(strings.NewReader(sample), opt)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := table.ExportCSV(&buf, ds, enc); err != nil {
		t.Fatal(err)
	}
	opt2 := table.Options{Label: "label", Weight: "weight", Treatment: "treatment", Time: "ts", Categorical: []string{"plan"}}
	back, enc2, err := table.Read(bytes.NewReader(buf.Bytes()), opt2)
	if err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
	if len(back.X) != len(ds.X) || strings.Join(back.Names, ",") != strings.Join(ds.Names, ",") {
		t.Fatalf("shape changed:\n%s", buf.String())
	}
	for i, v := range ds.X {
		if w := back.X[i]; v != w && !(math.IsNaN(v) && math.IsNaN(w)) {
			t.Errorf("X[%d] = %v, was %v", i, w, v)
		}
	}
	for i := range ds.Y {
		if ds.Y[i] != back.Y[i] || ds.W[i] != back.W[i] || ds.TS[i] != back.TS[i] || ds.Arms[ds.T[i]] != back.Arms[back.T[i]] {
			t.Errorf("row %d roles differ", i)
		}
	}
	if strings.Join(enc2.Columns[1].Levels, ",") != strings.Join(enc.Columns[1].Levels, ",") {
		t.Errorf("levels changed")
	}
}

func TestEncodingLevelsRoundTrip(t *testing.T) {
	_, enc, err := table.Read(strings.NewReader(sample), table.Options{Label: "bought", Ignore: []string{"weight", "arm", "ts"}})
	if err != nil {
		t.Fatal(err)
	}
	back, err := table.EncodingFromLevels(enc.Names(), enc.Levels())
	if err != nil {
		t.Fatal(err)
	}
	for j := range enc.Columns {
		for _, cell := range []string{"Paris", "pro", "31", "", "TRUE"} {
			a, errA := enc.Value(j, cell)
			b, errB := back.Value(j, cell)
			if (errA == nil) != (errB == nil) || (a != b && !(math.IsNaN(a) && math.IsNaN(b))) {
				t.Errorf("column %d cell %q: %v,%v vs %v,%v", j, cell, a, errA, b, errB)
			}
		}
	}
}
