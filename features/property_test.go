package features

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
)

var (
	randNames = []string{"view_product", "add_to_cart", "remove_from_cart", "begin_checkout", "add_payment",
		"newsletter_signup", "share", "purchase", "unknown", ""}
	randPaths = []string{"/", "/products/1", "/products/2", "/cart", "/checkout?step=2", "/blog/post#c", ""}
	randProps = [][2]string{
		{"engaged_ms", "1200"}, {"engaged_ms", "NaN"}, {"scroll_pct", "55"}, {"scroll_pct", "x"},
		{"error_kind", "client"}, {"error_kind", "form"}, {"cart_value", "42.5"}, {"cart_value", "-1"},
		{"device", "mobile"}, {"device", "desktop"}, {"device", "tablet"},
		{"referrer", "https://www.google.com/search"}, {"referrer", "https://t.co/x"}, {"referrer", "https://blog.example/a"},
		{"utm_source", "newsletter"}, {"utm_medium", "email"}, {"utm_campaign", "spring"}, {"page_group", "Catalog"},
		{"url", "https://shop.example/products/3?x=1"},
	}
	randValues = []float64{0, 9.99, 25, 100, -3, math.NaN(), math.Inf(1)}
)

// randomEvents generates n events with strictly increasing timestamps (gaps from 1 s to an
// hour) unless shuffled, in which case their order is permuted.
func randomEvents(seed uint64, n int, shuffle bool) []Event {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	evs := make([]Event, n)
	ts := base - int64(r.IntN(30*24))*3600*1000
	for i := range evs {
		ts += 1000 + int64(r.IntN(3600*1000))
		e := Event{
			EventID: fmt.Sprintf("e%d", i),
			Type:    EventType(1 + r.IntN(int(numEventTypes)-1)),
			TS:      ts,
			Name:    randNames[r.IntN(len(randNames))],
			Value:   randValues[r.IntN(len(randValues))],
			Consent: r.IntN(2) == 0,
		}
		if r.IntN(10) == 0 {
			e.UserID = "u1"
		}
		if k := r.IntN(4); k > 0 || e.Type == PageView {
			e.Props = map[string]string{}
			if e.Type == PageView {
				e.Props["path"] = randPaths[r.IntN(len(randPaths))]
			}
			for range k {
				kv := randProps[r.IntN(len(randProps))]
				e.Props[kv[0]] = kv[1]
			}
		}
		evs[i] = e
	}
	if shuffle {
		r.Shuffle(len(evs), func(i, j int) { evs[i], evs[j] = evs[j], evs[i] })
	}
	return evs
}

func randomHistory(r *rand.Rand) VisitorHistory {
	if r.IntN(3) == 0 {
		return VisitorHistory{}
	}
	return VisitorHistory{
		Sessions7d: r.IntN(5), Sessions30d: r.IntN(20), LastSessionTS: base - int64(r.IntN(90*24))*3600*1000,
		Conversions: r.IntN(4), LastConversionTS: base - int64(r.IntN(400*24))*3600*1000, Monetary: r.Float64() * 1000,
	}
}

// TestReplayEqualsLivePrefix: for generated streams, the vector replayed as of any time equals
// the vector of the live state that folded exactly the events up to that time, feature by
// feature, bit for bit.
func TestReplayEqualsLivePrefix(t *testing.T) {
	s := mustSchema(t, Spec{
		MacroConversion: "purchase", Phases: shopSpec.Phases, SecondaryActions: shopSpec.SecondaryActions,
		HashBuckets: 4, TimeZone: "Europe/Berlin",
	})
	live, replayed := make([]float64, s.Len()), make([]float64, s.Len())
	for seed := range uint64(50) {
		r := rand.New(rand.NewPCG(seed, 1))
		hist := randomHistory(r)
		evs := randomEvents(seed, 1+r.IntN(60), false)
		st := s.NewState(hist)
		for k := range evs {
			s.Fold(&st, &evs[k])
			// As of the event itself, and as of a time before the next one.
			asOfs := []int64{evs[k].TS}
			if k+1 < len(evs) {
				asOfs = append(asOfs, evs[k].TS+(evs[k+1].TS-evs[k].TS)/2)
			}
			for _, asOf := range asOfs {
				if err := s.Vector(&st, asOf, live); err != nil {
					t.Fatal(err)
				}
				if err := s.Replay(hist, evs, asOf, replayed); err != nil {
					t.Fatal(err)
				}
				for i := range live {
					if math.Float64bits(live[i]) != math.Float64bits(replayed[i]) {
						t.Fatalf("seed %d, %d events, asOf %d: %s live %v replayed %v", seed, k+1, asOf, s.Names[i], live[i], replayed[i])
					}
				}
			}
		}
	}
}

// TestStateRoundTrip: encoding then decoding any reachable state gives the same state, the same
// bytes again and the same vector.
func TestStateRoundTrip(t *testing.T) {
	s := mustSchema(t, shopSpec)
	a, b := make([]float64, s.Len()), make([]float64, s.Len())
	for seed := range uint64(200) {
		r := rand.New(rand.NewPCG(seed, 2))
		hist := randomHistory(r)
		if seed%17 == 0 {
			hist.Monetary = math.NaN() // bits must survive too
		}
		st := s.NewState(hist)
		evs := randomEvents(seed, r.IntN(120), seed%2 == 1)
		for i := range evs {
			s.Fold(&st, &evs[i])
		}
		enc, err := st.AppendBinary([]byte("prefix"))
		if err != nil {
			t.Fatal(err)
		}
		enc = enc[len("prefix"):]
		var got State
		if err := got.UnmarshalBinary(enc); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if !reflect.DeepEqual(stateForCompare(st), stateForCompare(got)) {
			t.Fatalf("seed %d: round trip differs:\n got %+v\nwant %+v", seed, got, st)
		}
		again, _ := got.AppendBinary(nil)
		if !bytes.Equal(enc, again) {
			t.Fatalf("seed %d: re-encoding differs", seed)
		}
		asOf := st.LastTS() + 1000
		if err := s.Vector(&st, asOf, a); err != nil {
			t.Fatal(err)
		}
		if err := s.Vector(&got, asOf, b); err != nil {
			t.Fatal(err)
		}
		for i := range a {
			if math.Float64bits(a[i]) != math.Float64bits(b[i]) {
				t.Fatalf("seed %d: %s %v != %v", seed, s.Names[i], a[i], b[i])
			}
			if math.IsNaN(a[i]) || math.IsInf(a[i], 0) {
				t.Fatalf("seed %d: %s = %v", seed, s.Names[i], a[i])
			}
		}
		// Folding more into the decoded state behaves like folding into the original.
		more := randomEvents(seed+1000, 5, false)
		c := st.Clone()
		for i := range more {
			s.Fold(&c, &more[i])
			s.Fold(&got, &more[i])
		}
		if !reflect.DeepEqual(stateForCompare(c), stateForCompare(got)) {
			t.Fatalf("seed %d: states diverge after decoding", seed)
		}
	}
}

// stateForCompare replaces the NaN monetary (NaN != NaN under DeepEqual) by its bits.
func stateForCompare(st State) any {
	type cmp struct {
		S    State
		Bits uint64
	}
	bits := math.Float64bits(st.hist.Monetary)
	st.hist.Monetary = 0
	return cmp{st, bits}
}

func TestStateDecodeErrors(t *testing.T) {
	s := mustSchema(t, shopSpec)
	st := s.NewState(VisitorHistory{Sessions7d: 1, Monetary: 3})
	evs := randomEvents(7, 50, false)
	for i := range evs {
		s.Fold(&st, &evs[i])
	}
	enc, _ := st.AppendBinary(nil)
	for n := 0; n < len(enc); n++ {
		var got State
		if err := got.UnmarshalBinary(enc[:n]); !errors.Is(err, ErrBadState) {
			t.Fatalf("truncated to %d of %d bytes: err = %v, want ErrBadState", n, len(enc), err)
		}
	}
	var got State
	if err := got.UnmarshalBinary(append(bytes.Clone(enc), 0)); !errors.Is(err, ErrBadState) {
		t.Fatalf("trailing byte: err = %v", err)
	}
	bad := bytes.Clone(enc)
	bad[0] = stateEncoding + 1
	if err := got.UnmarshalBinary(bad); !errors.Is(err, ErrSchemaMismatch) {
		t.Fatalf("future version: err = %v", err)
	}
	// Random corruption never panics, and a failed decode leaves the target untouched.
	keep := s.NewState(VisitorHistory{Sessions30d: 9})
	before, _ := keep.AppendBinary(nil)
	r := rand.New(rand.NewPCG(3, 3))
	for range 2000 {
		c := bytes.Clone(enc)
		for range 1 + r.IntN(4) {
			c[r.IntN(len(c))] = byte(r.Uint32())
		}
		target := keep.Clone()
		if err := target.UnmarshalBinary(c); err != nil {
			after, _ := target.AppendBinary(nil)
			if !bytes.Equal(before, after) {
				t.Fatal("failed decode modified the state")
			}
		}
	}
}

func TestStateSizeIsCompact(t *testing.T) {
	s := mustSchema(t, shopSpec)
	st := s.NewState(VisitorHistory{})
	ev := pv(at(0), "/", "referrer", "https://www.google.com/")
	s.Fold(&st, &ev)
	enc, _ := st.AppendBinary(nil)
	// 1 version + 8 fp + 8 monetary + 8 scroll + 8 cart + 32 hashes + 8 page + counters.
	if len(enc) > 120 {
		t.Fatalf("one-event state encodes to %d bytes", len(enc))
	}
	t.Logf("one-event state: %d bytes", len(enc))
}

func TestVectorsAlwaysFinite(t *testing.T) {
	s := mustSchema(t, shopSpec)
	out := make([]float64, s.Len())
	for seed := range uint64(100) {
		evs := randomEvents(seed, 80, true)
		r := rand.New(rand.NewPCG(seed, 4))
		h := randomHistory(r)
		h.Monetary = []float64{math.NaN(), math.Inf(1), math.Inf(-1), -5, 3}[seed%5]
		for _, asOf := range []int64{math.MinInt64 / 4, 0, base, math.MaxInt64 / 4} {
			if err := s.Replay(h, evs, asOf, out); err != nil {
				t.Fatal(err)
			}
			for i, v := range out {
				if math.IsNaN(v) || math.IsInf(v, 0) || (s.Kinds[i] != KindCyclic && v < 0) {
					t.Fatalf("seed %d asOf %d: %s = %v", seed, asOf, s.Names[i], v)
				}
			}
		}
	}
}

// TestFoldOrderIndependentParts: counts, device, landing and cart_value set by props do not
// depend on the order events arrive in.
func TestFoldOrderIndependentParts(t *testing.T) {
	s := mustSchema(t, shopSpec)
	order := []string{"events", "page_views", "unique_pages", "clicks", "errors", "errors_client", "errors_form",
		"exposures", "identified", "converted_in_session", "time_on_site_s", "funnel_phase", "max_scroll_pct", "engaged_time_s",
		"device_mobile", "device_desktop", "device_tablet", "channel_direct", "channel_organic", "hour_sin", "dow_cos"}
	for seed := range uint64(30) {
		sorted := randomEvents(seed, 40, false)
		shuffled := randomEvents(seed, 40, true)
		asOf := sorted[len(sorted)-1].TS
		a := vectorMap(t, s, VisitorHistory{}, sorted, asOf)
		b := vectorMap(t, s, VisitorHistory{}, shuffled, asOf)
		for _, n := range order {
			if a[n] != b[n] {
				t.Fatalf("seed %d: %s sorted %v shuffled %v", seed, n, a[n], b[n])
			}
		}
		for i := range s.Names {
			n := s.Names[i]
			if (len(n) > 7 && n[:7] == "source_") || (len(n) > 14 && n[:14] == "landing_group_") || (len(n) > 3 && n[:3] == "ms_") {
				if a[n] != b[n] {
					t.Fatalf("seed %d: %s sorted %v shuffled %v", seed, n, a[n], b[n])
				}
			}
		}
		if b["active_time_s"] > a["active_time_s"] || b["active_time_s"] < 0 {
			t.Fatalf("seed %d: shuffled active time %v, sorted %v", seed, b["active_time_s"], a["active_time_s"])
		}
	}
}
