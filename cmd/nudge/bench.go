package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/nudgehq/nudge/data/config"
	"github.com/nudgehq/nudge/data/store"
	"github.com/nudgehq/nudge/data/wire"
	"github.com/nudgehq/nudge/features"
	"github.com/nudgehq/nudge/serve"
)

// benchOptions configure the ingestion benchmark.
type benchOptions struct {
	events      int           // events to send
	batch       int           // events per request
	concurrency int           // client goroutines
	timeout     time.Duration // bound on the whole run
	noSync      bool          // --unsafe-no-sync for comparison
	direct      bool          // also time store.Append in-process (HTTP overhead)
	dir         string        // parent of the temporary data directories ("" = os.TempDir)
}

// benchResult is what one run measured.
type benchResult struct {
	Events   int
	Requests int
	HTTP     time.Duration // wall time of the HTTP phase
	Direct   time.Duration // the same batches through store.Append in-process (0 if skipped)
	Raw      time.Duration // store.RawBaseline on the same events
	// Process CPU time (user+system, every goroutine, the GC and the load generator
	// included) of each phase: steadier than wall time on a shared machine.
	HTTPCPU, DirectCPU, RawCPU time.Duration
}

// cpuPerEvent formats a phase's CPU time per event ("" when not measured).
func (r benchResult) cpuPerEvent(d time.Duration) string {
	if d <= 0 || r.Events == 0 {
		return ""
	}
	return fmt.Sprintf("  %5.1f µs CPU/event", float64(d.Microseconds())/float64(r.Events))
}

func (r benchResult) httpRate() float64 { return float64(r.Events) / r.HTTP.Seconds() }
func (r benchResult) rawRate() float64  { return float64(r.Events) / r.Raw.Seconds() }
func (r benchResult) ratio() float64    { return r.httpRate() / r.rawRate() }
func (r benchResult) directRate() float64 {
	return float64(r.Events) / r.Direct.Seconds()
}

func newBenchCmd(a *app) *cobra.Command {
	bench := &cobra.Command{Use: "bench", Short: "Measure nudge's performance"}
	var (
		o          benchOptions
		cpuprofile string
	)
	ingest := &cobra.Command{
		Use:   "ingest",
		Short: "Sustained durable ingestion over HTTP on loopback vs a raw Badger WriteBatch",
		Long: `Start the real server on 127.0.0.1:0 with a durable store in a temporary directory,
send --events events in batches of --batch from --concurrency client goroutines, and print
events/s. Then write the same events with store.RawBaseline (plain Badger WriteBatch of the
same keys and values, one sync at the end) in the same run and print the ratio.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cpuprofile != "" {
				f, err := os.Create(cpuprofile)
				if err != nil {
					return err
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					return err
				}
				defer pprof.StopCPUProfile()
			}
			res, err := benchIngest(cmd.Context(), o, slog.New(slog.DiscardHandler))
			if err != nil {
				return err
			}
			printBench(a.stdout, o, res)
			return nil
		},
	}
	fs := ingest.Flags()
	fs.IntVar(&o.events, "events", 200_000, "events to send")
	fs.IntVar(&o.batch, "batch", 100, "events per request")
	fs.IntVar(&o.concurrency, "concurrency", 16, "client goroutines")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Minute, "bound on the whole run")
	fs.BoolVar(&o.noSync, "unsafe-no-sync", false, "measure without fsync before acknowledging")
	fs.BoolVar(&o.direct, "direct", true, "also time the same batches through store.Append in-process")
	fs.StringVar(&o.dir, "dir", "", "parent directory of the temporary data directories")
	fs.StringVar(&cpuprofile, "cpuprofile", "", "write a CPU profile of the run to this file")
	bench.AddCommand(ingest)
	bench.AddCommand(newBenchDecideCmd(a))
	return bench
}

func printBench(w io.Writer, o benchOptions, r benchResult) {
	mode := "durable (fsync before ack)"
	if o.noSync {
		mode = "unsafe-no-sync"
	}
	fmt.Fprintf(w, "ingest over HTTP: %d events in %d requests of %d, %d clients, %s\n",
		r.Events, r.Requests, o.batch, o.concurrency, mode)
	fmt.Fprintf(w, "  http:         %8.3fs  %10.0f events/s%s\n", r.HTTP.Seconds(), r.httpRate(), r.cpuPerEvent(r.HTTPCPU))
	if r.Direct > 0 {
		fmt.Fprintf(w, "  store.Append: %8.3fs  %10.0f events/s%s  (same batches and clients, in-process, no HTTP)\n",
			r.Direct.Seconds(), r.directRate(), r.cpuPerEvent(r.DirectCPU))
	}
	fmt.Fprintf(w, "  raw baseline: %8.3fs  %10.0f events/s%s  (badger WriteBatch of %d, one sync)\n",
		r.Raw.Seconds(), r.rawRate(), r.cpuPerEvent(r.RawCPU), o.batch)
	fmt.Fprintf(w, "  ratio http/raw: %.2f   (targets: >= 100000 events/s, ratio >= 0.5)\n", r.ratio())
}

// benchBodies builds the request bodies: sessions of 20 events (page views, clicks, a micro
// conversion, now and then a purchase), timestamps ending now.
func benchBodies(n, batch int, now time.Time) [][]byte {
	var bodies [][]byte
	var buf bytes.Buffer
	base := now.Add(-time.Hour).UnixMilli()
	for i := 0; i < n; {
		buf.Reset()
		buf.WriteString(`{"events":[`)
		for j := 0; j < batch && i < n; j, i = j+1, i+1 {
			if j > 0 {
				buf.WriteByte(',')
			}
			sess, k := i/20, i%20
			typ, name := "page_view", ""
			switch {
			case k == 19 && sess%7 == 0:
				typ, name = "macro_conversion", "purchase"
			case k == 12:
				typ, name = "micro_conversion", "add_to_cart"
			case k%3 == 2:
				typ, name = "click", "product_tile"
			}
			fmt.Fprintf(&buf, `{"event_id":"e%d","session_id":"s%d","anonymous_id":"v%d","type":%q,`+
				`"timestamp":%d,"name":%q,"props":{"path":"/p/%d","device":"desktop"}}`,
				i, sess, sess/3, typ, base+int64(sess%3000)*1000+int64(k)*1000, name, k)
		}
		buf.WriteString(`]}`)
		bodies = append(bodies, bytes.Clone(buf.Bytes()))
	}
	return bodies
}

// benchIngest runs the ingestion benchmark.
func benchIngest(ctx context.Context, o benchOptions, log *slog.Logger) (benchResult, error) {
	if o.events <= 0 || o.batch <= 0 || o.concurrency <= 0 {
		return benchResult{}, fmt.Errorf("bench: --events, --batch and --concurrency must be positive")
	}
	if o.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.timeout)
		defer cancel()
	}
	dir, err := os.MkdirTemp(o.dir, "nudge-bench-")
	if err != nil {
		return benchResult{}, fmt.Errorf("bench: %w", err)
	}
	defer os.RemoveAll(dir)

	cfg := config.Demo()
	now := time.Now()
	bodies := benchBodies(o.events, o.batch, now)
	lim := wire.DefaultLimits()
	lim.MaxEvents = max(lim.MaxEvents, o.batch)

	var res benchResult
	// Each phase runs under a pprof label (phase=http|direct|raw) that the goroutines it
	// starts (server, store writer, Badger) inherit: `go tool pprof -tagfocus phase=http`.
	cpu0 := ingestProcessCPU()
	pprof.Do(ctx, pprof.Labels("phase", "http"), func(ctx context.Context) {
		res, err = benchHTTP(ctx, o, cfg, filepath.Join(dir, "http"), bodies, lim, log)
	})
	res.HTTPCPU = ingestProcessCPU() - cpu0
	if err != nil {
		return res, err
	}

	// The same events, decoded by the same code.
	batches := make([][]features.Event, len(bodies))
	evs := make([]features.Event, 0, o.events)
	for i, b := range bodies {
		dec, err := wire.DecodeBatch(b, now, lim, true)
		if err != nil || len(dec.Errors) > 0 {
			return res, fmt.Errorf("bench: decode for baseline: %v %v", err, dec.Errors)
		}
		batches[i] = dec.Events
		evs = append(evs, dec.Events...)
	}
	if o.direct {
		cpu0 := ingestProcessCPU()
		pprof.Do(ctx, pprof.Labels("phase", "direct"), func(ctx context.Context) {
			res.Direct, err = benchDirect(ctx, cfg, filepath.Join(dir, "direct"), o, batches, log)
		})
		res.DirectCPU = ingestProcessCPU() - cpu0
		if err != nil {
			return res, err
		}
	}
	for i := range evs {
		evs[i].Session = evs[i].SessionID
	}
	cpu0 = ingestProcessCPU()
	pprof.Do(ctx, pprof.Labels("phase", "raw"), func(ctx context.Context) {
		res.Raw, err = store.RawBaseline(ctx, filepath.Join(dir, "raw"), evs, o.batch)
	})
	res.RawCPU = ingestProcessCPU() - cpu0
	if err != nil {
		return res, fmt.Errorf("bench: %w", err)
	}
	return res, nil
}

// benchHTTP runs the HTTP phase: a durable store behind the real server on 127.0.0.1:0, the
// bodies sent by o.concurrency clients.
func benchHTTP(ctx context.Context, o benchOptions, cfg *config.Config, dir string, bodies [][]byte,
	lim wire.Limits, log *slog.Logger) (benchResult, error) {
	site := &cfg.Sites[0]
	st, err := openStore(ctx, cfg, storeOptions{dir: dir, noSync: o.noSync}, log)
	if err != nil {
		return benchResult{}, fmt.Errorf("bench: %w", err)
	}
	srv, err := serve.New(serve.Options{
		Config: cfg, Events: storeAdapter{st}, Decode: wireDecoder(lim), Logger: log,
		BodyLimit: int64(64 * o.batch * 1024),
	})
	if err == nil {
		err = srv.Open("127.0.0.1:0")
	}
	if err != nil {
		st.Close(context.WithoutCancel(ctx))
		return benchResult{}, fmt.Errorf("bench: %w", err)
	}
	res, sendErr := benchSend(ctx, "http://"+srv.Addr()+"/v1/events", site.WriteKey, bodies, o.concurrency)
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	closeErr := srv.Close(cctx)
	if err := st.Close(cctx); err != nil && closeErr == nil {
		closeErr = err
	}
	if sendErr != nil {
		return res, sendErr
	}
	if closeErr != nil {
		return res, fmt.Errorf("bench: close: %w", closeErr)
	}
	return res, nil
}

// benchSend posts bodies from c goroutines and times it. Every request must get a 200.
func benchSend(ctx context.Context, url, key string, bodies [][]byte, c int) (benchResult, error) {
	tr := &http.Transport{MaxIdleConnsPerHost: c, MaxConnsPerHost: c, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	var (
		next     atomic.Int64
		events   atomic.Int64
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	fail := func(err error) {
		errOnce.Do(func() { firstErr = err; cancel() })
	}
	start := time.Now()
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(bodies) || ctx.Err() != nil {
					return
				}
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(bodies[i]))
				if err != nil {
					fail(err)
					return
				}
				req.Header.Set("Authorization", "Bearer "+key)
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					fail(fmt.Errorf("bench: request %d: %w", i, err))
					return
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					fail(fmt.Errorf("bench: request %d: status %d: %s", i, resp.StatusCode, body))
					return
				}
				events.Add(int64(bytes.Count(bodies[i], []byte(`"event_id"`))))
			}
		}()
	}
	wg.Wait()
	res := benchResult{HTTP: time.Since(start), Requests: len(bodies), Events: int(events.Load())}
	if firstErr != nil {
		return res, firstErr
	}
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("bench: %w", err)
	}
	return res, nil
}

// benchDirect appends the batches to a fresh durable store from o.concurrency goroutines,
// in-process, and times it: the store's own rate, without HTTP.
func benchDirect(ctx context.Context, cfg *config.Config, dir string, o benchOptions, batches [][]features.Event,
	log *slog.Logger) (time.Duration, error) {
	st, err := openStore(ctx, cfg, storeOptions{dir: dir, noSync: o.noSync}, log)
	if err != nil {
		return 0, fmt.Errorf("bench: %w", err)
	}
	site := cfg.Sites[0].ID
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	start := time.Now()
	for range o.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(batches) {
					return
				}
				evs := append([]features.Event(nil), batches[i]...)
				if _, err := st.Append(ctx, site, evs); err != nil {
					errOnce.Do(func() { firstErr = fmt.Errorf("bench: direct append: %w", err) })
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := st.Close(cctx); err != nil && firstErr == nil {
		firstErr = fmt.Errorf("bench: close: %w", err)
	}
	return elapsed, firstErr
}
