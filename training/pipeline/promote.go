package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/nudgehq/nudge/data/config"
	"github.com/nudgehq/nudge/data/store"
	"github.com/nudgehq/nudge/features"
	"github.com/nudgehq/nudge/model"
	"github.com/nudgehq/nudge/training/uplift"
)

// PromoteReport says what a promotion did.
type PromoteReport struct {
	Record   *store.ModelRecord // the promoted record, without its artifact
	Previous int                // version in force before (0 = none)
	// OPE is the off-policy comparison of the candidate's greedy policy against the current
	// uplift model's (or the logging policy when none is promoted) on the most recent logged
	// decisions; nil when it could not be computed (OPENote says why).
	OPE        *uplift.Comparison
	OPERows    int
	OPEAgainst string // "version N" or "logging policy"
	OPENote    string
	// OPEInSample: too few decisions came after the candidate's training data, so the estimate
	// uses decisions it was trained on and is optimistic (the text says so and quotes the
	// out-of-sample holdout estimate Train stored in the model's metrics).
	OPEInSample bool
	Text        string
	PromotedAt  int64
	Fingerprint string
}

// PromoteOption configures Promote.
type PromoteOption func(*promoteConfig)

type promoteConfig struct {
	site      *config.Site
	recent    time.Duration
	window    time.Duration
	bootstrap int
	seed      uint64
}

// WithSite gives Promote the site's configuration (macro value, intervention costs,
// threshold), which the off-policy estimate of an uplift promotion needs; without it the
// estimate is skipped.
func WithSite(site *config.Site) PromoteOption { return func(c *promoteConfig) { c.site = site } }

// WithRecent sets how far back the logged decisions of the off-policy estimate go, counted
// from the latest logged decision (default 14 days), and the label window (default 24h).
func WithRecent(recent, window time.Duration) PromoteOption {
	return func(c *promoteConfig) { c.recent, c.window = recent, window }
}

// Promote makes version the site's promoted model of its kind. It refuses a model whose
// schema fingerprint is not live's (errors.Is ErrSchemaMismatch). For an uplift model the
// report includes the off-policy estimate (IPS, SNIPS) of its greedy policy against the
// current one on the most recent logged decisions (needs WithSite).
func Promote(ctx context.Context, st *store.Store, site string, version int, live *features.Schema, now time.Time, opts ...PromoteOption) (*PromoteReport, error) {
	cfg := promoteConfig{recent: 14 * 24 * time.Hour, window: DefaultWindow, bootstrap: DefaultBootstrap}
	for _, o := range opts {
		o(&cfg)
	}
	rec, err := st.Model(ctx, site, version)
	if err != nil {
		return nil, fmt.Errorf("pipeline: promote: %w", err)
	}
	if live == nil || rec.Fingerprint != live.Fingerprint {
		lf := "(none)"
		if live != nil {
			lf = live.Fingerprint
		}
		return nil, fmt.Errorf("%w: model %d was trained on schema %s, the live schema is %s", ErrSchemaMismatch, version, rec.Fingerprint, lf)
	}
	rep := &PromoteReport{PromotedAt: now.UnixMilli(), Fingerprint: rec.Fingerprint}
	cur, err := st.Promoted(ctx, site, rec.Kind)
	switch {
	case err == nil:
		rep.Previous = cur.Version
	case errors.Is(err, store.ErrNotFound):
		cur = nil
	default:
		return nil, fmt.Errorf("pipeline: promote: %w", err)
	}
	var text strings.Builder
	if rec.Kind == KindUplift {
		if err := promotionOPE(ctx, st, rec, cur, live, now, cfg, rep); err != nil {
			return nil, err
		}
	}
	if err := st.Promote(ctx, site, rec.Kind, version, now.UnixMilli()); err != nil {
		return nil, fmt.Errorf("pipeline: promote: %w", err)
	}
	rec.Artifact = nil
	rep.Record = rec
	fmt.Fprintf(&text, "promoted %s model version %d (%s) of site %s", rec.Kind, rec.Version, rec.Learner, site)
	if rep.Previous > 0 {
		fmt.Fprintf(&text, ", replacing version %d", rep.Previous)
	}
	fmt.Fprintln(&text)
	if rec.Kind == KindPropensity && cur != nil {
		fmt.Fprintf(&text, "holdout AUC %.4f (version %d: %.4f), log loss %.4f (%.4f)\n", rec.Metrics["auc"], cur.Version,
			cur.Metrics["auc"], rec.Metrics["log_loss"], cur.Metrics["log_loss"])
	}
	if o := rep.OPE; o != nil {
		fmt.Fprintf(&text, "off-policy value per decision on the %d most recent logged decisions: candidate SNIPS %.3f [%.3f, %.3f] (IPS %.3f), %s SNIPS %.3f, difference %+.3f [%+.3f, %+.3f]\n",
			rep.OPERows, o.Candidate.SNIPS.Value, o.Candidate.SNIPS.Lo, o.Candidate.SNIPS.Hi, o.Candidate.IPS.Value,
			rep.OPEAgainst, o.Current.SNIPS.Value, o.DiffSNIPS.Value, o.DiffSNIPS.Lo, o.DiffSNIPS.Hi)
		if rep.OPEInSample {
			fmt.Fprintf(&text, "warning: these decisions were used to train the model, so the estimate is optimistic; its time-ordered holdout estimate vs the logging policy was %+.3f [%+.3f, %+.3f] per decision\n",
				rec.Metrics["ope_diff_snips"], rec.Metrics["ope_diff_snips_lo"], rec.Metrics["ope_diff_snips_hi"])
		} else {
			fmt.Fprintln(&text, "(decisions logged after the model's training data: out of sample)")
		}
	} else if rep.OPENote != "" {
		fmt.Fprintf(&text, "no off-policy estimate: %s\n", rep.OPENote)
	}
	rep.Text = text.String()
	return rep, nil
}

// promotionOPE fills rep.OPE: the candidate's greedy policy against the current model's (or
// the logging policy) on the recent logged decisions.
func promotionOPE(ctx context.Context, st *store.Store, rec, cur *store.ModelRecord, live *features.Schema, now time.Time, cfg promoteConfig, rep *PromoteReport) error {
	if cfg.site == nil {
		rep.OPENote = "site configuration not given"
		return nil
	}
	cand, err := uplift.Read(bytes.NewReader(rec.Artifact), uplift.DefaultCodec)
	if err != nil {
		return fmt.Errorf("pipeline: promote: read candidate: %w", err)
	}
	arms := armsOf(cfg.site)
	if !equalStrings(cand.Arms(), arms) {
		rep.OPENote = fmt.Sprintf("the model's arms %v are not the site's %v", cand.Arms(), arms)
		return nil
	}
	var current uplift.Model
	rep.OPEAgainst = "logging policy"
	if cur != nil {
		if cur.Fingerprint == live.Fingerprint {
			m, err := uplift.Read(bytes.NewReader(cur.Artifact), uplift.DefaultCodec)
			if err != nil {
				return fmt.Errorf("pipeline: promote: read current: %w", err)
			}
			if equalStrings(m.Arms(), arms) {
				current = m
				rep.OPEAgainst = fmt.Sprintf("version %d", cur.Version)
			}
		}
	}
	// The most recent decisions: those of the last cfg.recent before the latest logged one.
	var last int64
	if err := st.Decisions(ctx, cfg.site.ID, 0, 0, func(d *store.DecisionRecord) error { last = max(last, d.TS); return nil }); err != nil {
		return fmt.Errorf("pipeline: promote: %w", err)
	}
	from := last - cfg.recent.Milliseconds()
	ex, err := buildExamples(ctx, st, cfg.site, live, scanRange{from: from, window: cfg.window.Milliseconds(), uplift: true}, nil)
	if err != nil {
		return err
	}
	ds, eligible := ex.upl, ex.eligible
	// Prefer decisions the candidate was not trained on (after its training range): an
	// estimate on its own training rows is optimistic.
	var after []int
	for i, ts := range ds.TS {
		if ts > rec.TrainTo {
			after = append(after, i)
		}
	}
	if len(after) >= MinUpliftRows/2 {
		ds = ds.Subset(after)
		el := make([][]bool, len(after))
		for j, i := range after {
			el[j] = eligible[i]
		}
		eligible = el
	} else {
		rep.OPEInSample = true
	}
	if ds.N() < MinUpliftRows/2 {
		rep.OPENote = fmt.Sprintf("only %d recent logged decisions with a known outcome", ds.N())
		return nil
	}
	vp := siteValue(cfg.site)
	rows := vp.logged(ds)
	pred, err := uplift.Predictions(cand, ds)
	if err != nil {
		return fmt.Errorf("pipeline: promote: %w", err)
	}
	candArms := vp.greedy(pred, eligible)
	var curPolicy uplift.Policy
	if current != nil {
		cp, err := uplift.Predictions(current, ds)
		if err != nil {
			return fmt.Errorf("pipeline: promote: %w", err)
		}
		curArms := vp.greedy(cp, eligible)
		curPolicy = uplift.Deterministic(func(i int) int { return curArms[i] })
	}
	cmp, err := uplift.Compare(rows, len(arms), uplift.Deterministic(func(i int) int { return candArms[i] }), curPolicy,
		uplift.OPEOptions{Bootstrap: cfg.bootstrap, Seed: cfg.seed})
	if err != nil {
		return fmt.Errorf("pipeline: promote: off-policy estimate: %w", err)
	}
	rep.OPE, rep.OPERows = cmp, ds.N()
	return nil
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Rollback restores the promotion of kind before the one in force and returns the restored
// record (without its artifact). store.ErrNotFound when there is none to go back to.
func Rollback(ctx context.Context, st *store.Store, site, kind string, now time.Time) (*store.ModelRecord, error) {
	v, err := st.RollbackModel(ctx, site, kind, now.UnixMilli())
	if err != nil {
		return nil, fmt.Errorf("pipeline: rollback: %w", err)
	}
	rec, err := st.Model(ctx, site, v)
	if err != nil {
		return nil, fmt.Errorf("pipeline: rollback: %w", err)
	}
	rec.Artifact = nil
	return rec, nil
}

// Bundle is a site's promoted models, decoded. Missing kinds are nil.
type Bundle struct {
	Propensity        model.Binary
	PropensityVersion int
	Uplift            uplift.Model
	UpliftVersion     int
	// Fingerprints of the schemas the models were trained on, and the uplift arms
	// ("control", then intervention ids).
	PropensityFingerprint, UpliftFingerprint string
	Arms                                     []string
}

// LoadPromoted decodes the site's promoted models; a kind with no promotion is nil, not an
// error.
func LoadPromoted(ctx context.Context, st *store.Store, site string) (*Bundle, error) {
	b := &Bundle{}
	rec, err := st.Promoted(ctx, site, KindPropensity)
	switch {
	case err == nil:
		m, err := model.Read(bytes.NewReader(rec.Artifact))
		if err != nil {
			return nil, fmt.Errorf("pipeline: load propensity model %d: %w", rec.Version, err)
		}
		b.Propensity, b.PropensityVersion, b.PropensityFingerprint = m, rec.Version, rec.Fingerprint
	case !errors.Is(err, store.ErrNotFound):
		return nil, fmt.Errorf("pipeline: load promoted: %w", err)
	}
	rec, err = st.Promoted(ctx, site, KindUplift)
	switch {
	case err == nil:
		m, err := uplift.Read(bytes.NewReader(rec.Artifact), uplift.DefaultCodec)
		if err != nil {
			return nil, fmt.Errorf("pipeline: load uplift model %d: %w", rec.Version, err)
		}
		b.Uplift, b.UpliftVersion, b.UpliftFingerprint, b.Arms = m, rec.Version, rec.Fingerprint, m.Arms()
	case !errors.Is(err, store.ErrNotFound):
		return nil, fmt.Errorf("pipeline: load promoted: %w", err)
	}
	return b, nil
}

// ExportFormat tags an exported registry record.
const ExportFormat = "nudge-model-record/1"

type exported struct {
	Format      string             `json:"format"`
	Site        string             `json:"site"`
	Version     int                `json:"version"`
	Kind        string             `json:"kind"`
	Learner     string             `json:"learner"`
	Params      map[string]string  `json:"params,omitempty"`
	Fingerprint string             `json:"fingerprint"`
	Features    []string           `json:"features"`
	Arms        []string           `json:"arms,omitempty"`
	TrainFrom   int64              `json:"train_from"`
	TrainTo     int64              `json:"train_to"`
	Rows        int                `json:"rows"`
	Metrics     map[string]float64 `json:"metrics,omitempty"`
	CreatedAt   int64              `json:"created_at"`
	Note        string             `json:"note,omitempty"`
	Artifact    json.RawMessage    `json:"artifact"`
}

// Export writes a registry record (with its artifact) as one JSON document. Non-finite
// metrics (NaN, e.g. an uplift at 10% with an empty group) are left out: JSON has no NaN.
func Export(w io.Writer, rec *store.ModelRecord) error {
	if !json.Valid(rec.Artifact) {
		return fmt.Errorf("pipeline: export model %d: artifact is not JSON", rec.Version)
	}
	e := exported{Format: ExportFormat, Site: rec.Site, Version: rec.Version, Kind: rec.Kind, Learner: rec.Learner,
		Params: rec.Params, Fingerprint: rec.Fingerprint, Features: rec.Features, Arms: rec.Arms,
		TrainFrom: rec.TrainFrom, TrainTo: rec.TrainTo, Rows: rec.Rows, CreatedAt: rec.CreatedAt, Note: rec.Note,
		Artifact: rec.Artifact}
	if len(rec.Metrics) > 0 {
		e.Metrics = make(map[string]float64, len(rec.Metrics))
		for k, v := range rec.Metrics {
			if !math.IsNaN(v) && !math.IsInf(v, 0) {
				e.Metrics[k] = v
			}
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	if err := enc.Encode(e); err != nil {
		return fmt.Errorf("pipeline: export: %w", err)
	}
	return nil
}

// Import reads a record written by Export and checks that its artifact decodes. The record's
// Version is the exporter's; PutModel assigns a new one.
func Import(r io.Reader) (*store.ModelRecord, error) {
	var e exported
	dec := json.NewDecoder(r)
	if err := dec.Decode(&e); err != nil {
		return nil, fmt.Errorf("pipeline: import: %w", err)
	}
	if e.Format != ExportFormat {
		return nil, fmt.Errorf("pipeline: import: format %q, want %q", e.Format, ExportFormat)
	}
	switch e.Kind {
	case KindPropensity:
		m, err := model.Read(bytes.NewReader(e.Artifact))
		if err != nil {
			return nil, fmt.Errorf("pipeline: import: %w", err)
		}
		if m.NumFeatures() != len(e.Features) {
			return nil, fmt.Errorf("pipeline: import: artifact has %d features, record %d", m.NumFeatures(), len(e.Features))
		}
	case KindUplift:
		m, err := uplift.Read(bytes.NewReader(e.Artifact), uplift.DefaultCodec)
		if err != nil {
			return nil, fmt.Errorf("pipeline: import: %w", err)
		}
		if m.NumFeatures() != len(e.Features) || !equalStrings(m.Arms(), e.Arms) {
			return nil, fmt.Errorf("pipeline: import: artifact features/arms do not match the record")
		}
	default:
		return nil, fmt.Errorf("pipeline: import: unknown kind %q", e.Kind)
	}
	return &store.ModelRecord{Site: e.Site, Version: e.Version, Kind: e.Kind, Learner: e.Learner, Params: e.Params,
		Fingerprint: e.Fingerprint, Features: e.Features, Arms: e.Arms, TrainFrom: e.TrainFrom, TrainTo: e.TrainTo,
		Rows: e.Rows, Metrics: e.Metrics, CreatedAt: e.CreatedAt, Note: e.Note, Artifact: []byte(e.Artifact)}, nil
}
