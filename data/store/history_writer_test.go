package store

import (
	"fmt"
	"testing"

	"github.com/nudgehq/nudge/features"
)

// TestHistoryOfVisitorsFirstSeenInFlight: a returning visitor whose earlier sessions are all
// in the chunk being built or in its in-flight parent (its visitor key not committed yet, so
// the writer reads no Badger iterator for its sessions) gets the same history as one whose
// earlier sessions are committed, and the same as replay.
func TestHistoryOfVisitorsFirstSeenInFlight(t *testing.T) {
	for _, tc := range []struct {
		name  string
		chunk int // events per chunk: 2 puts each session in its own chunk, built on its parent's
	}{{"same chunk", maxChunkEvents}, {"parent chunk", 2}} {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t, "", nil)
			s.w.chunkEvents = tc.chunk // before the first Append: the queue's mutex orders it
			session := func(client string, start int64, n int) []features.Event {
				evs := make([]features.Event, n)
				for i := range evs {
					evs[i] = pv(fmt.Sprint(client, "-", i), client, "A", start+int64(i)*sec, "/")
				}
				return evs
			}
			var batch []features.Event
			for k := range 3 { // visitor A's first three sessions in one batch, an hour apart
				batch = append(batch, session(fmt.Sprint("c", k), t0+int64(k)*hr, 2)...)
			}
			batch = append(batch, session("other", t0+3*hr, 2)...) // a new visitor's first session
			batch[len(batch)-1].AnonymousID, batch[len(batch)-2].AnonymousID = "B", "B"
			if res := mustAppend(t, s, "site", batch...); res.Stored != len(batch) {
				t.Fatalf("append: %+v", res)
			}
			// A fourth session in a later batch: the first three are committed.
			if res := mustAppend(t, s, "site", session("c3", t0+4*hr, 2)...); res.Stored != 2 {
				t.Fatalf("append: %+v", res)
			}
			for i, want := range []int{0, 1, 2, 3} {
				id := fmt.Sprint("c", i)
				var rec sessionRecord
				if err := s.sessionRecord("site", id, &rec); err != nil {
					t.Fatal(err)
				}
				if rec.Hist.Sessions30d != want || rec.Hist.Sessions7d != want {
					t.Errorf("session %s: history %+v, want %d prior sessions", id, rec.Hist, want)
				}
				if want > 0 && rec.Hist.LastSessionTS != t0+int64(i-1)*hr {
					t.Errorf("session %s: last session at %d, want %d", id, rec.Hist.LastSessionTS, t0+int64(i-1)*hr)
				}
				assertLiveEqualsReplay(t, s, "site", id, t0+5*hr)
			}
			var rec sessionRecord
			if err := s.sessionRecord("site", "other", &rec); err != nil {
				t.Fatal(err)
			}
			if rec.Hist.Sessions30d != 0 {
				t.Errorf("new visitor B: history %+v", rec.Hist)
			}
		})
	}
}

// TestHistoryPastTheSessionCache: a visitor with more sessions than the writer caches the
// start times of (maxCachedSessions) leaves the cache and has its history read from Badger,
// the same as replay.
func TestHistoryPastTheSessionCache(t *testing.T) {
	s := openStore(t, "", nil)
	n := maxCachedSessions + 6
	for k := range n {
		id := fmt.Sprint("c", k)
		start := t0 + int64(k)*hr
		if res := mustAppend(t, s, "site", pv(id+"-0", id, "A", start, "/"), pv(id+"-1", id, "A", start+sec, "/")); res.Stored != 2 {
			t.Fatalf("append: %+v", res)
		}
		s.mu.Lock() // the writer is idle (it published the group before Append returned)
		_, cached := s.w.sessTS.get(string(key(nsVisitorSess, "site", "A")))
		s.mu.Unlock()
		if want := k < maxCachedSessions; cached != want {
			t.Fatalf("after %d sessions: cached %v, want %v", k+1, cached, want)
		}
	}
	for _, k := range []int{1, maxCachedSessions - 1, maxCachedSessions, n - 1} {
		id := fmt.Sprint("c", k)
		var rec sessionRecord
		if err := s.sessionRecord("site", id, &rec); err != nil {
			t.Fatal(err)
		}
		if want := min(k, 24*7-1); rec.Hist.Sessions30d != k || rec.Hist.Sessions7d != want || rec.Hist.LastSessionTS != t0+int64(k-1)*hr {
			t.Errorf("session %s: history %+v, want %d prior sessions (%d within 7 days)", id, rec.Hist, k, want)
		}
		assertLiveEqualsReplay(t, s, "site", id, t0+int64(n)*hr)
	}
}
