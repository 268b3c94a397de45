package store

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/nudgehq/nudge/features"
)

// pvBatch returns n page views of session sess (visitor anon), ids prefix0..prefix<n-1>.
func pvBatch(prefix, sess, anon string, n int) []features.Event {
	evs := make([]features.Event, n)
	for i := range evs {
		evs[i] = pv(fmt.Sprint(prefix, i), sess, anon, t0+int64(i)*sec, fmt.Sprint("/p/", i))
	}
	return evs
}

// TestFailedCommitInFlightFailsItsChildren: a chunk built on the overlay of a chunk whose
// commit then fails must not be committed either. Within a group (chunks of 3 events), the
// chunks before the failed one stay; the failed one and every later one leave nothing, and a
// retry stores exactly the missing events.
func TestFailedCommitInFlightFailsItsChildren(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, "", nil)
	s.w.chunkEvents = 3
	var commits atomic.Int32
	boom := errors.New("boom")
	s.w.testFailCommit = func() error {
		if commits.Add(1) == 2 {
			return boom
		}
		return nil
	}
	evs := pvBatch("e", "s1", "a1", 10) // chunks e0-e2, e3-e5 (fails), e6-e8, e9
	if _, err := s.Append(ctx, "site", evs); !errors.Is(err, boom) {
		t.Fatalf("append over a failed commit: %v, want boom", err)
	}
	info, got, err := s.Session(ctx, "site", "s1")
	if err != nil || len(got) != 3 || info.Events != 3 {
		t.Fatalf("after the failure: %d events (%+v, %v), want the first chunk's 3", len(got), info, err)
	}
	res := mustAppend(t, s, "site", pvBatch("e", "s1", "a1", 10)...)
	if res.Duplicates != 3 || res.Stored != 7 {
		t.Fatalf("retry: %+v", res)
	}
	if _, got, _ := s.Session(ctx, "site", "s1"); len(got) != 10 {
		t.Fatalf("after the retry: %d events", len(got))
	}
	st, _ := s.Stats(ctx, "site")
	if st.Events["page_view"] != 10 || st.Sessions != 1 || st.Visitors != 1 {
		t.Fatalf("stats %+v", st)
	}
	assertLiveEqualsReplay(t, s, "site", "s1", t0+10*sec)
}

// TestFailedCommitInFlightFailsTheNextGroup: group B, processed while group A's commit is in
// flight (on A's overlay: the same session), fails when A's commit fails; nothing of either
// is visible, and both retried are stored once.
func TestFailedCommitInFlightFailsTheNextGroup(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, "", nil)
	entered, release := make(chan struct{}), make(chan struct{})
	var commits atomic.Int32
	boom := errors.New("boom")
	s.w.testFailCommit = func() error {
		if commits.Add(1) == 1 { // A's commit: hold the writer until B is queued, then fail
			close(entered)
			<-release
			return boom
		}
		return nil
	}
	a := pvBatch("a", "s1", "v1", 4)
	b := pvBatch("b", "s1", "v1", 4)
	for i := range b {
		b[i].TS += 10 * sec
	}
	errA := make(chan error, 1)
	go func() { _, err := s.Append(ctx, "site", a); errA <- err }()
	<-entered
	errB := make(chan error, 1)
	go func() { _, err := s.Append(ctx, "site", b); errB <- err }()
	waitQueued(t, s, len(b))
	close(release)
	if err := <-errA; !errors.Is(err, boom) {
		t.Fatalf("A: %v, want boom", err)
	}
	if err := <-errB; !errors.Is(err, boom) {
		t.Fatalf("B, built on A: %v, want boom", err)
	}
	if _, _, err := s.Session(ctx, "site", "s1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("failed groups visible: %v", err)
	}
	if _, err := s.ResolveSession(ctx, "site", "s1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("failed groups' session pointer visible: %v", err)
	}
	for _, evs := range [][]features.Event{a, b} {
		if res := mustAppend(t, s, "site", evs...); res.Stored != len(evs) || res.Duplicates != 0 {
			t.Fatalf("retry: %+v", res)
		}
	}
	if info, got, err := s.Session(ctx, "site", "s1"); err != nil || len(got) != 8 || info.Events != 8 {
		t.Fatalf("after the retries: %d events (%+v, %v)", len(got), info, err)
	}
	st, _ := s.Stats(ctx, "site")
	if st.Events["page_view"] != 8 || st.Sessions != 1 || st.Visitors != 1 {
		t.Fatalf("stats %+v", st)
	}
	assertLiveEqualsReplay(t, s, "site", "s1", t0+20*sec)
}

// TestPipelinedGroupsAcrossRestart: concurrent appenders keep the writer's commits in
// flight while it builds the next group (returning visitors, sessions spanning groups,
// retries); after a restart every session's live vector equals its replay, every event is
// stored once and the counters agree.
func TestPipelinedGroupsAcrossRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openStore(t, dir, nil)
	s.w.chunkEvents = 7
	const workers, batches, per = 8, 12, 10
	errs := make(chan error, workers)
	for w := range workers {
		go func() {
			for b := range batches {
				// Visitor w: a new session every 3 batches (history of its earlier ones), a
				// conversion ending each session.
				sess := fmt.Sprintf("w%d-s%d", w, b/3)
				evs := make([]features.Event, per)
				for i := range evs {
					ts := t0 + int64(b*per+i)*sec + int64(b/3)*hr
					evs[i] = pv(fmt.Sprintf("w%d-b%d-%d", w, b, i), sess, fmt.Sprint("a", w), ts, "/")
				}
				if b%3 == 2 {
					evs[per-1] = conv(fmt.Sprintf("w%d-b%d-c", w, b), sess, fmt.Sprint("a", w), evs[per-1].TS, 10)
				}
				if _, err := s.Append(ctx, "site", evs); err != nil {
					errs <- err
					return
				}
				if b%4 == 1 { // a retry stores nothing
					if res, err := s.Append(ctx, "site", evs); err != nil || res.Stored != 0 {
						errs <- fmt.Errorf("retry: %+v %v", res, err)
						return
					}
				}
			}
			errs <- nil
		}()
	}
	for range workers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir, nil)
	st, _ := s.Stats(ctx, "site")
	if st.Events["page_view"]+st.Events["macro_conversion"] != workers*batches*per || st.Sessions != workers*batches/3 ||
		st.Visitors != workers || st.Duplicates != int64(workers*per*(batches/4)) {
		t.Fatalf("stats %+v", st)
	}
	withHist := 0
	for w := range workers {
		for k := range batches / 3 {
			id := fmt.Sprintf("w%d-s%d", w, k)
			info, got, err := s.Session(ctx, "site", id)
			if err != nil || len(got) != 3*per || info.Events != 3*per {
				t.Fatalf("session %s: %d events (%+v, %v)", id, len(got), info, err)
			}
			assertLiveEqualsReplay(t, s, "site", id, info.LastTS)
			var rec sessionRecord
			if err := s.sessionRecord("site", id, &rec); err != nil {
				t.Fatal(err)
			}
			if rec.Hist.Sessions30d != k || rec.Hist.Conversions != k {
				t.Errorf("session %s: history %+v, want %d earlier sessions and conversions", id, rec.Hist, k)
			}
			if k > 0 {
				withHist++
			}
		}
	}
	if withHist == 0 {
		t.Fatal("no session with history")
	}
}
