package store

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/nudgehq/nudge/features"
)

// assertLiveEqualsReplay checks that a session's live vector and its replayed vector as of
// asOf are identical, feature by feature, and that ingest and replay saw the same history.
func assertLiveEqualsReplay(t testing.TB, s *Store, site, session string, asOf int64) {
	t.Helper()
	ctx := context.Background()
	n := testSchema.Len()
	live, replay := make([]float64, n), make([]float64, n)
	sc, err := s.Features(ctx, site, session, asOf, live)
	if err != nil {
		t.Fatalf("features %s: %v", session, err)
	}
	if _, err := s.Replay(ctx, site, session, asOf, replay); err != nil {
		t.Fatalf("replay %s: %v", session, err)
	}
	for i, name := range sc.Names {
		if math.Float64bits(live[i]) != math.Float64bits(replay[i]) {
			t.Errorf("session %s as of %d: feature %s live %v, replay %v", session, asOf, name, live[i], replay[i])
		}
	}
	var rec sessionRecord
	if err := s.sessionRecord(site, session, &rec); err != nil {
		t.Fatal(err)
	}
	hist, _, err := s.ReplayInput(ctx, site, session)
	if err != nil {
		t.Fatal(err)
	}
	if hist != rec.Hist {
		t.Errorf("session %s: ingest history %+v, replay history %+v", session, rec.Hist, hist)
	}
}

type genSession struct {
	client, anon string
	consent      bool
}

// genStream generates an in-order event stream (strictly increasing timestamps) of several
// visitors over a few weeks: sessions on several devices, client ids reused after the timeout,
// identify events (some claiming a second user id), micro and macro conversions, errors,
// unconsented sessions.
func genStream(rng *rand.Rand, nEvents int) []features.Event {
	anons := seq("anon", 8)
	users := seq("user", 3)
	paths := []string{"/", "/p/1", "/p/2", "/cart", "/checkout", "/blog?utm_source=x"}
	type open struct {
		genSession
		left int
		ts   int64
	}
	var live []*open
	var evs []features.Event
	clock := t0
	clientN := 0
	for len(evs) < nEvents {
		if len(live) == 0 || rng.IntN(10) == 0 {
			g := genSession{anon: anons[rng.IntN(len(anons))], consent: rng.IntN(10) != 0}
			clientN++
			g.client = fmt.Sprint("c", clientN)
			if clientN > 3 && rng.IntN(4) == 0 { // reuse an old client id: a later visit "~N"
				g.client = fmt.Sprint("c", 1+rng.IntN(clientN-1))
			}
			live = append(live, &open{genSession: g, left: 1 + rng.IntN(12)})
		}
		i := rng.IntN(len(live))
		o := live[i]
		// Gaps: mostly seconds to minutes, sometimes over the session timeout or days.
		switch r := rng.IntN(20); {
		case r == 0:
			clock += int64(1+rng.IntN(10)) * 24 * hr
		case r == 1:
			clock += 31*mn + rng.Int64N(2*hr)
		default:
			clock += 1 + rng.Int64N(5*mn)
		}
		ev := features.Event{
			EventID: fmt.Sprint("e", len(evs)), SessionID: o.client, AnonymousID: o.anon,
			TS: clock, Consent: o.consent, Props: map[string]string{},
		}
		switch r := rng.IntN(20); {
		case r < 8:
			ev.Type = features.PageView
			ev.Props["path"] = paths[rng.IntN(len(paths))]
			ev.Props["engaged_ms"] = fmt.Sprint(rng.IntN(60000))
			if rng.IntN(3) == 0 {
				ev.Props["device"] = []string{"mobile", "desktop", "tablet"}[rng.IntN(3)]
			}
		case r < 10:
			ev.Type = features.Click
		case r < 11:
			ev.Type = features.Error
			ev.Props["error_kind"] = []string{"client", "form"}[rng.IntN(2)]
		case r < 15:
			ev.Type = features.MicroConversion
			ev.Name = []string{"view_product", "add_to_cart", "begin_checkout", "newsletter_signup", "remove_from_cart"}[rng.IntN(5)]
			ev.Value = float64(rng.IntN(100))
		case r < 17:
			ev.Type = features.MacroConversion
			ev.Name = "purchase"
			ev.Value = float64(rng.IntN(300)) + 0.25
		case r < 19:
			ev.Type = features.Identify
			ev.UserID = users[rng.IntN(len(users))]
		default:
			ev.Type = features.Exposure
			ev.Props["intervention"] = "coupon"
		}
		evs = append(evs, ev)
		if o.left--; o.left == 0 {
			live = slices.Delete(live, i, i+1)
		}
	}
	return evs
}

// TestPropertyLiveEqualsReplay ingests random in-order streams in random batch sizes (with
// retried batches) and checks, for every consented session, that the live vector equals the
// replayed one at several as-of times: after batches (as of the newest event) and at the end.
// With chunks of a few events, every batch is a chain of chunks each built while the previous
// one's commit is in flight (the writer's pipelined commit reads through its parent's overlay).
func TestPropertyLiveEqualsReplay(t *testing.T) {
	seeds := []uint64{1, 2, 3}
	if testing.Short() {
		seeds = seeds[:1]
	}
	for _, chunk := range []int{maxChunkEvents, 3} {
		for _, seed := range seeds {
			t.Run(fmt.Sprintf("chunk%d/seed%d", chunk, seed), func(t *testing.T) {
				propertyLiveEqualsReplay(t, seed, chunk)
			})
		}
	}
}

func propertyLiveEqualsReplay(t *testing.T, seed uint64, chunk int) {
	{
		{
			rng := rand.New(rand.NewPCG(seed, 99))
			ctx := context.Background()
			s := openStore(t, "", nil)
			s.w.chunkEvents = chunk // before the first Append: the queue's mutex orders it
			evs := genStream(rng, 800)
			logged := map[string]int64{} // consented sessions -> last event ts
			var prev []features.Event
			checks := 0
			for lo := 0; lo < len(evs); {
				hi := min(len(evs), lo+1+rng.IntN(60))
				batch := slices.Clone(evs[lo:hi])
				res, err := s.Append(ctx, "site", batch)
				if err != nil {
					t.Fatal(err)
				}
				if res.Duplicates != 0 {
					t.Fatalf("fresh batch reported %d duplicates", res.Duplicates)
				}
				for i := range batch {
					if batch[i].Session != res.Sessions[i] {
						t.Fatalf("ev.Session %q != result %q", batch[i].Session, res.Sessions[i])
					}
					if batch[i].Consent {
						logged[batch[i].Session] = batch[i].TS
					} else {
						delete(logged, batch[i].Session)
						logged[batch[i].Session] = -1 // withdrawn: not comparable
					}
				}
				if rng.IntN(5) == 0 && prev != nil { // a retry changes nothing
					if res, err := s.Append(ctx, "site", slices.Clone(prev)); err != nil || res.Stored != 0 {
						t.Fatalf("retried batch: %+v %v", res, err)
					}
				}
				prev = evs[lo:hi]
				asOf := evs[hi-1].TS
				seen := map[string]bool{}
				for _, ev := range batch {
					if ts := logged[ev.Session]; ts > 0 && !seen[ev.Session] {
						seen[ev.Session] = true
						assertLiveEqualsReplay(t, s, "site", ev.Session, asOf)
						checks++
					}
				}
				lo = hi
			}
			for id, last := range logged {
				if last <= 0 {
					continue
				}
				for _, asOf := range []int64{last, last + 31*mn, last + 40*24*hr} {
					assertLiveEqualsReplay(t, s, "site", id, asOf)
					checks++
				}
			}
			// Some sessions must have had history, or the property says little.
			withHist := 0
			for id, last := range logged {
				if last > 0 {
					var rec sessionRecord
					if err := s.sessionRecord("site", id, &rec); err == nil && rec.Hist.Sessions30d > 0 && rec.Hist.Conversions > 0 {
						withHist++
					}
				}
			}
			if withHist == 0 || checks < 100 {
				t.Fatalf("weak stream: %d sessions with history, %d checks", withHist, checks)
			}
			t.Logf("%d sessions, %d with history and prior conversions, %d checks", len(logged), withHist, checks)
		}
	}
}
