package training

// NOTE: contract written by the lead; the learners' owner may add methods but must keep these
// fields, which the uplift package also uses.

// Dataset is a dense training table: N rows of D features, row-major.
type Dataset struct {
	Names       []string  // feature names, len D
	Categorical []bool    // per feature: values are category codes (0, 1, 2, ...); nil = all numeric
	X           []float64 // row-major, len N*D
	Y           []float64 // outcome 0/1, len N
	W           []float64 // optional row weights; nil means all 1
	T           []int     // optional treatment arm per row (index into Arms; 0 is control); nil = no treatment
	Arms        []string  // arm names, Arms[0] the control; nil when T is nil
	P           []float64 // optional logged probability of the row's assigned arm (for IPS); nil = unknown
	TS          []int64   // optional decision time per row (Unix ms) for time-ordered splits; nil = unknown
}

// N is the number of rows.
func (d *Dataset) N() int { return len(d.Y) }

// D is the number of features.
func (d *Dataset) D() int { return len(d.Names) }

// Row returns row i (a view, not a copy).
func (d *Dataset) Row(i int) []float64 { k := d.D(); return d.X[i*k : (i+1)*k] }

// Weight returns the weight of row i.
func (d *Dataset) Weight(i int) float64 {
	if d.W == nil {
		return 1
	}
	return d.W[i]
}

// Subset returns a new dataset with the given rows, in that order (data copied).
func (d *Dataset) Subset(idx []int) *Dataset {
	k := d.D()
	out := &Dataset{Names: d.Names, Categorical: d.Categorical, Arms: d.Arms,
		X: make([]float64, 0, len(idx)*k), Y: make([]float64, 0, len(idx))}
	if d.W != nil {
		out.W = make([]float64, 0, len(idx))
	}
	if d.T != nil {
		out.T = make([]int, 0, len(idx))
	}
	if d.P != nil {
		out.P = make([]float64, 0, len(idx))
	}
	if d.TS != nil {
		out.TS = make([]int64, 0, len(idx))
	}
	for _, i := range idx {
		out.X = append(out.X, d.Row(i)...)
		out.Y = append(out.Y, d.Y[i])
		if d.W != nil {
			out.W = append(out.W, d.W[i])
		}
		if d.T != nil {
			out.T = append(out.T, d.T[i])
		}
		if d.P != nil {
			out.P = append(out.P, d.P[i])
		}
		if d.TS != nil {
			out.TS = append(out.TS, d.TS[i])
		}
	}
	return out
}
