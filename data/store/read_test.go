package store

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/nudgehq/nudge/features"
)

// TestSessionState: the read path's partial decode finds the same fingerprint and state as the
// full decode, for records with short and long strings and extreme numbers, and refuses every
// truncation of a record with ErrCorrupt.
func TestSessionState(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	str := func() string { return strings.Repeat("x", rng.IntN(300)) }
	num := func() int64 {
		switch rng.IntN(3) {
		case 0:
			return math.MinInt64 + rng.Int64N(10)
		case 1:
			return math.MaxInt64 - rng.Int64N(10)
		}
		return rng.Int64N(1<<40) - 1<<39
	}
	for i := range 200 {
		rec := sessionRecord{
			Client: str(), Anon: str(), User: str(), Fingerprint: str(),
			Visit: rng.IntN(1 << 20), StartTS: num(), LastTS: num(), HistTS: num(),
			Events: rng.IntN(1 << 30), LoggedEvents: rng.IntN(1 << 30),
			Converted: i%2 == 0, Withdrawn: i%3 == 0, Indexed: i%5 == 0,
			Hist: features.VisitorHistory{
				Sessions7d: rng.IntN(1 << 20), Sessions30d: rng.IntN(1 << 30), LastSessionTS: num(),
				Conversions: rng.IntN(1 << 20), LastConversionTS: num(), Monetary: rng.NormFloat64() * 1e6,
			},
			State: []byte(str()),
		}
		b := appendSession(nil, &rec)
		var full sessionRecord
		if err := decodeSession(b, &full); err != nil {
			t.Fatalf("record %d: decode: %v", i, err)
		}
		fp, st, err := sessionState(b)
		if err != nil {
			t.Fatalf("record %d: sessionState: %v", i, err)
		}
		if string(fp) != full.Fingerprint || string(fp) != rec.Fingerprint || !slices.Equal(st, full.State) || !slices.Equal(st, rec.State) {
			t.Fatalf("record %d: sessionState gives fingerprint %q state %q, want %q %q", i, fp, st, rec.Fingerprint, rec.State)
		}
		for n := range len(b) {
			if _, _, err := sessionState(b[:n]); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("record %d cut to %d of %d bytes: %v, want ErrCorrupt", i, n, len(b), err)
			}
		}
	}
}

// TestColdReads: Features and LiveSession read through Badger (caches empty after a reopen)
// give what the writer-filled caches give, follow later writes (a new event, a new visit of
// the client id), replay a state of an older schema, and report unknown ids as ErrNotFound.
func TestColdReads(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	n := testSchema.Len()
	asOf := t0 + 3*hr
	type read struct {
		features, live []float64
		info           SessionInfo
	}
	readAll := func(t *testing.T, s *Store, ids ...string) map[string]read {
		t.Helper()
		got := make(map[string]read)
		for _, id := range ids {
			r := read{features: make([]float64, n), live: make([]float64, n)}
			var err error
			if r.info, _, err = s.LiveSession(ctx, "shop", id, asOf, r.live); err != nil {
				t.Fatalf("live session %s: %v", id, err)
			}
			if _, err := s.Features(ctx, "shop", r.info.Session, asOf, r.features); err != nil {
				t.Fatalf("features %s: %v", r.info.Session, err)
			}
			if !slices.Equal(r.features, r.live) {
				t.Errorf("%s: Features %v, LiveSession %v", id, r.features, r.live)
			}
			got[id] = r
		}
		return got
	}
	same := func(t *testing.T, cold, warm map[string]read) {
		t.Helper()
		for id, w := range warm {
			c := cold[id]
			if c.info != w.info || !slices.Equal(c.features, w.features) {
				t.Errorf("%s: cold read %+v %v, cached read %+v %v", id, c.info, c.features, w.info, w.features)
			}
		}
	}
	reopen := func(t *testing.T, s *Store, opts func(*Options)) *Store {
		t.Helper()
		if err := s.Close(ctx); err != nil {
			t.Fatal(err)
		}
		return openStore(t, dir, opts)
	}

	s := openStore(t, dir, nil)
	mustAppend(t, s, "shop",
		pv("e1", "c1", "a1", t0, "/"),
		pv("e2", "c1", "a1", t0+mn, "/p/1"),
		identify("e3", "c1", "a1", "u1", t0+2*mn),
		pv("e4", "c2", "a2", t0+mn, "/"),
		conv("e5", "c2", "a2", t0+2*mn, 30),
	)
	ids := []string{"c1", "c2"}
	warm := readAll(t, s, ids...)
	s = reopen(t, s, nil)
	same(t, readAll(t, s, ids...), warm)

	// The writer updates c1 (same visit) and starts a second visit of c2.
	mustAppend(t, s, "shop",
		pv("e6", "c1", "a1", t0+3*mn, "/p/2"),
		pv("e7", "c2", "a2", t0+2*hr, "/"),
	)
	warm = readAll(t, s, ids...)
	if warm["c1"].info.Events != 4 || warm["c2"].info.Session != "c2~2" {
		t.Fatalf("after the writes: c1 %+v, c2 %+v", warm["c1"].info, warm["c2"].info)
	}
	if !slices.Equal(warm["c2"].features, readAll(t, s, "c2~2")["c2~2"].features) {
		t.Errorf("c2 and c2~2 differ")
	}
	s = reopen(t, s, nil)
	same(t, readAll(t, s, ids...), warm)
	// The first visit stays readable by its server id, cold, with its own state.
	first := make([]float64, n)
	if _, err := s.Features(ctx, "shop", "c2", asOf, first); err != nil {
		t.Fatal(err)
	}
	if slices.Equal(first, warm["c2"].features) {
		t.Errorf("the first visit c2 reads as the second: %v", first)
	}

	for _, id := range []string{"nope", "c2~3", ""} {
		if _, _, err := s.LiveSession(ctx, "shop", id, asOf, nil); !errors.Is(err, ErrNotFound) {
			t.Errorf("LiveSession(%q): %v, want ErrNotFound", id, err)
		}
		if _, err := s.Features(ctx, "shop", id, asOf, nil); !errors.Is(err, ErrNotFound) {
			t.Errorf("Features(%q): %v, want ErrNotFound", id, err)
		}
	}

	// A new schema: the stored states are of the old one, so cold reads replay.
	sc2, err := features.NewSchema(features.Spec{
		MacroConversion: "purchase",
		Phases:          []features.Phase{{Name: "browse", Milestones: []string{"view_product", "compare"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	s = reopen(t, s, func(o *Options) { o.Schema = func(string) (*features.Schema, error) { return sc2, nil } })
	for _, id := range []string{"c1", "c2", "c2~2"} {
		live := make([]float64, sc2.Len())
		info, sc, err := s.LiveSession(ctx, "shop", id, asOf, live)
		if err != nil || sc != sc2 {
			t.Fatalf("live session %s under the new schema: %v", id, err)
		}
		replayed := make([]float64, sc2.Len())
		if _, err := s.Replay(ctx, "shop", info.Session, asOf, replayed); err != nil {
			t.Fatal(err)
		}
		feats := make([]float64, sc2.Len())
		if _, err := s.Features(ctx, "shop", info.Session, asOf, feats); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(live, replayed) || !slices.Equal(feats, replayed) {
			t.Errorf("%s under the new schema: live %v, features %v, replay %v", id, live, feats, replayed)
		}
	}
}

// TestColdReadAfterClose: a read on a closed store fails with ErrClosed.
func TestColdReadAfterClose(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir(), nil)
	mustAppend(t, s, "shop", pv("e1", "c1", "a1", t0, "/"))
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Features(ctx, "shop", "x", t0, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Features after Close: %v, want ErrClosed", err)
	}
	if _, _, err := s.LiveSession(ctx, "shop", "x", t0, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("LiveSession after Close: %v, want ErrClosed", err)
	}
}

// TestWarmUp: Open's warm-up pass walks the stored session records and ends by itself; Close
// during it stops it (Close returns, nothing leaks, no race); it is off in memory and with
// NoWarmUp; it changes no answer.
func TestWarmUp(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openStore(t, dir, nil)
	var evs []features.Event
	for i := range 3 * warmUpCheckEvery {
		id := "c" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + strings.Repeat("y", i/26)
		evs = append(evs, pv("e"+id, id, "a"+id, t0+int64(i), "/"))
	}
	mustAppend(t, s, "shop", evs...)
	want := make([]float64, testSchema.Len())
	if _, err := s.Features(ctx, "shop", evs[0].SessionID, t0+hr, want); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name        string
		mut         func(*Options)
		closeAtOnce bool
	}{
		{"walks to the end", nil, false},
		{"stopped by Close", nil, true},
		{"off with NoWarmUp", func(o *Options) { o.NoWarmUp = true }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t, dir, tc.mut)
			if tc.closeAtOnce {
				if err := s.Close(ctx); err != nil {
					t.Fatal(err)
				}
				<-s.warmDone
				if _, err := s.Features(ctx, "shop", evs[1].SessionID, t0+hr, nil); !errors.Is(err, ErrClosed) {
					t.Errorf("read after Close: %v", err)
				}
				return
			}
			<-s.warmDone
			if walked := s.warmedKeys; (tc.mut == nil) != (walked == len(evs)) || (tc.mut != nil && walked != 0) {
				t.Errorf("the warm-up walked %d session records of %d", walked, len(evs))
			}
			got := make([]float64, testSchema.Len())
			if _, err := s.Features(ctx, "shop", evs[0].SessionID, t0+hr, got); err != nil || !slices.Equal(got, want) {
				t.Errorf("after the warm-up: %v %v, want %v", got, err, want)
			}
		})
	}
	mem := openStore(t, "", nil)
	select {
	case <-mem.warmDone:
	default:
		t.Error("an in-memory store has a warm-up pass")
	}
}
