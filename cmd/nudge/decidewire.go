package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"time"

	"github.com/nudgehq/nudge/data/config"
	"github.com/nudgehq/nudge/data/store"
	"github.com/nudgehq/nudge/features"
	"github.com/nudgehq/nudge/serve"
	"github.com/nudgehq/nudge/training/pipeline"
	"github.com/nudgehq/nudge/training/uplift"
)

// Compile-time checks that the decide-path adapters satisfy what serve/ declares.
var (
	_ serve.DecisionStore = decisionAdapter{}
	_ serve.ModelLoader   = modelLoader{}
	_ serve.ModelRegistry = (*registryAdapter)(nil)
)

// decisionAdapter presents *store.Store as a serve.DecisionStore. serve.DecisionRecord has
// the fields of store.DecisionRecord in the same order, so records convert without a copy.
type decisionAdapter struct{ s *store.Store }

func (a decisionAdapter) LiveSession(ctx context.Context, site, session string, asOf int64, out []float64) (serve.SessionInfo, *features.Schema, error) {
	info, sc, err := a.s.LiveSession(ctx, site, session, asOf, out)
	return serve.SessionInfo{
		ID: info.Session, ClientID: info.ClientSessionID, AnonymousID: info.AnonymousID,
		UserID: info.UserID, StartTS: info.StartTS, LastTS: info.LastTS, Events: info.Events,
	}, sc, storeErr(err)
}

func (a decisionAdapter) LogDecision(ctx context.Context, rec *serve.DecisionRecord) error {
	return storeErr(a.s.LogDecision(ctx, (*store.DecisionRecord)(rec)))
}

func (a decisionAdapter) Decision(ctx context.Context, site, id string) (*serve.DecisionRecord, bool, error) {
	rec, exposed, err := a.s.Decision(ctx, site, id)
	return (*serve.DecisionRecord)(rec), exposed, storeErr(err)
}

// modelLoader loads a site's promoted models with pipeline.LoadPromoted.
type modelLoader struct{ s *store.Store }

func (l modelLoader) LoadPromoted(ctx context.Context, site string) (serve.Models, error) {
	b, err := pipeline.LoadPromoted(ctx, l.s, site)
	if err != nil {
		return serve.Models{}, storeErr(err)
	}
	var m serve.Models
	if b.Propensity != nil {
		m.Propensity, m.PropensityVersion = b.Propensity, b.PropensityVersion
	}
	if b.Uplift != nil {
		m.Uplift, m.UpliftVersion = b.Uplift, b.UpliftVersion
	}
	return m, nil
}

// registryAdapter presents the store's model registry and the training pipeline as a
// serve.ModelRegistry.
type registryAdapter struct {
	s       *store.Store
	cfg     *config.Config
	schemas func(site string) (*features.Schema, error)
	now     func() time.Time
	// progress, when set, receives the training stages (the demo prints them).
	progress func(stage string, done, total int)
}

func newRegistryAdapter(st *store.Store, cfg *config.Config) (*registryAdapter, error) {
	sch, err := schemas(cfg)
	if err != nil {
		return nil, err
	}
	return &registryAdapter{s: st, cfg: cfg, schemas: sch, now: time.Now}, nil
}

func modelInfo(rec *store.ModelRecord, promoted map[string]int) *serve.ModelInfo {
	if rec == nil {
		return nil
	}
	m := &serve.ModelInfo{
		Site: rec.Site, Version: rec.Version, Kind: rec.Kind, Learner: rec.Learner, Params: rec.Params,
		Fingerprint: rec.Fingerprint, Features: rec.Features, Arms: rec.Arms, TrainFrom: rec.TrainFrom,
		TrainTo: rec.TrainTo, Rows: rec.Rows, Metrics: map[string]float64{}, CreatedAt: rec.CreatedAt,
		Note: rec.Note, Promoted: promoted != nil && promoted[rec.Kind] == rec.Version,
	}
	for k, v := range rec.Metrics {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			m.Metrics[k] = v
		}
	}
	return m
}

func (r *registryAdapter) site(id string) (*config.Site, *features.Schema, error) {
	site, ok := r.cfg.Site(id)
	if !ok {
		return nil, nil, serve.Mark(serve.ErrNotFound, fmt.Errorf("no site %q", id))
	}
	sc, err := r.schemas(id)
	if err != nil {
		return nil, nil, err
	}
	return site, sc, nil
}

func (r *registryAdapter) Promoted(ctx context.Context, site string) (map[string]int, error) {
	out := map[string]int{}
	for _, kind := range []string{pipeline.KindPropensity, pipeline.KindUplift} {
		rec, err := r.s.Promoted(ctx, site, kind)
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return nil, storeErr(err)
		default:
			out[kind] = rec.Version
		}
	}
	return out, nil
}

func (r *registryAdapter) Models(ctx context.Context, site string) ([]serve.ModelInfo, error) {
	recs, err := r.s.Models(ctx, site)
	if err != nil {
		return nil, storeErr(err)
	}
	prom, err := r.Promoted(ctx, site)
	if err != nil {
		return nil, err
	}
	out := make([]serve.ModelInfo, len(recs))
	for i := range recs {
		out[i] = *modelInfo(&recs[i], prom)
	}
	return out, nil
}

func (r *registryAdapter) Model(ctx context.Context, site string, version int) (*serve.ModelInfo, error) {
	rec, err := r.s.Model(ctx, site, version)
	if err != nil {
		return nil, storeErr(err)
	}
	prom, err := r.Promoted(ctx, site)
	if err != nil {
		return nil, err
	}
	return modelInfo(rec, prom), nil
}

func (r *registryAdapter) Promote(ctx context.Context, siteID string, version int) (*serve.PromoteResult, error) {
	site, sc, err := r.site(siteID)
	if err != nil {
		return nil, err
	}
	rep, err := pipeline.Promote(ctx, r.s, siteID, version, sc, r.now(), pipeline.WithSite(site))
	if errors.Is(err, pipeline.ErrSchemaMismatch) {
		return nil, serve.Mark(serve.ErrConflict, err)
	}
	if err != nil {
		return nil, storeErr(err)
	}
	prom, err := r.Promoted(ctx, siteID)
	if err != nil {
		return nil, err
	}
	res := &serve.PromoteResult{Model: modelInfo(rep.Record, prom), Previous: rep.Previous, Report: rep.Text}
	if rep.OPE != nil {
		res.OPE = finiteJSON(rep.OPE)
	}
	return res, nil
}

func (r *registryAdapter) Rollback(ctx context.Context, site, kind string) (*serve.PromoteResult, error) {
	before, err := r.Promoted(ctx, site)
	if err != nil {
		return nil, err
	}
	rec, err := pipeline.Rollback(ctx, r.s, site, kind, r.now())
	if err != nil {
		return nil, storeErr(err)
	}
	prom, err := r.Promoted(ctx, site)
	if err != nil {
		return nil, err
	}
	return &serve.PromoteResult{Model: modelInfo(rec, prom), Previous: before[kind],
		Report: fmt.Sprintf("rolled %s back from version %d to version %d", kind, before[kind], rec.Version)}, nil
}

func (r *registryAdapter) Export(ctx context.Context, site string, version int, w io.Writer) error {
	rec, err := r.s.Model(ctx, site, version)
	if err != nil {
		return storeErr(err)
	}
	return pipeline.Export(w, rec)
}

func (r *registryAdapter) Import(ctx context.Context, site string, rd io.Reader) (*serve.ModelInfo, error) {
	rec, err := pipeline.Import(rd)
	if err != nil {
		return nil, serve.Mark(serve.ErrMalformed, err)
	}
	if rec.Site != "" && rec.Site != site {
		rec.Note = fmt.Sprintf("imported from site %q; %s", rec.Site, rec.Note)
	}
	rec.Site = site
	rec.Version, rec.CreatedAt = 0, 0
	if err := r.s.PutModel(ctx, rec); err != nil {
		return nil, storeErr(err)
	}
	return modelInfo(rec, nil), nil
}

func (r *registryAdapter) Train(ctx context.Context, siteID string, req serve.TrainRequest) (*serve.TrainResult, error) {
	site, sc, err := r.site(siteID)
	if err != nil {
		return nil, err
	}
	res, err := pipeline.Train(ctx, r.s, pipeline.Options{
		Site: site, Schema: sc, From: req.From, To: req.To, Window: req.WindowDuration,
		Learner: req.Learner, UpliftLearner: req.UpliftLearner, NoUplift: req.NoUplift,
		Seed: req.Seed, Note: req.Note, Progress: r.progress, Now: r.now,
	})
	switch {
	case errors.Is(err, pipeline.ErrNoData):
		return nil, serve.Mark(serve.ErrConflict, err)
	case errors.Is(err, pipeline.ErrOptions):
		return nil, serve.Mark(serve.ErrBadParam, err)
	case err != nil:
		return nil, storeErr(err)
	}
	return &serve.TrainResult{
		Propensity: modelInfo(res.Propensity, nil), Uplift: modelInfo(res.Uplift, nil),
		Sessions: res.Sessions, Decisions: res.Decisions, Report: res.Report,
	}, nil
}

// finiteJSON presents an off-policy comparison as JSON-safe maps (NaN and infinities, which
// JSON cannot carry, become null).
func finiteJSON(c *uplift.Comparison) map[string]any {
	num := func(v float64) any {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil
		}
		return v
	}
	est := func(e uplift.Estimate) map[string]any {
		return map[string]any{"value": num(e.Value), "lo": num(e.Lo), "hi": num(e.Hi)}
	}
	pv := func(p uplift.PolicyValue) map[string]any {
		return map[string]any{"n": p.N, "ips": est(p.IPS), "snips": est(p.SNIPS), "ess": num(p.ESS)}
	}
	return map[string]any{
		"candidate": pv(c.Candidate), "current": pv(c.Current),
		"diff_ips": est(c.DiffIPS), "diff_snips": est(c.DiffSNIPS),
	}
}

// withDecide wires the decide path into opts: the decision store, the live model holder
// loaded with every site's promoted models, and the admin model API. A model that cannot be
// loaded (e.g. it no longer fits the site's schema) is logged and the site serves without it.
func withDecide(ctx context.Context, opts *serve.Options, st *store.Store, cfg *config.Config, log *slog.Logger) (*registryAdapter, error) {
	reg, err := newRegistryAdapter(st, cfg)
	if err != nil {
		return nil, err
	}
	live, err := serve.NewLive(cfg, modelLoader{st})
	if err != nil {
		return nil, err
	}
	for i := range cfg.Sites {
		id := cfg.Sites[i].ID
		m, err := live.Reload(ctx, id)
		if err != nil {
			log.Warn("promoted models not loaded: deciding without them", "site", id, "err", err)
			continue
		}
		log.Info("live models", "site", id, "propensity", m.PropensityVersion, "uplift", m.UpliftVersion)
	}
	opts.Decisions, opts.Live, opts.Models = decisionAdapter{st}, live, reg
	return reg, nil
}
