package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nudgehq/nudge/features"
)

func TestIdentityStitching(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, "", nil)
	const site = "shop"
	day := 24 * hr
	// Device 1 (anon a1): a visit that identifies as u1 and converts.
	mustAppend(t, s, site,
		pv("d1-1", "s1", "a1", t0, "/"),
		identify("d1-2", "s1", "a1", "u1", t0+mn),
		conv("d1-3", "s1", "a1", t0+2*mn, 40),
	)
	// Device 2 (anon a2), two days later: browses, then logs in as u1.
	mustAppend(t, s, site,
		pv("d2-1", "s2", "a2", t0+2*day, "/"),
		identify("d2-2", "s2", "a2", "u1", t0+2*day+mn),
	)
	// Device 2, next visit: its history spans both devices.
	mustAppend(t, s, site, pv("d2-3", "s3", "a2", t0+3*day, "/"))
	want := features.VisitorHistory{Sessions7d: 2, Sessions30d: 2, LastSessionTS: t0 + 2*day, Conversions: 1, LastConversionTS: t0 + 2*mn, Monetary: 40}
	got, err := s.VisitorHistory(ctx, site, "a2", t0+3*day)
	if err != nil || got != want {
		t.Fatalf("VisitorHistory(a2) = %+v, %v; want %+v", got, err, want)
	}
	if f := feature(t, s, site, "s3", "sessions_7d", t0+3*day); f != 2 {
		t.Fatalf("live sessions_7d of s3 = %v, want 2", f)
	}
	if f := feature(t, s, site, "s3", "prior_conversions", t0+3*day); f != 1 {
		t.Fatalf("live prior_conversions of s3 = %v, want 1", f)
	}
	// Device 1 sees device 2's sessions too (linked through u1).
	if got, _ := s.VisitorHistory(ctx, site, "a1", t0+4*day); got.Sessions30d != 3 {
		t.Fatalf("VisitorHistory(a1).Sessions30d = %d, want 3", got.Sessions30d)
	}
	// Before device 2 identified, its session s2 had no history of device 1.
	if got, _ := s.VisitorHistory(ctx, site, "a2", t0+2*day); got != (features.VisitorHistory{}) {
		t.Fatalf("history of a2 before its identify = %+v, want zero", got)
	}

	// A third device a3 is first u2, then claims u1: recorded, but not merged.
	mustAppend(t, s, site,
		pv("d3-1", "s4", "a3", t0+5*day, "/"),
		identify("d3-2", "s4", "a3", "u2", t0+5*day+mn),
		conv("d3-3", "s4", "a3", t0+5*day+2*mn, 500),
		identify("d3-4", "s4", "a3", "u1", t0+5*day+3*mn),
	)
	mustAppend(t, s, site, pv("d2-4", "s5", "a2", t0+6*day, "/"))
	got, _ = s.VisitorHistory(ctx, site, "a2", t0+6*day)
	if got.Conversions != 1 || got.Monetary != 40 || got.Sessions7d != 3 {
		t.Fatalf("u1's history took in u2's device: %+v", got)
	}
	got, _ = s.VisitorHistory(ctx, site, "a3", t0+7*day)
	if got.Conversions != 1 || got.Monetary != 500 || got.Sessions30d != 1 {
		t.Fatalf("a3 (u2) history = %+v, want only its own session and conversion", got)
	}
	links, err := s.Identities(ctx, site, "u1")
	if err != nil {
		t.Fatal(err)
	}
	var anons []string
	for _, l := range links {
		anons = append(anons, l.AnonymousID)
	}
	if !slices.Equal(anons, []string{"a1", "a2", "a3"}) || links[2].EventID != "d3-4" || links[0].TS != t0+mn {
		t.Fatalf("links of u1 = %+v", links)
	}
	if l2, _ := s.Identities(ctx, site, "u2"); len(l2) != 1 || l2[0].AnonymousID != "a3" {
		t.Fatalf("links of u2 = %+v", l2)
	}
	info, _, err := s.Session(ctx, site, "s4")
	if err != nil || info.UserID != "u2" {
		t.Fatalf("session s4 user = %q (%v), want u2 (first identify)", info.UserID, err)
	}
	// Live equals replay for every session of this story.
	for _, id := range []string{"s1", "s2", "s3", "s4", "s5"} {
		assertLiveEqualsReplay(t, s, site, id, t0+8*day)
	}
}

func TestConsent(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, "", nil)
	noConsent := func(e features.Event) features.Event { e.Consent = false; return e }
	res := mustAppend(t, s, "site",
		pv("e1", "s1", "a1", t0, "/a"),
		pv("e2", "s1", "a1", t0+sec, "/b"),
		noConsent(pv("e3", "s1", "a1", t0+2*sec, "/c")), // withdraws consent
		pv("e4", "s1", "a1", t0+3*sec, "/d"),            // consented again, still not logged
	)
	if res.Stored != 2 || res.Unlogged != 2 {
		t.Fatalf("append: %+v", res)
	}
	info, evs, err := s.Session(ctx, "site", "s1")
	if err != nil {
		t.Fatal(err)
	}
	if got := eventIDs(evs); !slices.Equal(got, []string{"e1", "e2"}) {
		t.Fatalf("logged %v, want e1 e2", got)
	}
	if info.Logged || info.Events != 4 {
		t.Fatalf("info %+v: want Logged=false, Events=4", info)
	}
	if f := feature(t, s, "site", "s1", "page_views", t0+3*sec); f != 4 {
		t.Fatalf("live page_views = %v, want 4 (unlogged events count live)", f)
	}
	// Replay sees only the log.
	vec := make([]float64, testSchema.Len())
	if _, err := s.Replay(ctx, "site", "s1", t0+3*sec, vec); err != nil {
		t.Fatal(err)
	}
	if i, _ := testSchema.Index("page_views"); vec[i] != 2 {
		t.Fatalf("replayed page_views = %v, want 2", vec[i])
	}
	// A retry of the unlogged events is not folded twice while the process lives.
	if res := mustAppend(t, s, "site", noConsent(pv("e3", "s1", "a1", t0+2*sec, "/c"))); res.Duplicates != 1 {
		t.Fatalf("retried unlogged event: %+v", res)
	}

	// A session without consent from its first event: live only, nowhere in the indexes.
	mustAppend(t, s, "site", noConsent(pv("n1", "s2", "a2", t0+hr, "/")), noConsent(pv("n2", "s2", "a2", t0+hr+sec, "/x")))
	if f := feature(t, s, "site", "s2", "page_views", t0+hr+sec); f != 2 {
		t.Fatalf("live page_views of unconsented session = %v, want 2", f)
	}
	if _, evs, _ := s.Session(ctx, "site", "s2"); len(evs) != 0 {
		t.Fatalf("unconsented session logged %d events", len(evs))
	}
	var scanned []string
	if err := s.ScanSessions(ctx, "site", 0, t0+24*hr, func(si SessionInfo) error { scanned = append(scanned, si.Session); return nil }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(scanned, []string{"s1"}) {
		t.Fatalf("ScanSessions = %v, want [s1]", scanned)
	}
	st, _ := s.Stats(ctx, "site")
	if st.Unlogged != 4 || st.Events["page_view"] != 2 || st.Sessions != 1 || st.Visitors != 1 || st.Duplicates != 1 {
		t.Fatalf("stats %+v", st)
	}
	if h, _ := s.VisitorHistory(ctx, "site", "a2", t0+48*hr); h != (features.VisitorHistory{}) {
		t.Fatalf("unconsented visitor has history %+v", h)
	}
}

func TestScanAndNotFound(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, "", nil)
	for i, off := range []int64{3 * hr, 1 * hr, 2 * hr, 5 * hr} {
		mustAppend(t, s, "site", pv(fmt.Sprint("e", i), fmt.Sprint("s", i), fmt.Sprint("a", i), t0+off, "/"))
	}
	var got []string
	err := s.ScanSessions(ctx, "site", t0+hr, t0+5*hr, func(si SessionInfo) error { got = append(got, si.Session); return nil })
	if err != nil || !slices.Equal(got, []string{"s1", "s2", "s0"}) {
		t.Fatalf("ScanSessions = %v, %v", got, err)
	}
	stop := errors.New("stop")
	if err := s.ScanSessions(ctx, "site", 0, t0+10*hr, func(SessionInfo) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("callback error not returned: %v", err)
	}
	if _, _, err := s.Session(ctx, "site", "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Session(nope) = %v", err)
	}
	if _, err := s.Features(ctx, "site", "nope", t0, nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Features(nope) = %v", err)
	}
	if _, err := s.Replay(ctx, "site", "nope", t0, nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Replay(nope) = %v", err)
	}
	if _, err := s.ResolveSession(ctx, "site", "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ResolveSession(nope) = %v", err)
	}
	if _, err := s.Features(ctx, "site", "s0", t0, make([]float64, 3)); !errors.Is(err, features.ErrSchemaMismatch) {
		t.Fatalf("Features with a short vector = %v", err)
	}
	if _, err := s.Stats(ctx, "empty"); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrentAppend(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir(), nil)
	const workers, batches, per = 16, 20, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range batches {
				evs := make([]features.Event, per)
				for i := range evs {
					// Each worker is one visitor with one session per 5 batches.
					evs[i] = pv(fmt.Sprintf("w%d-b%d-%d", w, b, i), fmt.Sprintf("w%d-s%d", w, b/5),
						fmt.Sprint("a", w), t0+int64(b*per+i)*sec, "/")
				}
				res, err := s.Append(ctx, "site", evs)
				if err != nil {
					errs <- err
					return
				}
				// Every third batch is retried: nothing is stored twice.
				if b%3 == 0 {
					res2, err := s.Append(ctx, "site", evs)
					if err != nil || res2.Duplicates != per || res2.Stored != 0 {
						errs <- fmt.Errorf("retry: %+v %v", res2, err)
						return
					}
				}
				if res.Stored != per {
					errs <- fmt.Errorf("batch stored %d of %d", res.Stored, per)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	st, _ := s.Stats(ctx, "site")
	if st.Events["page_view"] != workers*batches*per || st.Sessions != workers*batches/5 || st.Visitors != workers {
		t.Fatalf("stats %+v", st)
	}
	for w := range workers {
		for k := range batches / 5 {
			info, evs, err := s.Session(ctx, "site", fmt.Sprintf("w%d-s%d", w, k))
			if err != nil || len(evs) != 5*per || info.Events != 5*per {
				t.Fatalf("session w%d-s%d: %d events (%+v, %v)", w, k, len(evs), info, err)
			}
		}
	}
}

func TestCloseDrains(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, nil)
	ctx := context.Background()
	var mu sync.Mutex
	acked := map[string]bool{}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := 0; ; b++ {
				evs := []features.Event{pv(fmt.Sprintf("w%d-%d", w, b), fmt.Sprint("s", w), "a", t0+int64(b)*sec, "/")}
				_, err := s.Append(ctx, "site", evs)
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				acked[evs[0].EventID] = true
				mu.Unlock()
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if _, err := s.Append(ctx, "site", []features.Event{pv("late", "s", "a", t0, "/")}); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}
	if _, err := s.Stats(ctx, "site"); !errors.Is(err, ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatalf("second close: %v", err)
	}
	s = openStore(t, dir, nil)
	stored := 0
	for w := range 8 {
		_, evs, err := s.Session(ctx, "site", fmt.Sprint("s", w))
		if err != nil && !errors.Is(err, ErrNotFound) {
			t.Fatal(err)
		}
		for _, ev := range evs {
			if !acked[ev.EventID] {
				// Written but the ack raced with Close: allowed, but it must be unique.
				t.Logf("stored but not acked: %s", ev.EventID)
			}
			stored++
		}
	}
	if len(acked) == 0 {
		t.Fatal("nothing was acknowledged before Close")
	}
	st, _ := s.Stats(ctx, "site")
	if st.Events["page_view"] != int64(stored) || stored < len(acked) {
		t.Fatalf("%d acked, %d stored, stats %d", len(acked), stored, st.Events["page_view"])
	}
	for id := range acked {
		if res := mustAppend(t, s, "site", pv(id, "x", "a", t0, "/")); res.Duplicates != 1 {
			t.Fatalf("acked event %s not found after restart", id)
		}
	}
}

func TestOverloadAndCancel(t *testing.T) {
	ctx := context.Background()
	entered := make(chan struct{}, 10)
	release := make(chan struct{})
	s := openStore(t, "", func(o *Options) { o.QueueLimit = 10 })
	var once sync.Once
	s.testHookGroup = func() {
		entered <- struct{}{}
		once.Do(func() { <-release })
	}
	batch := func(prefix string, n int) []features.Event {
		evs := make([]features.Event, n)
		for i := range evs {
			evs[i] = pv(fmt.Sprint(prefix, i), prefix, "a", t0+int64(i), "/")
		}
		return evs
	}
	results := make(chan error, 2)
	go func() { _, err := s.Append(ctx, "site", batch("first", 5)); results <- err }()
	<-entered // the writer holds the first batch and is blocked
	go func() { _, err := s.Append(ctx, "site", batch("second", 8)); results <- err }()
	waitQueued(t, s, 8)
	if _, err := s.Append(ctx, "site", batch("third", 5)); !errors.Is(err, ErrOverloaded) {
		t.Fatalf("append over the queue limit: %v, want ErrOverloaded", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancelled := make(chan error, 1)
	go func() { _, err := s.Append(cctx, "site", batch("cancelled", 1)); cancelled <- err }()
	waitQueued(t, s, 9)
	cancel()
	if err := <-cancelled; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled append: %v", err)
	}
	close(release)
	for range 2 {
		if err := <-results; err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := s.Session(ctx, "site", "cancelled"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("cancelled batch was written: %v", err)
	}
	if _, evs, _ := s.Session(ctx, "site", "second"); len(evs) != 8 {
		t.Fatalf("second batch: %d events", len(evs))
	}
}

func waitQueued(t *testing.T, s *Store, n int) {
	t.Helper()
	for range 2000 {
		s.mu.Lock()
		p := s.pending
		s.mu.Unlock()
		if p == n {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("queue never reached %d events", n)
}

// A failed write acknowledges an error to every batch of the group and leaves no trace in
// the caches: the next write sees the store as it is on disk.
func TestFailedGroupLeavesNothing(t *testing.T) {
	ctx := context.Background()
	var fail bool
	s := openStore(t, "", func(o *Options) {
		o.Schema = func(site string) (*features.Schema, error) {
			if fail && site == "boom" {
				return nil, errors.New("no schema")
			}
			return testSchema, nil
		}
	})
	mustAppend(t, s, "site", pv("e1", "s1", "a1", t0, "/"))
	fail = true
	if _, err := s.Append(ctx, "boom", []features.Event{pv("e1", "s1", "a1", t0, "/")}); err == nil {
		t.Fatal("append with a failing schema succeeded")
	}
	fail = false
	if res := mustAppend(t, s, "boom", pv("e1", "s1", "a1", t0, "/")); res.Stored != 1 {
		t.Fatalf("after a refused batch: %+v", res)
	}
	// A commit failure: make the transaction too big for Badger.
	big := make([]features.Event, 1)
	big[0] = pv("huge", "s9", "a9", t0, "/")
	big[0].Props["blob"] = string(make([]byte, 6<<20))
	if _, err := s.Append(ctx, "site", big); err == nil {
		t.Fatal("oversized batch succeeded")
	}
	if _, _, err := s.Session(ctx, "site", "s9"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("failed batch visible: %v", err)
	}
	if _, err := s.ResolveSession(ctx, "site", "s9"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("failed batch's session pointer visible: %v", err)
	}
	// The failed event id is not remembered as a duplicate; a sane retry is stored.
	big[0].Props = map[string]string{"path": "/"}
	if res := mustAppend(t, s, "site", big...); res.Stored != 1 || res.Sessions[0] != "s9" {
		t.Fatalf("retry after failure: %+v", res)
	}
}
