package serve

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/nudgehq/nudge/data/config"
	"github.com/nudgehq/nudge/features"
	"github.com/nudgehq/nudge/model/policy"
)

// PropensityModel is what the decide path needs of a conversion-propensity model
// (model.Binary satisfies it): immutable, safe for concurrent use, Score does not allocate.
type PropensityModel interface {
	NumFeatures() int
	Score(x []float64) (float64, error)
}

// UpliftModel is what the decide path needs of a multi-arm uplift model (uplift.Model
// satisfies it): Arms()[0] is the control; Predict writes the uplift of arm k >= 1 into
// out[k-1]. Immutable, safe for concurrent use, Predict does not allocate.
type UpliftModel interface {
	NumFeatures() int
	Arms() []string
	Predict(x, out []float64) error
}

// Models are a site's promoted models; a nil model means none is promoted for its kind.
type Models struct {
	Propensity        PropensityModel
	PropensityVersion int
	Uplift            UpliftModel
	UpliftVersion     int
}

// ModelLoader loads a site's promoted models from the registry (missing kinds are nil, not
// errors).
type ModelLoader interface {
	LoadPromoted(ctx context.Context, site string) (Models, error)
}

// Live holds, per site, the immutable bundle the decide path uses: the feature schema, the
// policy and the promoted models. Readers load it with one atomic pointer read; Set, Reload
// and SetPolicy build a new bundle and swap it in, so a model promotion never blocks or drops
// a request (a request in flight finishes with the bundle it started with).
type Live struct {
	sites  map[string]*liveSite
	loader ModelLoader
}

type liveSite struct {
	mu  sync.Mutex // serialises swaps
	cur atomic.Pointer[bundle]
}

// bundle is one immutable generation of a site's decide state.
type bundle struct {
	site    *config.Site
	schema  *features.Schema
	policy  *policy.Policy
	models  Models
	ivIDs   []string // catalogue ids, in catalogue order
	ivs     []*config.Intervention
	armOut  []int  // per catalogue intervention: index into the uplift model's Predict output, -1 when it has no such arm
	nOut    int    // len(uplift Arms) - 1
	noModel string // reason suffix when a model kind is missing
}

// NewLive builds the holder for every site of cfg with each site's configured policy and no
// models; call Load (or Set) to add the promoted ones. loader may be nil (no registry).
func NewLive(cfg *config.Config, loader ModelLoader) (*Live, error) {
	l := &Live{sites: make(map[string]*liveSite, len(cfg.Sites)), loader: loader}
	for i := range cfg.Sites {
		site := &cfg.Sites[i]
		sc, err := features.NewSchema(site.FeatureSpec())
		if err != nil {
			return nil, fmt.Errorf("serve: schema of site %q: %w", site.ID, err)
		}
		pol, err := newPolicy(sc, site, site.Policy)
		if err != nil {
			return nil, err
		}
		b, err := newBundle(site, sc, pol, Models{})
		if err != nil {
			return nil, err
		}
		ls := &liveSite{}
		ls.cur.Store(b)
		l.sites[site.ID] = ls
	}
	return l, nil
}

// PolicyParams converts a site's configuration into the policy's settings, with p as its
// policy section.
func PolicyParams(site *config.Site, p config.Policy) (policy.Params, []policy.Intervention) {
	params := policy.Params{
		Value: site.Macro.Value, HoldoutShare: p.HoldoutShare, ExplorationShare: p.ExplorationShare,
		Threshold: p.Threshold, MaxShare: p.Budget.MaxShare, MaxSpendPerDay: p.Budget.MaxSpendPerDay,
		Seed: p.Seed, Location: site.Location(),
	}
	ivs := make([]policy.Intervention, len(site.Interventions))
	for i, iv := range site.Interventions {
		ivs[i] = policy.Intervention{
			ID: iv.ID, Kind: iv.Kind, Cost: iv.Cost,
			Phases: iv.Eligibility.Phases, Devices: iv.Eligibility.Devices,
			MinPageViews: iv.Eligibility.MinPageViews, PathPrefixes: iv.Eligibility.PathPrefixes,
			PerSession: iv.Caps.PerSession, PerVisitorPerDay: iv.Caps.PerVisitorPerDay,
		}
	}
	return params, ivs
}

func newPolicy(sc *features.Schema, site *config.Site, p config.Policy) (*policy.Policy, error) {
	params, ivs := PolicyParams(site, p)
	pol, err := policy.New(sc, params, ivs)
	if err != nil {
		return nil, fmt.Errorf("serve: policy of site %q: %w", site.ID, err)
	}
	return pol, nil
}

// ErrModelMismatch: a model does not fit the site's live feature schema.
var ErrModelMismatch = errors.New("serve: model does not fit the live feature schema")

func newBundle(site *config.Site, sc *features.Schema, pol *policy.Policy, m Models) (*bundle, error) {
	b := &bundle{site: site, schema: sc, policy: pol, models: m}
	for i := range site.Interventions {
		b.ivIDs = append(b.ivIDs, site.Interventions[i].ID)
		b.ivs = append(b.ivs, &site.Interventions[i])
	}
	if m.Propensity != nil && m.Propensity.NumFeatures() != sc.Len() {
		return nil, fmt.Errorf("%w: propensity model v%d has %d features, site %q has %d",
			ErrModelMismatch, m.PropensityVersion, m.Propensity.NumFeatures(), site.ID, sc.Len())
	}
	if m.Uplift != nil {
		if m.Uplift.NumFeatures() != sc.Len() {
			return nil, fmt.Errorf("%w: uplift model v%d has %d features, site %q has %d",
				ErrModelMismatch, m.UpliftVersion, m.Uplift.NumFeatures(), site.ID, sc.Len())
		}
		arms := m.Uplift.Arms()
		b.nOut = len(arms) - 1
		b.armOut = make([]int, len(b.ivIDs))
		matched := 0
		for i, id := range b.ivIDs {
			b.armOut[i] = -1
			if k := slices.Index(arms, id); k >= 1 {
				b.armOut[i] = k - 1
				matched++
			}
		}
		if matched == 0 {
			return nil, fmt.Errorf("%w: uplift model v%d arms %v name none of site %q's interventions %v",
				ErrModelMismatch, m.UpliftVersion, arms, site.ID, b.ivIDs)
		}
	}
	switch {
	case m.Propensity == nil && m.Uplift == nil:
		b.noModel = " (no promoted model: exploration and holdout only)"
	case m.Uplift == nil:
		b.noModel = " (no promoted uplift model: exploration and holdout only)"
	case m.Propensity == nil:
		b.noModel = " (no promoted propensity model)"
	}
	return b, nil
}

func (l *Live) site(id string) (*liveSite, error) {
	ls, ok := l.sites[id]
	if !ok {
		return nil, newError(ErrNotFound, nil, "no site %q", id)
	}
	return ls, nil
}

// current returns the site's live bundle (nil for an unknown site).
func (l *Live) current(site string) *bundle {
	ls, ok := l.sites[site]
	if !ok {
		return nil
	}
	return ls.cur.Load()
}

// Set swaps in a site's models, keeping its policy (and so its caps and budget counters).
func (l *Live) Set(site string, m Models) error {
	ls, err := l.site(site)
	if err != nil {
		return err
	}
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return ls.setLocked(m)
}

func (ls *liveSite) setLocked(m Models) error {
	old := ls.cur.Load()
	b, err := newBundle(old.site, old.schema, old.policy, m)
	if err != nil {
		return err
	}
	ls.cur.Store(b)
	return nil
}

// SetPolicy swaps in a new policy section for a site (the demo explores with one, then
// restores the configured one). Caps and budget counters restart.
func (l *Live) SetPolicy(site string, p config.Policy) error {
	ls, err := l.site(site)
	if err != nil {
		return err
	}
	ls.mu.Lock()
	defer ls.mu.Unlock()
	old := ls.cur.Load()
	pol, err := newPolicy(old.schema, old.site, p)
	if err != nil {
		return err
	}
	b, err := newBundle(old.site, old.schema, pol, old.models)
	if err != nil {
		return err
	}
	ls.cur.Store(b)
	return nil
}

// Reload loads a site's promoted models through the loader and swaps them in.
func (l *Live) Reload(ctx context.Context, site string) (Models, error) {
	if l.loader == nil {
		return Models{}, fmt.Errorf("serve: reload models of %q: no model loader", site)
	}
	ls, err := l.site(site)
	if err != nil {
		return Models{}, err
	}
	// Load and swap under the site's lock, so concurrent reloads apply in registry order.
	ls.mu.Lock()
	defer ls.mu.Unlock()
	m, err := l.loader.LoadPromoted(ctx, site)
	if err != nil {
		return Models{}, fmt.Errorf("serve: load promoted models of %q: %w", site, err)
	}
	if err := ls.setLocked(m); err != nil {
		return Models{}, err
	}
	return m, nil
}

// Load reloads every site's promoted models.
func (l *Live) Load(ctx context.Context) error {
	var errs []error
	for id := range l.sites {
		if _, err := l.Reload(ctx, id); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Versions returns the live model versions of a site (0 = none).
func (l *Live) Versions(site string) (propensity, uplift int) {
	b := l.current(site)
	if b == nil {
		return 0, 0
	}
	return b.models.PropensityVersion, b.models.UpliftVersion
}
