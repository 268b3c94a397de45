package store

import (
	"context"
	"testing"
	"time"

	"github.com/nudgehq/nudge/features"
)

// appendAsync runs s.Append in a goroutine and returns the channel of its error.
func appendAsync(s *Store, evs []features.Event) <-chan error {
	done := make(chan error, 1)
	go func() {
		_, err := s.Append(context.Background(), "site", evs)
		done <- err
	}()
	return done
}

// waitAppend waits for an Append started by appendAsync. The bound only keeps a broken
// syncer from hanging the test (a wait for the writer that is never woken); it asserts
// no speed.
func waitAppend(t *testing.T, done <-chan error, what string) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: not acknowledged after 30s", what)
	}
}

// TestSyncDelayLoneBatch: with the writer idle nothing more is coming, so the fsync starts at
// once whatever the delay (an hour here: a syncer that waited for it would hang the test).
func TestSyncDelayLoneBatch(t *testing.T) {
	s := openStore(t, t.TempDir(), func(o *Options) { o.SyncDelay = time.Hour })
	for i, id := range []string{"a", "b", "c"} {
		waitAppend(t, appendAsync(s, []features.Event{pv(id, "s1", "v1", int64(1000*(i+1)), "/")}), "append "+id)
		if got := s.Syncs(); got != int64(i+1) {
			t.Fatalf("after %d lone appends: %d syncs", i+1, got)
		}
	}
}

// waitSyncs waits until the store has made n fsyncs (bounded like waitAppend).
func waitSyncs(t *testing.T, s *Store, n int64) {
	t.Helper()
	for range 30_000 {
		if s.Syncs() >= n {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("%d syncs after 30s, want %d", s.Syncs(), n)
}

// groupSyncs appends batch A and then batch B, queued while the writer holds A (in the group
// hook), so that the writer goes from A to B without being idle in between. While the writer
// holds B, hold runs; then B goes on. It returns the number of fsyncs once both are
// acknowledged. (A batch is acknowledged only after the writer has also published its commit,
// which it does while working on the next one, so A's acknowledgement cannot be awaited while
// B is held; the fsyncs can.)
func groupSyncs(t *testing.T, delay time.Duration, hold func(s *Store)) int64 {
	s := openStore(t, t.TempDir(), func(o *Options) { o.SyncDelay = delay })
	gate := make(chan chan struct{}, 2)
	held := make(chan struct{}, 2)
	s.testHookGroup = func() {
		if g, ok := <-gate; ok {
			held <- struct{}{}
			<-g
		}
	}
	relA, relB := make(chan struct{}), make(chan struct{})
	gate <- relA
	gate <- relB
	close(gate)
	doneA := appendAsync(s, []features.Event{pv("a", "s1", "v1", 1000, "/")})
	<-held // the writer has taken A and holds it
	doneB := appendAsync(s, []features.Event{pv("b", "s2", "v2", 1000, "/")})
	waitQueued(t, s, 1) // B's one event waits in the queue
	close(relA)         // A is committed; the writer takes B and holds it
	<-held
	hold(s)
	close(relB)
	waitAppend(t, doneA, "append A")
	waitAppend(t, doneB, "append B")
	return s.Syncs()
}

// TestSyncDelayGroupsCommits: A's commit arrives while the writer is busy with B, so the
// syncer waits for B's commit and one fsync covers both. Without the delay A's commit is
// synced at once (the test waits for that fsync before B goes on) and B needs another.
func TestSyncDelayGroupsCommits(t *testing.T) {
	if got := groupSyncs(t, time.Hour, func(*Store) {}); got != 1 {
		t.Errorf("with a delay: %d syncs for A and B, want 1", got)
	}
	if got := groupSyncs(t, -1, func(s *Store) { waitSyncs(t, s, 1) }); got != 2 {
		t.Errorf("without a delay: %d syncs for A and B, want 2", got)
	}
}

// TestSyncDelayBound: a writer busy for longer than the delay does not hold back the fsync
// of what is already committed: A's commit is synced while the writer still holds B.
func TestSyncDelayBound(t *testing.T) {
	if got := groupSyncs(t, 20*time.Millisecond, func(s *Store) { waitSyncs(t, s, 1) }); got != 2 {
		t.Errorf("%d syncs for A and B, want 2", got)
	}
}
