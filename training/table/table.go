// Package table reads a data scientist's own CSV table into a training.Dataset and writes a
// dataset back out as CSV. It owns the column typing rules and the categorical encoding
// (Encoding), which is kept with a model so new rows are coded the same way at prediction time.
//
// Typing: a column is categorical when declared so or when any non-empty value is neither a
// number nor a boolean (true/false, case-insensitive, read as 1/0). Category codes are 0, 1, ...
// in sorted order by default (numerically when every level is a number, else byte-wise; this
// matches pandas' category codes, as the baselines use) or in first-seen order. Empty cells are
// missing: NaN for both kinds (an unseen category at prediction time is NaN too).
//
// It imports training/ and the standard library only; it must not import data/ or serve/.
package table

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/nudgehq/nudge/training"
)

// Category code orders.
const (
	Sorted    = "sorted"
	FirstSeen = "first-seen"
)

// ErrFormat is wrapped by every error about the table's content.
var ErrFormat = errors.New("table: bad table")

// Options says which columns play which role.
type Options struct {
	Label       string   // required: 0/1, true/false, yes/no (case-insensitive)
	Weight      string   // optional: non-negative row weights
	Treatment   string   // optional: arm names
	Control     string   // the control arm's name (default "control", else "0")
	Time        string   // optional: decision time as Unix ms or RFC 3339, for time-ordered splits
	Categorical []string // columns to treat as categorical whatever their values
	Ignore      []string // columns to skip
	Order       string   // category code order: Sorted (default) or FirstSeen
}

// Column describes one feature column's encoding.
type Column struct {
	Name        string   `json:"name"`
	Categorical bool     `json:"categorical,omitempty"`
	Levels      []string `json:"levels,omitempty"` // code k is Levels[k]
}

// Encoding is the feature columns' encoding, in feature order.
type Encoding struct {
	Columns []Column `json:"columns"`
}

// Names returns the feature names.
func (e *Encoding) Names() []string {
	out := make([]string, len(e.Columns))
	for i, c := range e.Columns {
		out[i] = c.Name
	}
	return out
}

// Levels returns, per feature, the category names by code (nil for numeric features), in the
// form model.Info.Levels stores them.
func (e *Encoding) Levels() [][]string {
	out := make([][]string, len(e.Columns))
	for j, c := range e.Columns {
		out[j] = c.Levels
	}
	return out
}

// EncodingFromLevels rebuilds an Encoding from feature names and per-feature levels (as stored
// in model.Info), so a saved model's rows can be coded for prediction.
func EncodingFromLevels(names []string, levels [][]string) (*Encoding, error) {
	if levels != nil && len(levels) != len(names) {
		return nil, fmt.Errorf("table: %d level lists for %d features", len(levels), len(names))
	}
	e := &Encoding{Columns: make([]Column, len(names))}
	for j, n := range names {
		e.Columns[j] = Column{Name: n}
		if levels != nil && levels[j] != nil {
			e.Columns[j].Categorical = true
			e.Columns[j].Levels = levels[j]
		}
	}
	return e, nil
}

// Value encodes one raw cell of feature j: a number, a boolean (1/0), a category's code, or
// NaN for an empty cell or a category not seen in training.
func (e *Encoding) Value(j int, s string) (float64, error) {
	c := &e.Columns[j]
	s = strings.TrimSpace(s)
	if s == "" {
		return math.NaN(), nil
	}
	if c.Categorical {
		if k := slices.Index(c.Levels, s); k >= 0 {
			return float64(k), nil
		}
		if v, ok := parseNumber(s); ok { // "1.0" for level "1"
			if k := slices.Index(c.Levels, formatNumber(v)); k >= 0 {
				return float64(k), nil
			}
		}
		return math.NaN(), nil
	}
	v, ok := parseNumber(s)
	if !ok {
		return 0, fmt.Errorf("%w: column %q: %q is not a number", ErrFormat, c.Name, s)
	}
	return v, nil
}

// parseNumber reads a float or a boolean.
func parseNumber(s string) (float64, bool) {
	if v, err := strconv.ParseFloat(s, 64); err == nil {
		return v, true
	}
	switch strings.ToLower(s) {
	case "true":
		return 1, true
	case "false":
		return 0, true
	}
	return 0, false
}

func formatNumber(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

func parseLabel(s string) (float64, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "1", "1.0", "true", "yes":
		return 1, true
	case "0", "0.0", "false", "no":
		return 0, true
	}
	return 0, false
}

// column accumulates one feature column.
type column struct {
	name     string
	declared bool
	nums     []float64 // numeric mode
	dict     map[string]int32
	levels   []string
	codes    []int32 // categorical mode; -1 = missing
}

func (c *column) categorical() bool { return c.dict != nil }

func (c *column) toCategorical() {
	c.dict = map[string]int32{}
	c.codes = make([]int32, len(c.nums), cap(c.nums))
	for i, v := range c.nums {
		if math.IsNaN(v) {
			c.codes[i] = -1
			continue
		}
		c.codes[i] = c.code(formatNumber(v))
	}
	c.nums = nil
}

func (c *column) code(s string) int32 {
	k, ok := c.dict[s]
	if !ok {
		k = int32(len(c.levels))
		c.dict[s] = k
		c.levels = append(c.levels, s)
	}
	return k
}

func (c *column) add(s string) {
	s = strings.TrimSpace(s)
	if c.categorical() {
		if s == "" {
			c.codes = append(c.codes, -1)
		} else {
			c.codes = append(c.codes, c.code(s))
		}
		return
	}
	if s == "" {
		c.nums = append(c.nums, math.NaN())
		return
	}
	if v, ok := parseNumber(s); ok {
		c.nums = append(c.nums, v)
		return
	}
	c.toCategorical()
	c.codes = append(c.codes, c.code(s))
}

// sortLevels renumbers codes so levels are in sorted order.
func (c *column) sortLevels() {
	order := make([]int, len(c.levels))
	for i := range order {
		order[i] = i
	}
	allNum := true
	nv := make([]float64, len(c.levels))
	for i, l := range c.levels {
		v, err := strconv.ParseFloat(l, 64)
		if err != nil {
			allNum = false
			break
		}
		nv[i] = v
	}
	slices.SortStableFunc(order, func(a, b int) int {
		if allNum {
			switch {
			case nv[a] < nv[b]:
				return -1
			case nv[a] > nv[b]:
				return 1
			}
			return 0
		}
		return strings.Compare(c.levels[a], c.levels[b])
	})
	remap := make([]int32, len(order))
	levels := make([]string, len(order))
	for newK, oldK := range order {
		remap[oldK] = int32(newK)
		levels[newK] = c.levels[oldK]
	}
	for i, k := range c.codes {
		if k >= 0 {
			c.codes[i] = remap[k]
		}
	}
	c.levels = levels
	for i, l := range levels {
		c.dict[l] = int32(i)
	}
}

// Read reads a CSV table with a header row.
func Read(r io.Reader, opt Options) (*training.Dataset, *Encoding, error) {
	if opt.Label == "" {
		return nil, nil, fmt.Errorf("table: no label column given")
	}
	order := opt.Order
	if order == "" {
		order = Sorted
	}
	if order != Sorted && order != FirstSeen {
		return nil, nil, fmt.Errorf("table: unknown category order %q", order)
	}
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	head, err := cr.Read()
	if err != nil {
		return nil, nil, fmt.Errorf("%w: header: %w", ErrFormat, err)
	}
	head = slices.Clone(head)
	find := func(name string) (int, error) {
		if name == "" {
			return -1, nil
		}
		k := slices.Index(head, name)
		if k < 0 {
			return -1, fmt.Errorf("%w: no column %q in header", ErrFormat, name)
		}
		return k, nil
	}
	li, err := find(opt.Label)
	if err != nil {
		return nil, nil, err
	}
	wi, err := find(opt.Weight)
	if err != nil {
		return nil, nil, err
	}
	ti, err := find(opt.Treatment)
	if err != nil {
		return nil, nil, err
	}
	tsi, err := find(opt.Time)
	if err != nil {
		return nil, nil, err
	}
	for _, name := range slices.Concat(opt.Categorical, opt.Ignore) {
		if _, err := find(name); err != nil {
			return nil, nil, err
		}
	}
	var cols []*column
	colOf := make([]int, len(head)) // header index -> feature index or -1
	for k, name := range head {
		colOf[k] = -1
		if k == li || k == wi || k == ti || k == tsi || slices.Contains(opt.Ignore, name) {
			continue
		}
		c := &column{name: name, declared: slices.Contains(opt.Categorical, name)}
		if c.declared {
			c.dict = map[string]int32{}
		}
		colOf[k] = len(cols)
		cols = append(cols, c)
	}
	ds := &training.Dataset{}
	var arms []string
	armOf := map[string]int{}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		line, _ := cr.FieldPos(0)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %w", ErrFormat, err)
		}
		for k, s := range rec {
			switch {
			case k == li:
				y, ok := parseLabel(s)
				if !ok {
					return nil, nil, fmt.Errorf("%w: line %d column %d (%s): label %q is not 0/1, true/false or yes/no", ErrFormat, line, k+1, head[k], s)
				}
				ds.Y = append(ds.Y, y)
			case k == wi:
				w, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
				if err != nil || w < 0 || math.IsNaN(w) || math.IsInf(w, 0) {
					return nil, nil, fmt.Errorf("%w: line %d column %d (%s): weight %q is not a non-negative number", ErrFormat, line, k+1, head[k], s)
				}
				ds.W = append(ds.W, w)
			case k == ti:
				s = strings.TrimSpace(s)
				a, ok := armOf[s]
				if !ok {
					a = len(arms)
					armOf[s] = a
					arms = append(arms, s)
				}
				ds.T = append(ds.T, a)
			case k == tsi:
				ts, err := parseTime(s)
				if err != nil {
					return nil, nil, fmt.Errorf("%w: line %d column %d (%s): %w", ErrFormat, line, k+1, head[k], err)
				}
				ds.TS = append(ds.TS, ts)
			case colOf[k] >= 0:
				cols[colOf[k]].add(s)
			}
		}
	}
	if len(ds.Y) == 0 {
		return nil, nil, fmt.Errorf("%w: no rows", ErrFormat)
	}
	if ti >= 0 {
		if err := setArms(ds, arms, opt.Control); err != nil {
			return nil, nil, err
		}
	}
	n, d := len(ds.Y), len(cols)
	enc := &Encoding{Columns: make([]Column, d)}
	ds.Names = make([]string, d)
	ds.X = make([]float64, n*d)
	anyCat := false
	for j, c := range cols {
		ds.Names[j] = c.name
		enc.Columns[j] = Column{Name: c.name}
		if !c.categorical() {
			for i, v := range c.nums {
				ds.X[i*d+j] = v
			}
			continue
		}
		anyCat = true
		if order == Sorted {
			c.sortLevels()
		}
		enc.Columns[j].Categorical = true
		enc.Columns[j].Levels = c.levels
		for i, k := range c.codes {
			if k < 0 {
				ds.X[i*d+j] = math.NaN()
			} else {
				ds.X[i*d+j] = float64(k)
			}
		}
	}
	if anyCat {
		ds.Categorical = make([]bool, d)
		for j := range cols {
			ds.Categorical[j] = enc.Columns[j].Categorical
		}
	}
	return ds, enc, nil
}

// setArms orders the arms so the control is arm 0.
func setArms(ds *training.Dataset, arms []string, control string) error {
	ci := -1
	if control != "" {
		ci = slices.Index(arms, control)
		if ci < 0 {
			return fmt.Errorf("%w: control arm %q not in treatment column (arms %v)", ErrFormat, control, arms)
		}
	} else if ci = slices.Index(arms, "control"); ci < 0 {
		if ci = slices.Index(arms, "0"); ci < 0 {
			return fmt.Errorf("%w: no control arm (\"control\" or \"0\") among %v; set Options.Control", ErrFormat, arms)
		}
	}
	// control first, the rest in first-seen order
	remap := make([]int, len(arms))
	out := []string{arms[ci]}
	remap[ci] = 0
	for k, a := range arms {
		if k != ci {
			remap[k] = len(out)
			out = append(out, a)
		}
	}
	for i, a := range ds.T {
		ds.T[i] = remap[a]
	}
	ds.Arms = out
	return nil
}

func parseTime(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if v, err := strconv.ParseInt(s, 10, 64); err == nil {
		return v, nil
	}
	for _, layout := range []string{"2006-01-02T15:04:05Z07:00", "2006-01-02T15:04:05.999999999Z07:00", "2006-01-02 15:04:05", "2006-01-02"} {
		if t, err := timeParse(layout, s); err == nil {
			return t, nil
		}
	}
	return 0, fmt.Errorf("time %q is neither Unix ms nor RFC 3339", s)
}

// ReadFile reads a CSV table from a file.
func ReadFile(path string, opt Options) (*training.Dataset, *Encoding, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("table: %w", err)
	}
	defer f.Close()
	ds, enc, err := Read(f, opt)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return ds, enc, nil
}

// ExportCSV writes ds as CSV: the features (categories as their level names when enc is given,
// else as codes), then label, and weight, treatment, probability and ts columns when present.
// NaN is written as an empty cell. Numbers use the shortest exact representation.
func ExportCSV(w io.Writer, ds *training.Dataset, enc *Encoding) error {
	d := ds.D()
	if enc != nil && len(enc.Columns) != d {
		return fmt.Errorf("table: export: encoding has %d columns, dataset %d", len(enc.Columns), d)
	}
	cw := csv.NewWriter(w)
	head := slices.Clone(ds.Names)
	head = append(head, "label")
	if ds.W != nil {
		head = append(head, "weight")
	}
	if ds.T != nil {
		head = append(head, "treatment")
	}
	if ds.P != nil {
		head = append(head, "propensity")
	}
	if ds.TS != nil {
		head = append(head, "ts")
	}
	if err := cw.Write(head); err != nil {
		return fmt.Errorf("table: export: %w", err)
	}
	rec := make([]string, len(head))
	for i := 0; i < ds.N(); i++ {
		rec = rec[:0]
		for j, v := range ds.Row(i) {
			switch {
			case math.IsNaN(v):
				rec = append(rec, "")
			case enc != nil && enc.Columns[j].Categorical:
				k := int(v)
				if k < 0 || k >= len(enc.Columns[j].Levels) || float64(k) != v {
					return fmt.Errorf("table: export: row %d feature %q: code %v has no level", i, ds.Names[j], v)
				}
				rec = append(rec, enc.Columns[j].Levels[k])
			default:
				rec = append(rec, formatNumber(v))
			}
		}
		rec = append(rec, formatNumber(ds.Y[i]))
		if ds.W != nil {
			rec = append(rec, formatNumber(ds.W[i]))
		}
		if ds.T != nil {
			rec = append(rec, ds.Arms[ds.T[i]])
		}
		if ds.P != nil {
			rec = append(rec, formatNumber(ds.P[i]))
		}
		if ds.TS != nil {
			rec = append(rec, strconv.FormatInt(ds.TS[i], 10))
		}
		if err := cw.Write(rec); err != nil {
			return fmt.Errorf("table: export: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("table: export: %w", err)
	}
	return nil
}
