package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/nudgehq/nudge/data/store"
	"github.com/nudgehq/nudge/data/wire"
	"github.com/nudgehq/nudge/serve"
)

// serveFlags are the flags of `nudge serve`.
type serveFlags struct {
	addr            string
	data            string
	config          string
	sessionTimeout  time.Duration
	unsafeNoSync    bool
	syncDelay       time.Duration
	bodyLimit       int64
	maxEvents       int
	requestTimeout  time.Duration
	shutdownTimeout time.Duration
	logLevel        string
	logFormat       string
}

func newServeCmd(a *app) *cobra.Command {
	var f serveFlags
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the HTTP API (ingest, decide, admin, reports) and the dashboard",
		Long: `Run nudge's HTTP API until SIGINT or SIGTERM, then stop accepting connections, finish
in-flight requests, drain the store's write queue and close Badger cleanly.

Without --config, nudge serves the built-in demo site (keys printed in the log).

The marketer's dashboard is at /dashboard/ (log in with a site's admin key) and the report
API at GET /v1/report (admin key).

Every flag can also be set from the environment (flags win): NUDGE_ADDR, NUDGE_DATA,
NUDGE_CONFIG, NUDGE_SESSION_TIMEOUT, NUDGE_UNSAFE_NO_SYNC, NUDGE_SYNC_DELAY, NUDGE_BODY_LIMIT,
NUDGE_LOG_LEVEL, NUDGE_LOG_FORMAT.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := bindEnv(a, cmd.Flags(), map[string]string{
				"addr": "NUDGE_ADDR", "data": "NUDGE_DATA", "config": "NUDGE_CONFIG",
				"session-timeout": "NUDGE_SESSION_TIMEOUT", "unsafe-no-sync": "NUDGE_UNSAFE_NO_SYNC",
				"sync-delay": "NUDGE_SYNC_DELAY",
				"body-limit": "NUDGE_BODY_LIMIT", "log-level": "NUDGE_LOG_LEVEL", "log-format": "NUDGE_LOG_FORMAT",
			}); err != nil {
				return &exitError{2, err}
			}
			return runServe(cmd.Context(), a, f)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&f.addr, "addr", "127.0.0.1:8080", "address to listen on (port 0 picks a free port)")
	fs.StringVar(&f.data, "data", "./nudge-data", "data directory (Badger)")
	fs.StringVar(&f.config, "config", "", "site configuration file (YAML); none serves the demo site")
	fs.DurationVar(&f.sessionTimeout, "session-timeout", 0, "inactivity that ends a session (default: the config's, 30m)")
	fs.BoolVar(&f.unsafeNoSync, "unsafe-no-sync", false,
		"acknowledge events before they are fsynced: faster, but a power cut or kernel crash can lose acknowledged events")
	fs.DurationVar(&f.syncDelay, "sync-delay", store.DefaultSyncDelay,
		"group commit: how long an fsync may wait for batches the store's writer is still working on, so one fsync covers them (only while it is busy; 0: no delay)")
	fs.Int64Var(&f.bodyLimit, "body-limit", serve.DefaultBodyLimit, "largest request body in bytes (413 past it)")
	fs.IntVar(&f.maxEvents, "max-events", wire.DefaultLimits().MaxEvents, "most events in one batch (413 past it)")
	fs.DurationVar(&f.requestTimeout, "request-timeout", 30*time.Second, "deadline of each request")
	fs.DurationVar(&f.shutdownTimeout, "shutdown-timeout", 30*time.Second, "how long shutdown waits for in-flight requests")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&f.logFormat, "log-format", "text", "text or json")
	return cmd
}

func runServe(ctx context.Context, a *app, f serveFlags) (err error) {
	log, err := newLogger(a.stderr, f.logLevel, f.logFormat)
	if err != nil {
		return &exitError{2, err}
	}
	cfg, err := loadConfig(f.config, log)
	if err != nil {
		return &exitError{2, err}
	}
	if f.unsafeNoSync {
		log.Warn("--unsafe-no-sync: events are acknowledged before fsync; a power cut can lose acknowledged events")
	}
	if err := os.MkdirAll(f.data, 0o750); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	st, err := openStore(ctx, cfg, storeOptions{dir: f.data, noSync: f.unsafeNoSync, syncDelay: noDelayIfZero(f.syncDelay), sessionTimeout: f.sessionTimeout, warmUp: true}, log)
	if err != nil {
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), f.shutdownTimeout)
		defer cancel()
		if cerr := st.Close(cctx); cerr != nil {
			err = errors.Join(err, cerr)
			return
		}
		log.Info("store closed", "data", f.data)
	}()
	lim := wire.DefaultLimits()
	lim.MaxEvents = f.maxEvents
	opts := serve.Options{
		Config: cfg, Events: storeAdapter{st}, Decode: wireDecoder(lim), Logger: log,
		BodyLimit: f.bodyLimit, RequestTimeout: f.requestTimeout, Reporter: reportAdapter{st, cfg},
	}
	if _, err := withDecide(ctx, &opts, st, cfg, log); err != nil {
		return err
	}
	srv, err := serve.New(opts)
	if err != nil {
		return err
	}
	if err := srv.Open(f.addr); err != nil {
		return err
	}
	sites := make([]string, len(cfg.Sites))
	for i := range cfg.Sites {
		sites[i] = cfg.Sites[i].ID
	}
	log.Info("listening", "addr", srv.Addr(), "data", f.data, "config", cfg.Path, "sites", sites,
		"durable", !f.unsafeNoSync, "dashboard", "http://"+srv.Addr()+"/dashboard/")
	<-ctx.Done()
	log.Info("shutting down: finishing in-flight requests", "timeout", f.shutdownTimeout)
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), f.shutdownTimeout)
	defer cancel()
	if err := srv.Close(cctx); err != nil {
		return err
	}
	log.Info("http server stopped")
	return nil
}
