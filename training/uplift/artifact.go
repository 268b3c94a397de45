package uplift

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/nudgehq/nudge/model"
)

// Format is the artifact format tag.
const Format = "nudge-uplift/1"

// Part is one encoded sub-model: its kind and its JSON.
type Part struct {
	Kind string          `json:"kind"`
	Data json.RawMessage `json:"data"`
}

// BinaryCodec encodes and decodes model.Binary parts of an artifact.
type BinaryCodec interface {
	EncodeBinary(m model.Binary) (Part, error)
	DecodeBinary(p Part) (model.Binary, error)
}

// DefaultCodec handles *model.Logistic, *model.Ensemble and *model.Calibrated.
var DefaultCodec BinaryCodec = modelCodec{}

type modelCodec struct{}

type calibratedJSON struct {
	Base   Part      `json:"base"`
	Method string    `json:"method"`
	A      float64   `json:"a"`
	B      float64   `json:"b"`
	X      []float64 `json:"x,omitempty"`
	Y      []float64 `json:"y,omitempty"`
}

func (c modelCodec) EncodeBinary(m model.Binary) (Part, error) {
	var kind string
	var v any = m
	switch t := m.(type) {
	case *model.Logistic:
		kind = "logistic"
	case *model.Ensemble:
		kind = "ensemble"
	case *model.Calibrated:
		kind = "calibrated"
		b, err := c.EncodeBinary(t.Base)
		if err != nil {
			return Part{}, err
		}
		v = calibratedJSON{Base: b, Method: t.Method, A: t.A, B: t.B, X: t.X, Y: t.Y}
	default:
		return Part{}, fmt.Errorf("%w: cannot encode %T", ErrArtifact, m)
	}
	data, err := json.Marshal(v)
	if err != nil {
		return Part{}, fmt.Errorf("uplift: encode %s: %w", kind, err)
	}
	return Part{Kind: kind, Data: data}, nil
}

func (c modelCodec) DecodeBinary(p Part) (model.Binary, error) {
	switch p.Kind {
	case "logistic":
		var l model.Logistic
		if err := json.Unmarshal(p.Data, &l); err != nil {
			return nil, fmt.Errorf("%w: logistic: %v", ErrArtifact, err)
		}
		return model.NewLogistic(l)
	case "ensemble":
		var e model.Ensemble
		if err := json.Unmarshal(p.Data, &e); err != nil {
			return nil, fmt.Errorf("%w: ensemble: %v", ErrArtifact, err)
		}
		return model.NewEnsemble(e)
	case "calibrated":
		var cj calibratedJSON
		if err := json.Unmarshal(p.Data, &cj); err != nil {
			return nil, fmt.Errorf("%w: calibrated: %v", ErrArtifact, err)
		}
		b, err := c.DecodeBinary(cj.Base)
		if err != nil {
			return nil, err
		}
		return model.NewCalibrated(model.Calibrated{Base: b, Method: cj.Method, A: cj.A, B: cj.B, X: cj.X, Y: cj.Y})
	}
	return nil, fmt.Errorf("%w: unknown binary model kind %q", ErrArtifact, p.Kind)
}

type artifact struct {
	Format       string    `json:"format"`
	Kind         string    `json:"kind"`
	Arms         []string  `json:"arms"`
	Features     []string  `json:"features"`
	Outcome      []Part    `json:"outcome,omitempty"` // t-learner, per arm
	Control      *Part     `json:"control,omitempty"` // x-learner, transformed outcome
	Tau0         []Part    `json:"tau0,omitempty"`
	Tau1         []Part    `json:"tau1,omitempty"`
	Tau          []Part    `json:"tau,omitempty"`
	G            []Part    `json:"g,omitempty"`
	GConst       []float64 `json:"g_const,omitempty"`
	BaselineRate float64   `json:"baseline_rate,omitempty"`
}

func encodeRegression(r Regression, c BinaryCodec) (Part, error) {
	switch t := r.(type) {
	case *Linear:
		data, err := json.Marshal(t)
		return Part{Kind: "linear", Data: data}, err
	case *Scaled:
		b, err := c.EncodeBinary(t.Model)
		if err != nil {
			return Part{}, err
		}
		data, err := json.Marshal(struct {
			Model  Part    `json:"model"`
			Lo, Hi float64 `json:",omitempty"`
		}{b, t.Lo, t.Hi})
		return Part{Kind: "scaled", Data: data}, err
	}
	return Part{}, fmt.Errorf("%w: cannot encode regression %T", ErrArtifact, r)
}

func decodeRegression(p Part, c BinaryCodec) (Regression, error) {
	switch p.Kind {
	case "linear":
		var l Linear
		if err := json.Unmarshal(p.Data, &l); err != nil {
			return nil, fmt.Errorf("%w: linear: %v", ErrArtifact, err)
		}
		if err := l.validate(); err != nil {
			return nil, err
		}
		return &l, nil
	case "scaled":
		var s struct {
			Model  Part
			Lo, Hi float64
		}
		if err := json.Unmarshal(p.Data, &s); err != nil {
			return nil, fmt.Errorf("%w: scaled: %v", ErrArtifact, err)
		}
		b, err := c.DecodeBinary(s.Model)
		if err != nil {
			return nil, err
		}
		return &Scaled{Model: b, Lo: s.Lo, Hi: s.Hi}, nil
	}
	return nil, fmt.Errorf("%w: unknown regression kind %q", ErrArtifact, p.Kind)
}

func encodeAll[T any](xs []T, enc func(T) (Part, error)) ([]Part, error) {
	if xs == nil {
		return nil, nil
	}
	out := make([]Part, len(xs))
	for i, x := range xs {
		p, err := enc(x)
		if err != nil {
			return nil, err
		}
		out[i] = p
	}
	return out, nil
}

func decodeAll[T any](ps []Part, dec func(Part) (T, error)) ([]T, error) {
	if ps == nil {
		return nil, nil
	}
	out := make([]T, len(ps))
	for i, p := range ps {
		x, err := dec(p)
		if err != nil {
			return nil, err
		}
		out[i] = x
	}
	return out, nil
}

// Write writes m as a JSON artifact; codec nil means DefaultCodec.
func Write(w io.Writer, m Model, codec BinaryCodec) error {
	if codec == nil {
		codec = DefaultCodec
	}
	a := artifact{Format: Format, Kind: m.Kind(), Arms: m.Arms(), Features: m.Features()}
	encB := codec.EncodeBinary
	encR := func(r Regression) (Part, error) { return encodeRegression(r, codec) }
	var err error
	switch t := m.(type) {
	case *TModel:
		a.Outcome, err = encodeAll(t.Outcome, encB)
	case *XModel:
		var c Part
		if c, err = encB(t.Control); err == nil {
			a.Control = &c
			if a.Tau0, err = encodeAll(t.Tau0, encR); err == nil {
				if a.Tau1, err = encodeAll(t.Tau1, encR); err == nil {
					a.G, err = encodeAll(t.G, encB)
					a.GConst = t.GConst
				}
			}
		}
	case *TOModel:
		a.BaselineRate = t.BaselineRate
		if t.Control != nil {
			var c Part
			if c, err = encB(t.Control); err == nil {
				a.Control = &c
			}
		}
		if err == nil {
			a.Tau, err = encodeAll(t.Tau, encR)
		}
	default:
		err = fmt.Errorf("%w: cannot write %T", ErrArtifact, m)
	}
	if err != nil {
		return fmt.Errorf("uplift: write: %w", err)
	}
	enc := json.NewEncoder(w)
	if err := enc.Encode(a); err != nil {
		return fmt.Errorf("uplift: write: %w", err)
	}
	return nil
}

// Read reads a JSON artifact written by Write; codec nil means DefaultCodec.
func Read(r io.Reader, codec BinaryCodec) (Model, error) {
	if codec == nil {
		codec = DefaultCodec
	}
	var a artifact
	if err := json.NewDecoder(r).Decode(&a); err != nil {
		return nil, fmt.Errorf("uplift: read: %w: %v", ErrArtifact, err)
	}
	if a.Format != Format {
		return nil, fmt.Errorf("uplift: read: %w: format %q", ErrArtifact, a.Format)
	}
	na := len(a.Arms) - 1
	if na < 1 {
		return nil, fmt.Errorf("uplift: read: %w: %d arms", ErrArtifact, len(a.Arms))
	}
	b := base{features: a.Features, arms: a.Arms}
	decR := func(p Part) (Regression, error) { return decodeRegression(p, codec) }
	wrap := func(err error) error { return fmt.Errorf("uplift: read %s: %w", a.Kind, err) }
	checkBin := func(ms []model.Binary, want int) error {
		if len(ms) != want {
			return fmt.Errorf("%w: %d binary parts, want %d", ErrArtifact, len(ms), want)
		}
		for _, m := range ms {
			if m.NumFeatures() != len(a.Features) {
				return fmt.Errorf("%w: part has %d features, artifact %d", ErrArtifact, m.NumFeatures(), len(a.Features))
			}
		}
		return nil
	}
	checkReg := func(rs []Regression) error {
		if len(rs) != na {
			return fmt.Errorf("%w: %d regressions for %d arms", ErrArtifact, len(rs), na)
		}
		for _, r := range rs {
			if r.NumFeatures() != len(a.Features) {
				return fmt.Errorf("%w: regression has %d features, artifact %d", ErrArtifact, r.NumFeatures(), len(a.Features))
			}
		}
		return nil
	}
	switch a.Kind {
	case KindT:
		out, err := decodeAll(a.Outcome, codec.DecodeBinary)
		if err == nil {
			err = checkBin(out, na+1)
		}
		if err != nil {
			return nil, wrap(err)
		}
		return &TModel{base: b, Outcome: out}, nil
	case KindX:
		if a.Control == nil {
			return nil, wrap(fmt.Errorf("%w: no control model", ErrArtifact))
		}
		m := &XModel{base: b, GConst: a.GConst}
		var err error
		if m.Control, err = codec.DecodeBinary(*a.Control); err != nil {
			return nil, wrap(err)
		}
		if m.Tau0, err = decodeAll(a.Tau0, decR); err == nil {
			if m.Tau1, err = decodeAll(a.Tau1, decR); err == nil {
				m.G, err = decodeAll(a.G, codec.DecodeBinary)
			}
		}
		if err == nil {
			err = checkBin([]model.Binary{m.Control}, 1)
		}
		if err == nil {
			err = checkReg(m.Tau0)
		}
		if err == nil {
			err = checkReg(m.Tau1)
		}
		if err == nil && m.G != nil {
			err = checkBin(m.G, na)
		}
		if err == nil && m.G == nil && len(m.GConst) != na {
			err = fmt.Errorf("%w: %d propensity constants for %d arms", ErrArtifact, len(m.GConst), na)
		}
		if err != nil {
			return nil, wrap(err)
		}
		return m, nil
	case KindTO:
		m := &TOModel{base: b, BaselineRate: a.BaselineRate}
		var err error
		if a.Control != nil {
			if m.Control, err = codec.DecodeBinary(*a.Control); err == nil {
				err = checkBin([]model.Binary{m.Control}, 1)
			}
		}
		if err == nil {
			if m.Tau, err = decodeAll(a.Tau, decR); err == nil {
				err = checkReg(m.Tau)
			}
		}
		if err != nil {
			return nil, wrap(err)
		}
		return m, nil
	}
	return nil, fmt.Errorf("uplift: read: %w: unknown kind %q", ErrArtifact, a.Kind)
}

// WriteFile writes m to path.
func WriteFile(path string, m Model, codec BinaryCodec) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("uplift: write file: %w", err)
	}
	if err := Write(f, m, codec); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("uplift: write file: %w", err)
	}
	return nil
}

// ReadFile reads a model from path.
func ReadFile(path string, codec BinaryCodec) (Model, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("uplift: read file: %w", err)
	}
	defer f.Close()
	return Read(f, codec)
}
