package store

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nudgehq/nudge/features"
)

var (
	flagFeatureSessions   = flag.Int("store.sessions", defaultFeatureSessions, "sessions stored for BenchmarkFeatures")
	flagAppendParallelism = flag.Int("store.parallelism", 32, "BenchmarkAppend callers per GOMAXPROCS")
	flagReplaySessions    = flag.Int("store.replay-sessions", defaultReplaySessions, "sessions (x10 events) stored for BenchmarkReplay")
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

// buildFixture stores n sessions of perSession events on disk once per process and returns
// the directory (closed store).
func buildFixture(b *testing.B, name string, n, perSession int) string {
	b.Helper()
	if fixtureRoot == "" {
		var err error
		if fixtureRoot, err = os.MkdirTemp("", "nudge-store-bench-"); err != nil {
			b.Fatal(err)
		}
	}
	dir := filepath.Join(fixtureRoot, fmt.Sprintf("%s-%d-%d", name, n, perSession))
	if _, err := os.Stat(filepath.Join(dir, "done")); err == nil {
		return dir
	}
	ctx := context.Background()
	s, err := Open(ctx, Options{Dir: dir, Schema: schemaOf, NoSync: true})
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
	if err := os.WriteFile(filepath.Join(dir, "done"), nil, 0o644); err != nil {
		b.Fatal(err)
	}
	b.Logf("fixture %s: %d sessions x %d events built in %v", name, n, perSession, time.Since(start).Round(time.Millisecond))
	return dir
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

// BenchmarkFeatures reads random sessions' vectors from a store of -store.sessions sessions
// (50k by default, 1M with -tags slow), reopened so no session is cached: every read is one
// Badger lookup. Metrics: p50/p99 latency.
func BenchmarkFeatures(b *testing.B) {
	n := *flagFeatureSessions
	dir := buildFixture(b, "features", n, 3)
	ctx := context.Background()
	s, err := Open(ctx, Options{Dir: dir, Schema: schemaOf})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close(ctx)
	// A fresh random session per read (no block-cache reuse from repeating a small sample).
	ids := make([]string, max(b.N, 1))
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range ids {
		ids[i] = fmt.Sprint("s", rng.IntN(n))
	}
	out := make([]float64, testSchema.Len())
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		t := time.Now()
		if _, err := s.Features(ctx, "site", ids[i], t0+1e12, out); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1e3, "p99-µs")
	b.ReportMetric(float64(n), "sessions")
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
