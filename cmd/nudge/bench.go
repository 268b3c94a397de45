package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
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
	rounds      int           // rounds of every phase
	warmup      int           // rounds run first and not counted
	timeout     time.Duration // bound on the whole run
	noSync      bool          // --unsafe-no-sync for comparison
	syncDelay   time.Duration // store.Options.SyncDelay
	client      string        // load generator: "raw" (hand-written HTTP/1.1) or "std" (net/http)
	direct      bool          // also time store.Append in-process (HTTP overhead)
	dir         string        // parent of the temporary data directories ("" = os.TempDir)
}

// check reports options that cannot run.
func (o benchOptions) check() error {
	if o.events <= 0 || o.batch <= 0 || o.concurrency <= 0 || o.rounds <= 0 {
		return fmt.Errorf("bench: --events, --batch, --concurrency and --rounds must be positive")
	}
	if o.warmup < 0 {
		return fmt.Errorf("bench: --warmup must not be negative")
	}
	if o.client != "raw" && o.client != "std" {
		return fmt.Errorf("bench: --client %q: want raw or std", o.client)
	}
	return nil
}

// benchResult is what one run measured.
type benchResult struct {
	Events   int
	Requests int
	HTTP     time.Duration // wall time of the HTTP phase
	Direct   time.Duration // the same batches through store.Append in-process (0 if skipped)
	Raw      time.Duration // store.RawBaseline on the same events
	// Process CPU time (user+system, every goroutine, the GC and the load generator
	// included) and page faults of each phase: steadier than wall time on a shared machine.
	HTTPUse, DirectUse, RawUse procUsage
	// fsyncs of the store in the HTTP and direct phases (their commit groups' size).
	HTTPSyncs, DirectSyncs int64
}

// procUsage is the process's resource usage (or a phase's difference of two readings).
type procUsage struct {
	CPU    time.Duration // user + system
	Faults int64         // page faults (minor + major)
}

func (u procUsage) sub(v procUsage) procUsage {
	return procUsage{CPU: u.CPU - v.CPU, Faults: u.Faults - v.Faults}
}

// perEvent formats a phase's CPU time and page faults per event ("" when not measured).
func (r benchResult) perEvent(u procUsage) string {
	if u.CPU <= 0 || r.Events == 0 {
		return ""
	}
	return fmt.Sprintf("  %5.1f µs CPU/event  %5.3f faults/event", r.cpuPerEvent(u), float64(u.Faults)/float64(r.Events))
}

// perSync formats the events per fsync of a phase ("" without fsyncs).
func (r benchResult) perSync(syncs int64) string {
	if syncs <= 0 {
		return ""
	}
	return fmt.Sprintf("  %4.0f events/fsync", float64(r.Events)/float64(syncs))
}

// cpuPerEvent is a phase's CPU time per event in µs (0 when not measured).
func (r benchResult) cpuPerEvent(u procUsage) float64 {
	if r.Events == 0 {
		return 0
	}
	return float64(u.CPU.Microseconds()) / float64(r.Events)
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
same keys and values, one sync at the end) in the same run and print the ratio. --direct also
times the same batches through store.Append in-process (no HTTP).

The run has --rounds rounds, each on fresh stores; the HTTP and raw phases swap order from one
round to the next, so that neither always runs on a heap the other has grown, and the summary
gives the median of the rounds. Before them, --warmup rounds of every phase run and are not
counted: the first phase of a cold process pays its page faults (the heap's first touch),
which would otherwise always fall on the first round's first phase. Every phase prints its process CPU time and page faults per
event, which are steadier than wall time on a shared machine.`,
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
			if err := o.check(); err != nil {
				return &exitError{2, err}
			}
			printBenchHeader(a.stdout, o)
			rep, err := benchIngest(cmd.Context(), o, slog.New(slog.DiscardHandler), a.stdout)
			if err != nil {
				return err
			}
			printBenchSummary(a.stdout, o, rep)
			return nil
		},
	}
	fs := ingest.Flags()
	fs.IntVar(&o.events, "events", 1_000_000, "events to send (sustained: each phase runs past Badger's memtable flushes)")
	fs.IntVar(&o.batch, "batch", 100, "events per request")
	fs.IntVar(&o.concurrency, "concurrency", 16, "client goroutines")
	fs.IntVar(&o.rounds, "rounds", 3, "rounds of every phase (medians are reported; the phases' order alternates)")
	fs.IntVar(&o.warmup, "warmup", 1, "rounds of every phase run first and not counted (a cold process's page faults)")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Minute, "bound on the whole run")
	fs.BoolVar(&o.noSync, "unsafe-no-sync", false, "measure without fsync before acknowledging")
	fs.DurationVar(&o.syncDelay, "sync-delay", store.DefaultSyncDelay, "the store's group-commit delay (as nudge serve --sync-delay; 0: no delay)")
	fs.StringVar(&o.client, "client", "raw",
		"load generator: raw (requests written by hand on keep-alive connections, responses parsed by net/http) or std (net/http's client)")
	fs.BoolVar(&o.direct, "direct", true, "also time the same batches through store.Append in-process")
	fs.StringVar(&o.dir, "dir", "", "parent directory of the temporary data directories")
	fs.StringVar(&cpuprofile, "cpuprofile", "", "write a CPU profile of the run to this file")
	bench.AddCommand(ingest)
	bench.AddCommand(newBenchDecideCmd(a))
	return bench
}

// printBenchHeader describes the run before its rounds.
func printBenchHeader(w io.Writer, o benchOptions) {
	mode := "durable (fsync before ack)"
	if o.noSync {
		mode = "unsafe-no-sync"
	}
	fmt.Fprintf(w, "ingest over HTTP: %d events in %d requests of %d, %d clients, %s, %d rounds after %d warm-up\n",
		o.events, (o.events+o.batch-1)/o.batch, o.batch, o.concurrency, mode, o.rounds, o.warmup)
}

// printRound prints one round's figures: measured round round (from 0), or with warm, the
// warm-up round of that number.
func printRound(w io.Writer, round int, warm bool, o benchOptions, r benchResult) {
	order := "http first"
	if rawFirst(round, warm) {
		order = "raw first"
	}
	if warm {
		fmt.Fprintf(w, "warm-up round %d (%s, not counted)\n", round+1, order)
	} else {
		fmt.Fprintf(w, "round %d (%s)\n", round+1, order)
	}
	fmt.Fprintf(w, "  http:         %8.3fs  %10.0f events/s%s%s\n", r.HTTP.Seconds(), r.httpRate(), r.perEvent(r.HTTPUse),
		r.perSync(r.HTTPSyncs))
	if r.Direct > 0 {
		fmt.Fprintf(w, "  store.Append: %8.3fs  %10.0f events/s%s%s  (same batches and clients, in-process, no HTTP)\n",
			r.Direct.Seconds(), r.directRate(), r.perEvent(r.DirectUse), r.perSync(r.DirectSyncs))
	}
	fmt.Fprintf(w, "  raw baseline: %8.3fs  %10.0f events/s%s  (badger WriteBatch of %d, one sync)\n",
		r.Raw.Seconds(), r.rawRate(), r.perEvent(r.RawUse), o.batch)
	fmt.Fprintf(w, "  ratio http/raw: %.2f\n", r.ratio())
}

// printBenchSummary prints the medians over the rounds.
func printBenchSummary(w io.Writer, o benchOptions, rep benchReport) {
	n := len(rep.Rounds)
	fmt.Fprintf(w, "median of %d rounds:\n", n)
	fmt.Fprintf(w, "  http:         %10.0f events/s  %5.1f µs CPU/event\n",
		rep.median(benchResult.httpRate), rep.median(func(r benchResult) float64 { return r.cpuPerEvent(r.HTTPUse) }))
	if o.direct {
		fmt.Fprintf(w, "  store.Append: %10.0f events/s  %5.1f µs CPU/event\n",
			rep.median(benchResult.directRate), rep.median(func(r benchResult) float64 { return r.cpuPerEvent(r.DirectUse) }))
	}
	fmt.Fprintf(w, "  raw baseline: %10.0f events/s  %5.1f µs CPU/event\n",
		rep.median(benchResult.rawRate), rep.median(func(r benchResult) float64 { return r.cpuPerEvent(r.RawUse) }))
	fmt.Fprintf(w, "  median ratio http/raw: %.2f   (targets: >= 100000 events/s over http, ratio >= 0.5)\n",
		rep.median(benchResult.ratio))
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

// benchReport is what every round of a run measured.
type benchReport struct {
	Rounds []benchResult
}

// median is the median of f over the rounds (the mean of the middle two for an even count).
func (r benchReport) median(f func(benchResult) float64) float64 {
	v := make([]float64, len(r.Rounds))
	for i, x := range r.Rounds {
		v[i] = f(x)
	}
	slices.Sort(v)
	n := len(v)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

// benchIngest runs the ingestion benchmark: o.rounds rounds, each an HTTP phase, a direct
// phase (if o.direct) and a raw phase on fresh stores, the order of the HTTP and raw phases
// alternating from round to round so that neither always runs on the heap the other grew.
func benchIngest(ctx context.Context, o benchOptions, log *slog.Logger, progress io.Writer) (benchReport, error) {
	if o.client == "" {
		o.client = "raw"
	}
	if err := o.check(); err != nil {
		return benchReport{}, err
	}
	if o.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.timeout)
		defer cancel()
	}
	dir, err := os.MkdirTemp(o.dir, "nudge-bench-")
	if err != nil {
		return benchReport{}, fmt.Errorf("bench: %w", err)
	}
	defer os.RemoveAll(dir)

	cfg := config.Demo()
	now := time.Now()
	bodies := benchBodies(o.events, o.batch, now)
	lim := wire.DefaultLimits()
	lim.MaxEvents = max(lim.MaxEvents, o.batch)

	// The same events, decoded by the same code, for the direct and raw phases.
	batches := make([][]features.Event, len(bodies))
	evs := make([]features.Event, 0, o.events)
	for i, b := range bodies {
		dec, err := wire.DecodeBatch(b, now, lim, true)
		if err != nil || len(dec.Errors) > 0 {
			return benchReport{}, fmt.Errorf("bench: decode for baseline: %v %v", err, dec.Errors)
		}
		batches[i] = dec.Events
		evs = append(evs, dec.Events...)
	}
	raw := make([]features.Event, len(evs))
	copy(raw, evs)
	for i := range raw {
		raw[i].Session = raw[i].SessionID
	}

	var rep benchReport
	for i := range o.warmup + o.rounds {
		warm := i < o.warmup
		round := i - o.warmup // measured rounds from 0; warm-up rounds from -warmup
		if warm {
			round = i
		}
		var res benchResult
		rdir := filepath.Join(dir, strconv.Itoa(i))
		// Each phase runs under a pprof label (phase=http|direct|raw) that the goroutines it
		// starts (server, store writer, Badger) inherit: `go tool pprof -tagfocus phase=http`.
		httpPhase := func() error {
			use0 := ingestUsage()
			var err error
			pprof.Do(ctx, pprof.Labels("phase", "http"), func(ctx context.Context) {
				var r benchResult
				r, err = benchHTTP(ctx, o, cfg, filepath.Join(rdir, "http"), bodies, lim, log)
				res.Events, res.Requests, res.HTTP, res.HTTPSyncs = r.Events, r.Requests, r.HTTP, r.HTTPSyncs
			})
			res.HTTPUse = ingestUsage().sub(use0)
			return err
		}
		directPhase := func() error {
			if !o.direct {
				return nil
			}
			use0 := ingestUsage()
			var err error
			pprof.Do(ctx, pprof.Labels("phase", "direct"), func(ctx context.Context) {
				res.Direct, res.DirectSyncs, err = benchDirect(ctx, cfg, filepath.Join(rdir, "direct"), o, batches, log)
			})
			res.DirectUse = ingestUsage().sub(use0)
			return err
		}
		rawPhase := func() error {
			use0 := ingestUsage()
			var err error
			pprof.Do(ctx, pprof.Labels("phase", "raw"), func(ctx context.Context) {
				res.Raw, err = store.RawBaseline(ctx, filepath.Join(rdir, "raw"), raw, o.batch)
			})
			res.RawUse = ingestUsage().sub(use0)
			if err != nil {
				return fmt.Errorf("bench: %w", err)
			}
			return nil
		}
		phases := []func() error{httpPhase, directPhase, rawPhase}
		if rawFirst(round, warm) {
			phases = []func() error{rawPhase, directPhase, httpPhase}
		}
		for _, phase := range phases {
			if err := phase(); err != nil {
				return rep, err
			}
		}
		if err := os.RemoveAll(rdir); err != nil {
			return rep, fmt.Errorf("bench: %w", err)
		}
		if !warm {
			rep.Rounds = append(rep.Rounds, res)
		}
		if progress != nil {
			printRound(progress, round, warm, o, res)
		}
	}
	return rep, nil
}

// rawFirst says whether a round runs the raw phase first: every other measured round,
// starting with the second; warm-up rounds the other way round, so that the first measured
// round's first phase (HTTP) does not follow a phase of its own kind.
func rawFirst(round int, warm bool) bool {
	if warm {
		return round%2 == 0
	}
	return round%2 == 1
}

// benchHTTP runs the HTTP phase: a durable store behind the real server on 127.0.0.1:0, the
// bodies sent by o.concurrency clients.
func benchHTTP(ctx context.Context, o benchOptions, cfg *config.Config, dir string, bodies [][]byte,
	lim wire.Limits, log *slog.Logger) (benchResult, error) {
	site := &cfg.Sites[0]
	st, err := openStore(ctx, cfg, storeOptions{dir: dir, noSync: o.noSync, syncDelay: noDelayIfZero(o.syncDelay)}, log)
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
	res, sendErr := benchSend(ctx, o.client, srv.Addr(), site.WriteKey, bodies, o.concurrency)
	res.HTTPSyncs = st.Syncs()
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

// benchDirect appends the batches to a fresh durable store from o.concurrency goroutines,
// in-process, and times it: the store's own rate, without HTTP. It also returns the store's
// fsyncs.
func benchDirect(ctx context.Context, cfg *config.Config, dir string, o benchOptions, batches [][]features.Event,
	log *slog.Logger) (time.Duration, int64, error) {
	st, err := openStore(ctx, cfg, storeOptions{dir: dir, noSync: o.noSync, syncDelay: noDelayIfZero(o.syncDelay)}, log)
	if err != nil {
		return 0, 0, fmt.Errorf("bench: %w", err)
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
	syncs := st.Syncs()
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := st.Close(cctx); err != nil && firstErr == nil {
		firstErr = fmt.Errorf("bench: close: %w", err)
	}
	return elapsed, syncs, firstErr
}
