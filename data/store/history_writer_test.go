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
