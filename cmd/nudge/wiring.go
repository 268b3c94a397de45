package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nudgehq/nudge/data/config"
	"github.com/nudgehq/nudge/data/store"
	"github.com/nudgehq/nudge/data/wire"
	"github.com/nudgehq/nudge/features"
	"github.com/nudgehq/nudge/serve"
	"github.com/nudgehq/nudge/training/report"
)

// Compile-time checks that the adapters satisfy what serve/ declares.
var (
	_ serve.EventStore = storeAdapter{}
	_ serve.Decoder    = wireDecoder(wire.Limits{})
	_ serve.Reporter   = reportAdapter{}
)

// loadConfig loads the file at path, or returns the demo site when path is empty.
func loadConfig(path string, log *slog.Logger) (*config.Config, error) {
	if path == "" {
		cfg := config.Demo()
		if log != nil {
			log.Warn("no --config given: using the built-in demo site; do not use its keys in production",
				"site", cfg.Sites[0].ID, "write_key", cfg.Sites[0].WriteKey, "admin_key", cfg.Sites[0].AdminKey)
		}
		return cfg, nil
	}
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	return cfg, nil
}

// schemas builds each site's feature schema once; the store calls the returned func on every
// write group, so it is a map lookup.
func schemas(cfg *config.Config) (func(site string) (*features.Schema, error), error) {
	m := make(map[string]*features.Schema, len(cfg.Sites))
	for i := range cfg.Sites {
		sc, err := features.NewSchema(cfg.Sites[i].FeatureSpec())
		if err != nil {
			return nil, fmt.Errorf("site %q: feature schema: %w", cfg.Sites[i].ID, err)
		}
		m[cfg.Sites[i].ID] = sc
	}
	return func(site string) (*features.Schema, error) {
		if sc, ok := m[site]; ok {
			return sc, nil
		}
		return nil, fmt.Errorf("unknown site %q: %w", site, store.ErrNotFound)
	}, nil
}

// storeOptions are the flags that shape the store.
type storeOptions struct {
	dir            string
	noSync         bool
	sessionTimeout time.Duration
	syncDelay      time.Duration // store.Options.SyncDelay (0: the store's default)
	// warmUp maps the stored session records' pages in the background after the open
	// (store.Options.NoWarmUp): worth it for a server's first reads, wasted on a command that
	// exits after its work.
	warmUp bool
}

// noDelayIfZero maps a --sync-delay flag to store.Options.SyncDelay, where zero means the
// default and a negative delay none.
func noDelayIfZero(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// openStore opens the Badger store for cfg's sites.
func openStore(ctx context.Context, cfg *config.Config, so storeOptions, log *slog.Logger) (*store.Store, error) {
	sch, err := schemas(cfg)
	if err != nil {
		return nil, err
	}
	timeout := so.sessionTimeout
	if timeout <= 0 {
		timeout = cfg.Timeout()
	}
	return store.Open(ctx, store.Options{
		Dir: so.dir, NoSync: so.noSync, SessionTimeout: timeout, Schema: sch, Logger: log,
		NoWarmUp: !so.warmUp, SyncDelay: so.syncDelay,
	})
}

// storeAdapter presents *store.Store as a serve.EventStore, translating its types and
// sentinel errors.
type storeAdapter struct{ s *store.Store }

func storeErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrNotFound):
		return serve.Mark(serve.ErrNotFound, err)
	case errors.Is(err, store.ErrOverloaded):
		return serve.Mark(serve.ErrOverloaded, err)
	case errors.Is(err, store.ErrClosed):
		return serve.Mark(serve.ErrUnavailable, err)
	}
	return err
}

func (a storeAdapter) Append(ctx context.Context, site string, evs []features.Event) (serve.AppendResult, error) {
	r, err := a.s.Append(ctx, site, evs)
	return serve.AppendResult{Stored: r.Stored, Duplicates: r.Duplicates, Unlogged: r.Unlogged, Sessions: r.Sessions}, storeErr(err)
}

func (a storeAdapter) Session(ctx context.Context, site, session string) (serve.SessionInfo, []features.Event, error) {
	info, evs, err := a.s.Session(ctx, site, session)
	return serve.SessionInfo{
		ID: info.Session, ClientID: info.ClientSessionID, AnonymousID: info.AnonymousID,
		UserID: info.UserID, StartTS: info.StartTS, LastTS: info.LastTS, Events: info.Events,
	}, evs, storeErr(err)
}

func (a storeAdapter) ResolveSession(ctx context.Context, site, client string) (string, error) {
	s, err := a.s.ResolveSession(ctx, site, client)
	return s, storeErr(err)
}

func (a storeAdapter) Features(ctx context.Context, site, session string, asOf int64, out []float64) (*features.Schema, error) {
	sc, err := a.s.Features(ctx, site, session, asOf, out)
	return sc, storeErr(err)
}

func (a storeAdapter) Stats(ctx context.Context, site string) (serve.Stats, error) {
	st, err := a.s.Stats(ctx, site)
	return serve.Stats{
		Events: st.Events, Sessions: st.Sessions, Visitors: st.Visitors, Duplicates: st.Duplicates,
		Unlogged: st.Unlogged, FirstTS: st.FirstTS, LastTS: st.LastTS,
	}, storeErr(err)
}

// wireDecoder presents wire.DecodeBatch with limits lim as a serve.Decoder.
func wireDecoder(lim wire.Limits) serve.Decoder {
	return func(body []byte, now time.Time, consent bool) (serve.Batch, error) {
		b, err := wire.DecodeBatch(body, now, lim, consent)
		switch {
		case errors.Is(err, wire.ErrTooManyEvents):
			return serve.Batch{}, serve.Mark(serve.ErrTooManyEvents, err)
		case errors.Is(err, wire.ErrMalformed):
			return serve.Batch{}, serve.Mark(serve.ErrMalformed, err)
		case err != nil:
			return serve.Batch{}, err
		}
		out := serve.Batch{Events: b.Events, Index: b.Index, Received: b.Received, Errors: make([]serve.FieldError, len(b.Errors))}
		for i, fe := range b.Errors {
			out.Errors[i] = serve.FieldError{Index: fe.Index, EventID: fe.EventID, Field: fe.Field, Reason: fe.Reason}
		}
		return out, nil
	}
}

// reportAdapter presents report.Build on the store as a serve.Reporter (the report API and
// the dashboard): the site comes from the configuration, a query the engine refuses is a
// bad parameter.
type reportAdapter struct {
	st  *store.Store
	cfg *config.Config
}

func (a reportAdapter) Report(ctx context.Context, site string, q report.Query) (*report.Report, error) {
	s, ok := a.cfg.Site(site)
	if !ok {
		return nil, serve.Mark(serve.ErrNotFound, fmt.Errorf("unknown site %q", site))
	}
	q.Site = s.ID
	r, err := report.Build(ctx, a.st, s, q)
	if errors.Is(err, report.ErrQuery) {
		return nil, serve.Mark(serve.ErrBadParam, err)
	}
	return r, storeErr(err)
}
