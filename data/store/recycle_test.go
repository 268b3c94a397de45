package store

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/nudgehq/nudge/features"
)

// TestChunkReuseKeepsCommittedData: the writer reuses a settled chunk's maps, key and value
// blocks and Badger entry slabs for the next chunk, and here overwrites that memory with
// poison when it does (testPoisonRecycled). Were Badger still applying the chunk's commit,
// or a cache still holding a slice of its blocks, poison would reach the database or the
// caches (and -race would see Badger read what reset writes): every stored event, dedupe
// key and session record must read back exactly as ingested, and the cached session records
// must equal the stored ones. Chunks of 3 events make every batch a chain of chunks, each
// built on its in-flight parent's overlay.
func TestChunkReuseKeepsCommittedData(t *testing.T) {
	for _, chunk := range []int{maxChunkEvents, 3} {
		t.Run(fmt.Sprint("chunk", chunk), func(t *testing.T) {
			ctx := context.Background()
			s := openStore(t, "", nil)
			s.w.chunkEvents = chunk // before the first Append: the queue's mutex orders it
			s.w.testPoisonRecycled = true
			rng := rand.New(rand.NewPCG(7, uint64(chunk)))
			evs := genStream(rng, 600)
			byID := map[string]features.Event{}
			stored := 0
			for lo := 0; lo < len(evs); {
				hi := min(len(evs), lo+1+rng.IntN(40))
				batch := slices.Clone(evs[lo:hi])
				res, err := s.Append(ctx, "site", batch)
				if err != nil {
					t.Fatal(err)
				}
				stored += res.Stored
				for _, ev := range batch {
					byID[ev.EventID] = ev
				}
				lo = hi
			}
			// A retry of everything is all duplicates, with the same sessions (the dedupe
			// keys and the recent unlogged ids).
			for lo := 0; lo < len(evs); lo += 50 {
				batch := slices.Clone(evs[lo:min(len(evs), lo+50)])
				res, err := s.Append(ctx, "site", batch)
				if err != nil {
					t.Fatal(err)
				}
				if res.Stored != 0 || res.Duplicates != len(batch) {
					t.Fatalf("retry: %+v", res)
				}
				for i, ev := range batch {
					if want := byID[ev.EventID].Session; res.Sessions[i] != want {
						t.Fatalf("retry of %s: session %q, want %q", ev.EventID, res.Sessions[i], want)
					}
				}
			}
			s.mu.Lock() // orders the read of the writer's counter after its last group
			reused := s.w.reused
			s.mu.Unlock()
			if reused == 0 {
				t.Fatal("no chunk was reused: the test says nothing")
			}

			nEvents, nSessions := 0, 0
			err := s.db.View(func(txn *badger.Txn) error {
				it := txn.NewIterator(badger.DefaultIteratorOptions)
				defer it.Close()
				for it.Rewind(); it.Valid(); it.Next() {
					item := it.Item()
					k := item.KeyCopy(nil)
					v, err := item.ValueCopy(nil)
					if err != nil {
						return err
					}
					if bytes.Contains(k, poisonKey) || bytes.Contains(v, poisonKey) || bytes.Contains(k, []byte{0xA5, 0xA5, 0xA5, 0xA5}) {
						t.Errorf("poisoned key %x", k)
					}
					switch k[0] {
					case nsEvent:
						nEvents++
						var got features.Event
						if err := decodeEvent(v, &got); err != nil {
							return err
						}
						want, ok := byID[got.EventID]
						if !ok {
							t.Errorf("stored event %q was never sent", got.EventID)
							continue
						}
						if wk := eventKey("site", want.Session, want.TS, want.EventID); !bytes.Equal(k, wk) {
							t.Errorf("event %s: key %x, want %x", want.EventID, k, wk)
						}
						if len(got.Props) == 0 {
							got.Props = map[string]string{}
						}
						if got.Type != want.Type || got.TS != want.TS || got.Value != want.Value ||
							got.SessionID != want.SessionID || got.AnonymousID != want.AnonymousID ||
							got.UserID != want.UserID || got.Name != want.Name || got.Session != want.Session ||
							got.Consent != want.Consent || !maps.Equal(got.Props, want.Props) {
							t.Errorf("event %s: stored %+v, sent %+v", want.EventID, got, want)
						}
					case nsDedupe:
						_, rest, err := readStr(k[1:])
						if err != nil {
							return err
						}
						id, _, err := readStr(rest)
						if err != nil {
							return err
						}
						if want := byID[id].Session; string(v) != want {
							t.Errorf("dedupe key of %s: session %q, want %q", id, v, want)
						}
					case nsSession:
						nSessions++
						var rec sessionRecord
						if err := decodeSession(v, &rec); err != nil {
							t.Errorf("session key %x: %v", k, err)
						}
						if cached, ok := s.sessions.get(string(k)); ok && !bytes.Equal(cached, v) {
							t.Errorf("session key %x: cached record differs from the stored one", k)
						}
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if nEvents != stored || nSessions == 0 {
				t.Fatalf("%d events stored, %d reported; %d sessions", nEvents, stored, nSessions)
			}
			t.Logf("%d chunks reused, %d events, %d sessions", reused, nEvents, nSessions)
		})
	}
}

// TestChunkReuseWhileChildReadsParent: within a group, the writer settles the in-flight
// chunk between batches while the chunk being built still reads it as its parent; the
// settled chunk's maps must not be reused before that child is launched. Group: R1 fills
// chunk C1 (visitor V's first session); R2 is built in C2 on C1's overlay while C1 commits;
// R3 (C1 most likely settled by then) retries R1's last event and starts V's second
// session, which only C1's overlay answers (C2's snapshot predates C1).
func TestChunkReuseWhileChildReadsParent(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, "", nil)
	const per = 50
	s.w.chunkEvents = per // before the first Append: the queue's mutex orders it
	s.w.testPoisonRecycled = true
	for round := range 20 { // the timing varies: the parent is settled mid-build in most rounds
		block, entered := make(chan struct{}), make(chan struct{})
		held := false // the writer's only
		s.mu.Lock()   // orders the hook before the writer's next group
		s.testHookGroup = func() {
			if !held {
				held = true
				close(entered)
				<-block
			}
		}
		s.mu.Unlock()
		p := fmt.Sprint("r", round, "-")
		base := t0 + int64(round)*24*hr
		r1 := make([]features.Event, per)
		for i := range r1 {
			r1[i] = pv(fmt.Sprint(p, "v1-", i), p+"sv1", p+"V", base+int64(i)*sec, "/")
		}
		r2 := make([]features.Event, per-10)
		for i := range r2 {
			r2[i] = pv(fmt.Sprint(p, "w-", i), p+"sw", p+"W", base+int64(i)*sec, "/")
		}
		r3 := []features.Event{r1[per-1], pv(p+"v2-0", p+"sv2", p+"V", base+2*hr, "/")}
		errs := make(chan error, 4)
		results := make([]AppendResult, 4)
		send := func(i int, evs []features.Event) {
			res, err := s.Append(ctx, "site", slices.Clone(evs))
			results[i] = res
			errs <- err
		}
		go send(0, []features.Event{pv(p+"warm", p+"sx", p+"X", base, "/")}) // the held group
		<-entered                                                            // the writer holds the first group in the hook
		go send(1, r1)
		waitQueued(t, s, per)
		go send(2, r2)
		waitQueued(t, s, 2*per-10)
		go send(3, r3)
		waitQueued(t, s, 2*per-8)
		close(block)
		for range 4 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		if res := results[3]; res.Stored != 1 || res.Duplicates != 1 || res.Sessions[0] != p+"sv1" {
			t.Fatalf("round %d: R3 %+v, want R1's last event a duplicate", round, res)
		}
		var rec sessionRecord
		if err := s.sessionRecord("site", p+"sv2", &rec); err != nil {
			t.Fatal(err)
		}
		if rec.Hist.Sessions30d != 1 || rec.Hist.LastSessionTS != base {
			t.Fatalf("round %d: V's second session has history %+v, want its first session", round, rec.Hist)
		}
	}
}
