package store

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/nudgehq/nudge/features"
)

func TestSeenFilter(t *testing.T) {
	f := newSeenFilter(0)
	rng := rand.New(rand.NewPCG(3, 4))
	const n = 3*seenMinCapacity + 123 // forces two new blocks
	added := make([]uint64, n)
	for i := range added {
		added[i] = rng.Uint64()
		f.add(added[i])
	}
	if len(f.blocks) < 3 || f.keys() != n {
		t.Fatalf("blocks %d keys %d, want >= 3 blocks and %d keys", len(f.blocks), f.keys(), n)
	}
	for i, h := range added {
		if !f.mayContain(h) {
			t.Fatalf("false negative for key %d", i)
		}
	}
	fp := 0
	const probes = 200_000
	for range probes {
		if f.mayContain(rng.Uint64()) {
			fp++
		}
	}
	// Each block is at most full at 16 bits per key, 8 bits set: well under 1% per block.
	if rate := float64(fp) / probes; rate > 0.02 {
		t.Fatalf("false positive rate %.4f over %d blocks", rate, len(f.blocks))
	}
	t.Logf("false positive rate %.4f%% over %d blocks", 100*float64(fp)/probes, len(f.blocks))
}

// batchOf returns n page views of sessions of 10 events, ids prefix-i, 3 sessions per visitor.
func batchOf(prefix string, lo, n int) []features.Event {
	evs := make([]features.Event, 0, n)
	for i := lo; i < lo+n; i++ {
		sess := fmt.Sprint(prefix, "s", i/10)
		evs = append(evs, pv(fmt.Sprint(prefix, i), sess, fmt.Sprint(prefix, "a", i/30), t0+int64(i)*sec, "/"))
	}
	return evs
}

// TestSeenFilterRestart: the filter is rebuilt at Open from the dedupe and visitor keys, so
// duplicates of events stored before a restart are still found and known visitors still get
// their history.
func TestSeenFilterRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openStore(t, dir, nil)
	const n = 3000
	for lo := 0; lo < n; lo += 500 {
		if res := mustAppend(t, s, "site", batchOf("e", lo, 500)...); res.Stored != 500 {
			t.Fatalf("append: %+v", res)
		}
	}
	// Visitor ea0 converts twice and is identified: one conversion and one link prefix.
	mustAppend(t, s, "site", conv("c1", "es0", "ea0", t0+9*sec, 10), conv("c2", "es1", "ea0", t0+19*sec, 5),
		identify("i1", "es1", "ea0", "u1", t0+19*sec))
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir, nil)
	if got, want := s.w.seen.keys(), (n+3)+n/10+n/30+2; got != want {
		t.Fatalf("filter rebuilt with %d keys, want %d (events, clients, visitors, prefixes)", got, want)
	}
	res := mustAppend(t, s, "site", batchOf("e", 1000, 200)...)
	if res.Stored != 0 || res.Duplicates != 200 {
		t.Fatalf("re-append after restart: %+v", res)
	}
	// A new session of a visitor seen before the restart has that visitor's history.
	ev := pv("new1", "new-s", "ea0", t0+int64(n)*sec, "/")
	if res := mustAppend(t, s, "site", ev); res.Stored != 1 {
		t.Fatalf("new event: %+v", res)
	}
	if got := feature(t, s, "site", "new-s", "sessions_30d", t0+int64(n)*sec); got != 3 {
		t.Fatalf("sessions_30d of a known visitor after restart = %v, want 3", got)
	}
	if got := feature(t, s, "site", "new-s", "prior_monetary", t0+int64(n)*sec); got != 15 {
		t.Fatalf("prior_monetary of a known visitor after restart = %v, want 15", got)
	}
	// The link (u1) is found after the restart: another anonymous id of u1 gets ea0's history.
	mustAppend(t, s, "site", identify("i2", "other-s", "other-a", "u1", t0+int64(n)*sec))
	ev2 := pv("new2", "other-s2", "other-a", t0+int64(n+1)*sec+hr, "/")
	mustAppend(t, s, "site", ev2)
	if got := feature(t, s, "site", "other-s2", "prior_conversions", ev2.TS); got != 2 {
		t.Fatalf("prior_conversions through the link after restart = %v, want 2", got)
	}
}

// TestSeenFilterFalsePositives: with a filter that answers "maybe" to everything, every
// lookup goes to Badger and the answers are still exact.
func TestSeenFilterFalsePositives(t *testing.T) {
	s := openStore(t, "", nil)
	if res := mustAppend(t, s, "site", batchOf("e", 0, 100)...); res.Stored != 100 {
		t.Fatalf("append: %+v", res)
	}
	s.mu.Lock() // the writer is idle; the lock orders this write before its next group
	for i := range s.w.seen.blocks {
		for j := range s.w.seen.blocks[i].words {
			s.w.seen.blocks[i].words[j] = ^uint64(0)
		}
	}
	s.w.recentIDs = newLruish[string](2) // forget the recent ids: Badger must answer
	s.mu.Unlock()
	batch := append(batchOf("e", 50, 100), batchOf("x", 0, 30)...)
	res := mustAppend(t, s, "site", batch...)
	if res.Stored != 80 || res.Duplicates != 50 {
		t.Fatalf("saturated filter: %+v, want 80 stored and 50 duplicates", res)
	}
	if res.Sessions[0] != "es5" || res.Sessions[len(batch)-1] != "xs2" {
		t.Fatalf("sessions %v ... %v", res.Sessions[0], res.Sessions[len(batch)-1])
	}
	if got := feature(t, s, "site", "xs0", "sessions_30d", t0+10*sec); got != 0 {
		t.Fatalf("new visitor through a saturated filter has %v prior sessions", got)
	}
}

// BenchmarkSeenMayContain is the filter lookup of a key never added (the usual answer for a
// new event's dedupe key), on a filter of about a million keys (five blocks).
func BenchmarkSeenMayContain(b *testing.B) {
	f := newSeenFilter(0)
	rng := rand.New(rand.NewPCG(5, 6))
	for range 1 << 20 {
		f.add(rng.Uint64())
	}
	probes := make([]uint64, 1<<16)
	for i := range probes {
		probes[i] = rng.Uint64()
	}
	b.ResetTimer()
	hits := 0
	for i := range b.N {
		if f.mayContain(probes[i&(len(probes)-1)]) {
			hits++
		}
	}
	b.ReportMetric(float64(len(f.blocks)), "blocks")
	if hits > b.N/10 {
		b.Fatalf("%d hits in %d probes", hits, b.N)
	}
}

// TestPrecheckMatchesFilter: the batch precheck hashes each event's dedupe key as add would
// (key2 of nsDedupe) and answers as mayContain.
func TestPrecheckMatchesFilter(t *testing.T) {
	w := writerState{seen: newSeenFilter(0)}
	evs := batchOf("p", 0, 40)
	for i := range evs {
		if i%3 == 0 {
			w.seen.add(w.seen.hash(key(nsDedupe, "site", evs[i].EventID)))
		}
	}
	w.precheck("site", evs)
	if w.preGen != w.seen.gen || len(w.pre) != len(evs) {
		t.Fatalf("precheck: generation %d (filter %d), %d answers", w.preGen, w.seen.gen, len(w.pre))
	}
	c := &chunk{}
	for i, ev := range evs {
		h := w.seen.hash(c.key2(nsDedupe, "site", ev.EventID))
		if w.pre[i].hash != h || w.pre[i].maybe != w.seen.mayContain(h) || (i%3 == 0 && !w.pre[i].maybe) {
			t.Fatalf("event %d: precheck %+v, hash %x, filter %v", i, w.pre[i], h, w.seen.mayContain(h))
		}
	}
}

// TestPrecheckStaleAcrossChunks: an event id repeated within one batch that spans several
// chunks is a duplicate although the batch's precheck ran before the first chunk's keys
// reached the filter (a chunk two links up is only in Badger by then).
func TestPrecheckStaleAcrossChunks(t *testing.T) {
	s := openStore(t, "", nil)
	s.w.chunkEvents = 3 // before the first Append: the queue's mutex orders it
	evs := batchOf("q", 0, 12)
	evs[11] = evs[0]
	evs[11].TS = evs[10].TS + sec
	res := mustAppend(t, s, "site", evs...)
	if res.Stored != 11 || res.Duplicates != 1 || res.Sessions[11] != res.Sessions[0] {
		t.Fatalf("batch of 12 with one repeat: %+v", res)
	}
}
