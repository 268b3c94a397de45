package store

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"

	"github.com/nudgehq/nudge/features"
)

var (
	flagFeatureSessions   = flag.Int("store.sessions", defaultFeatureSessions, "sessions stored for BenchmarkFeatures")
	flagAppendParallelism = flag.Int("store.parallelism", 32, "BenchmarkAppend callers per GOMAXPROCS")
	flagReplaySessions    = flag.Int("store.replay-sessions", defaultReplaySessions, "sessions (x10 events) stored for BenchmarkReplay")
	flagFixtureDir        = flag.String("store.fixture-dir", "", "keep benchmark fixtures in this directory across runs (default: a temporary directory removed at exit)")
	flagThreadCPU         = flag.Bool("store.thread-cpu", false, "also report percentiles of each read's CPU time on its OS thread (time descheduled excluded; adds two syscalls per read)")
	flagBadger            = flag.String("store.badger", "", "Badger option overrides for the read fixtures, for tuning: comma-separated compression=none|snappy|zstd, blockcache=MiB, blocksize=KiB, bloom=false-positive rate (each variant builds its own fixture)")
	flagSettle            = flag.Bool("store.settle", true, "let Badger finish its compactions after building a fixture (false: read the store as the writer left it)")
)

var fixtureRoot string

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if fixtureRoot != "" {
		_ = os.RemoveAll(fixtureRoot)
	}
	os.Exit(code)
}

// benchSession returns the events of fixture session i: a visitor (half of them return with
// a second session) browsing, viewing a product, adding to cart; every 7th converts.
func benchSession(i, perSession, visitors int, prefix string) []features.Event {
	start := t0 + int64(i)*10*sec
	anon := fmt.Sprint("a", i%visitors)
	sess := fmt.Sprint(prefix, i)
	evs := make([]features.Event, perSession)
	for j := range evs {
		ev := features.Event{
			EventID: fmt.Sprintf("%s-%d", sess, j), SessionID: sess, AnonymousID: anon,
			TS: start + int64(j)*900, Consent: true,
		}
		switch {
		case j == perSession-1 && i%7 == 0:
			ev.Type, ev.Name, ev.Value = features.MacroConversion, "purchase", 49.5
		case j%3 == 1:
			ev.Type, ev.Name = features.MicroConversion, "view_product"
		case j%3 == 2:
			ev.Type, ev.Name, ev.Value = features.MicroConversion, "add_to_cart", 20
		default:
			ev.Type = features.PageView
			ev.Props = map[string]string{"path": fmt.Sprint("/p/", j), "utm_source": "news", "device": "mobile"}
		}
		evs[j] = ev
	}
	return evs
}

// buildFixture stores n sessions of perSession events on disk and returns the directory
// (closed store). Fixtures live under -store.fixture-dir when set, kept across runs and
// reused (a "done" file marks a complete one), else in a temporary directory removed at exit.
// With -store.settle (the default) the built store is reopened and left open until Badger has
// no compaction left to do, as a server that has run for a while would find it.
func buildFixture(b *testing.B, name string, n, perSession int) string {
	b.Helper()
	root := *flagFixtureDir
	if root == "" {
		if fixtureRoot == "" {
			var err error
			if fixtureRoot, err = os.MkdirTemp("", "nudge-store-bench-"); err != nil {
				b.Fatal(err)
			}
		}
		root = fixtureRoot
	}
	state := "settled"
	if !*flagSettle {
		state = "unsettled"
	}
	for kv := range strings.SplitSeq(*flagBadger, ",") {
		if kv != "" && !strings.HasPrefix(kv, "blockcache=") { // the cache is no part of the files
			state += "-" + strings.ReplaceAll(kv, "=", "")
		}
	}
	dir := filepath.Join(root, fmt.Sprintf("%s-%d-%d-%s", name, n, perSession, state))
	if _, err := os.Stat(filepath.Join(dir, "done")); err == nil {
		return dir
	}
	if err := os.RemoveAll(dir); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	s, err := Open(ctx, Options{Dir: dir, Schema: schemaOf, NoSync: true, Badger: benchBadger(b)})
	if err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	const batch = 2000
	var evs []features.Event
	for i := range n {
		evs = append(evs, benchSession(i, perSession, max(1, n/2), "s")...)
		if len(evs) >= batch || i == n-1 {
			if _, err := s.Append(ctx, "site", evs); err != nil {
				b.Fatal(err)
			}
			evs = evs[:0]
		}
	}
	if err := s.Close(ctx); err != nil {
		b.Fatal(err)
	}
	built := time.Since(start)
	if *flagSettle {
		settleFixture(b, dir)
	}
	if err := os.WriteFile(filepath.Join(dir, "done"), nil, 0o644); err != nil {
		b.Fatal(err)
	}
	b.Logf("fixture %s: %d sessions x %d events built in %v, settled in %v", name, n, perSession,
		built.Round(time.Millisecond), (time.Since(start) - built).Round(time.Millisecond))
	return dir
}

// settleFixture opens the store's Badger with the product options and waits until no
// compaction is due (L0 below its trigger, every level under its target) for a second.
func settleFixture(b *testing.B, dir string) {
	b.Helper()
	bo := benchBadger(b)(BadgerOptions(dir, false, nil))
	db, err := badger.Open(bo)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	quiet := 0
	for deadline := time.Now().Add(10 * time.Minute); quiet < 10 && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		busy := false
		for _, l := range db.Levels() {
			if (l.Level == 0 && l.NumTables >= bo.NumLevelZeroTables) || l.Score >= 1 {
				busy = true
			}
		}
		if busy {
			quiet = 0
		} else {
			quiet++
		}
	}
}

// benchBadger returns the -store.badger overrides as an Options.Badger function.
func benchBadger(b *testing.B) func(badger.Options) badger.Options {
	b.Helper()
	var muts []func(badger.Options) badger.Options
	for kv := range strings.SplitSeq(*flagBadger, ",") {
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		num, numErr := strconv.ParseFloat(v, 64)
		switch {
		case k == "compression" && v == "none":
			muts = append(muts, func(o badger.Options) badger.Options { return o.WithCompression(options.None) })
		case k == "compression" && v == "snappy":
			muts = append(muts, func(o badger.Options) badger.Options { return o.WithCompression(options.Snappy) })
		case k == "compression" && v == "zstd":
			muts = append(muts, func(o badger.Options) badger.Options { return o.WithCompression(options.ZSTD) })
		case k == "blockcache" && numErr == nil:
			muts = append(muts, func(o badger.Options) badger.Options { return o.WithBlockCacheSize(int64(num * (1 << 20))) })
		case k == "blocksize" && numErr == nil:
			muts = append(muts, func(o badger.Options) badger.Options { return o.WithBlockSize(int(num * (1 << 10))) })
		case k == "bloom" && numErr == nil:
			muts = append(muts, func(o badger.Options) badger.Options { return o.WithBloomFalsePositive(num) })
		default:
			b.Fatalf("-store.badger: bad override %q", kv)
		}
	}
	return func(o badger.Options) badger.Options {
		for _, m := range muts {
			o = m(o)
		}
		return o
	}
}

// lsmShape is a one-line summary of the LSM tree: tables per level.
func lsmShape(db *badger.DB) string {
	var sb strings.Builder
	for _, l := range db.Levels() {
		if l.NumTables > 0 {
			fmt.Fprintf(&sb, "L%d:%d tables %dMB ", l.Level, l.NumTables, l.Size>>20)
		}
	}
	return sb.String()
}

// latencies records one duration per operation and reports percentiles as metrics.
type latencies []time.Duration

func (l latencies) report(b *testing.B, prefix string) {
	b.Helper()
	if len(l) == 0 {
		return
	}
	slices.Sort(l)
	at := func(q float64) float64 {
		return float64(l[min(len(l)-1, int(float64(len(l))*q))].Nanoseconds()) / 1e3
	}
	b.ReportMetric(at(0.50), prefix+"p50-µs")
	b.ReportMetric(at(0.99), prefix+"p99-µs")
	b.ReportMetric(at(0.999), prefix+"p99.9-µs")
	b.ReportMetric(float64(l[len(l)-1].Nanoseconds())/1e3, prefix+"max-µs")
}

// BenchmarkAppend: durable in-process Append of batches of 100 events from parallel callers,
// then RawBaseline on the same events in the same run. Metrics: events/s of each and their
// ratio.
func BenchmarkAppend(b *testing.B) {
	ctx := context.Background()
	const batchSize = 100
	// Batch k holds 5 sessions of 20 events; a quarter of the visitors are returning ones.
	batches := make([][]features.Event, b.N)
	var all []features.Event
	for k := range batches {
		var evs []features.Event
		for j := range 5 {
			i := k*5 + j
			sess := benchSession(i, 20, max(1, (b.N*5)*3/4), fmt.Sprint("b", k, "-"))
			evs = append(evs, sess...)
		}
		batches[k] = evs[:batchSize]
		all = append(all, evs[:batchSize]...)
	}
	s := openStore(b, b.TempDir(), nil)
	var next atomic.Int64
	b.SetParallelism(*flagAppendParallelism)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			k := next.Add(1) - 1
			if _, err := s.Append(ctx, "site", batches[k]); err != nil {
				b.Error(err)
				return
			}
		}
	})
	elapsed := time.Since(start)
	b.StopTimer()
	st, err := s.Stats(ctx, "site")
	if err != nil || st.Events["page_view"]+st.Events["micro_conversion"]+st.Events["macro_conversion"] != int64(len(all)) {
		b.Fatalf("stored %+v (%v), want %d events", st, err, len(all))
	}
	raw, err := RawBaseline(ctx, b.TempDir(), all, batchSize)
	if err != nil {
		b.Fatal(err)
	}
	appendRate := float64(len(all)) / elapsed.Seconds()
	rawRate := float64(len(all)) / raw.Seconds()
	b.ReportMetric(appendRate, "events/s")
	b.ReportMetric(rawRate, "raw-events/s")
	b.ReportMetric(appendRate/rawRate, "ratio")
}

// BenchmarkFeatures reads random sessions' vectors (by server session id) from a store of
// -store.sessions sessions (50k by default, 1M with -tags slow), freshly opened so no session
// and no block is cached: every read goes to Badger. BenchmarkLiveSessionCold is the decide
// path's read of the same sessions by client session id. Metrics: latency percentiles and max,
// page faults of the reading thread per read (first touches of Badger's mmaped tables), CPU
// time of the whole process per read (Badger's goroutines and the GC included: the figure to
// compare on a loaded machine), GC cycles during the reads.
//
// Sub-benchmark fresh reads right after Open returns, with Open's warm-up pass off (warm.go):
// the first read of each page of Badger's tables takes a page fault. warmed reads after the
// warm-up pass has walked the session records (its duration is the warmup-ms metric).
func BenchmarkFeatures(b *testing.B) {
	benchColdReads(b, func(s *Store, ctx context.Context, id string, out []float64) error {
		_, err := s.Features(ctx, "site", id, t0+1e12, out)
		return err
	})
}

func BenchmarkLiveSessionCold(b *testing.B) {
	benchColdReads(b, func(s *Store, ctx context.Context, id string, out []float64) error {
		_, _, err := s.LiveSession(ctx, "site", id, t0+1e12, out)
		return err
	})
}

func benchColdReads(b *testing.B, read func(*Store, context.Context, string, []float64) error) {
	b.Run("fresh", func(b *testing.B) { benchColdRead(b, false, read) })
	b.Run("warmed", func(b *testing.B) { benchColdRead(b, true, read) })
}

func benchColdRead(b *testing.B, warm bool, read func(*Store, context.Context, string, []float64) error) {
	n := *flagFeatureSessions
	dir := buildFixture(b, "features", n, 3)
	ctx := context.Background()
	start := time.Now()
	s, err := Open(ctx, benchWarmUp(Options{Dir: dir, Schema: schemaOf, Badger: benchBadger(b)}, warm))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close(ctx)
	opened := time.Now()
	benchWaitWarmUp(s)
	warmedUp := time.Since(opened)
	if b.N > 1 {
		b.Logf("LSM: %s", lsmShape(s.DB()))
	}
	// A server that has been running has collected the garbage of its start-up (the seen
	// filter's and the warm-up's scans), so its reads allocate from freed heap spans. Without
	// this collection the reads' allocations (~1.7 KB each, nearly all inside Badger's Get)
	// land on fresh heap pages whose first touch is a page fault (~40 µs on this VM): that is
	// what faulted in about 1% of the reads, the p99, before. Faults/op is still reported.
	runtime.GC()
	// A fresh random session per read (no block-cache reuse from repeating a small sample).
	ids := make([]string, max(b.N, 1))
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range ids {
		ids[i] = fmt.Sprint("s", rng.IntN(n))
	}
	out := make([]float64, testSchema.Len())
	lat := make(latencies, 0, b.N)
	var cpu latencies
	if *flagThreadCPU {
		cpu = make(latencies, 0, b.N)
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	gc0 := ms.NumGC
	// One OS thread for the reads, so its CPU clock and fault count are the reads' own.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	faults0, cpu0 := threadFaults(), processCPU()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		var c time.Duration
		if cpu != nil {
			c = threadCPU()
		}
		t := time.Now()
		if err := read(s, ctx, ids[i], out); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t))
		if cpu != nil {
			cpu = append(cpu, threadCPU()-c)
		}
	}
	b.StopTimer()
	faults, procCPU := threadFaults()-faults0, processCPU()-cpu0
	runtime.ReadMemStats(&ms)
	lat.report(b, "")
	cpu.report(b, "cpu-")
	b.ReportMetric(float64(faults)/float64(b.N), "faults/op")
	b.ReportMetric(float64(procCPU.Nanoseconds())/1e3/float64(b.N), "cpu-µs/op")
	b.ReportMetric(float64(ms.NumGC-gc0), "gcs")
	b.ReportMetric(float64(n), "sessions")
	b.ReportMetric(float64(opened.Sub(start).Milliseconds()), "open-ms")
	if warm {
		b.ReportMetric(float64(warmedUp.Milliseconds()), "warmup-ms")
	}
}

// BenchmarkReplay replays every stored session (10 events each) into its vector as of its
// end through ReplayAll + Schema.Replay. Metric: events/s.
func BenchmarkReplay(b *testing.B) {
	n := *flagReplaySessions
	dir := buildFixture(b, "replay", n, 10)
	ctx := context.Background()
	s, err := Open(ctx, Options{Dir: dir, Schema: schemaOf})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close(ctx)
	out := make([]float64, testSchema.Len())
	var events int64
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		err := s.ReplayAll(ctx, "site", 0, 1<<62, func(_ SessionInfo, hist features.VisitorHistory, evs []features.Event) error {
			events += int64(len(evs))
			return testSchema.Replay(hist, evs, evs[len(evs)-1].TS, out)
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(events)/time.Since(start).Seconds(), "events/s")
	b.ReportMetric(float64(events)/float64(b.N), "events/op")
}

// BenchmarkFeaturesCached is the hot path when the session was written recently.
func BenchmarkFeaturesCached(b *testing.B) {
	s := openStore(b, "", nil)
	mustAppend(b, s, "site", benchSession(1, 10, 1, "s")...)
	out := make([]float64, testSchema.Len())
	var once sync.Once
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := s.Features(context.Background(), "site", "s1", t0+hr, out); err != nil {
			once.Do(func() { b.Fatal(err) })
		}
	}
}
