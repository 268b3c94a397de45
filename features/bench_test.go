package features

import (
	"fmt"
	"testing"
)

// benchEvents is a realistic session: page views over a few pages (most seen before), clicks,
// milestones with props, as the ingest path would fold them.
func benchEvents(n int) []Event {
	evs := make([]Event, n)
	for i := range evs {
		ts := at(float64(i * 7))
		switch i % 5 {
		case 0, 1:
			evs[i] = pv(ts, fmt.Sprintf("/products/%d", i%9), "scroll_pct", "40", "device", "mobile", "referrer", "https://www.google.com/")
		case 2:
			evs[i] = named(Click, ts, "share", 0)
		case 3:
			evs[i] = named(MicroConversion, ts, "add_to_cart", 19.5, "engaged_ms", "3400")
		default:
			evs[i] = named(Custom, ts, "view_product", 0)
		}
	}
	return evs
}

// BenchmarkFold is the cost of folding one event into a live state (pages mostly seen before).
func BenchmarkFold(b *testing.B) {
	s := mustSchema(b, shopSpec)
	evs := benchEvents(1000)
	st := s.NewState(VisitorHistory{})
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		s.Fold(&st, &evs[i])
		if i++; i == len(evs) {
			i = 0
			st = s.NewState(VisitorHistory{})
		}
	}
}

// BenchmarkFoldPageView folds page views of a page already seen: the most common event.
func BenchmarkFoldPageView(b *testing.B) {
	s := mustSchema(b, shopSpec)
	ev := pv(at(0), "/products/1", "referrer", "https://www.google.com/", "device", "desktop")
	st := s.NewState(VisitorHistory{})
	b.ReportAllocs()
	for b.Loop() {
		ev.TS += 1000
		s.Fold(&st, &ev)
	}
}

func BenchmarkVector(b *testing.B) {
	s := mustSchema(b, shopSpec)
	st := s.NewState(VisitorHistory{Sessions30d: 3, LastSessionTS: at(-86400)})
	evs := benchEvents(50)
	for i := range evs {
		s.Fold(&st, &evs[i])
	}
	out := make([]float64, s.Len())
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Vector(&st, at(400), out); err != nil {
			b.Fatal(err)
		}
	}
}

func benchState(b *testing.B) (*Schema, State) {
	s := mustSchema(b, shopSpec)
	st := s.NewState(VisitorHistory{Sessions30d: 3, LastSessionTS: at(-86400)})
	evs := benchEvents(50)
	for i := range evs {
		s.Fold(&st, &evs[i])
	}
	return s, st
}

func BenchmarkStateEncode(b *testing.B) {
	_, st := benchState(b)
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = st.AppendBinary(buf[:0]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(buf)), "bytes/state")
}

func BenchmarkStateDecode(b *testing.B) {
	_, st := benchState(b)
	enc, _ := st.AppendBinary(nil)
	var got State
	b.ReportAllocs()
	for b.Loop() {
		if err := got.UnmarshalBinary(enc); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReplay replays a 50-event session into a vector (training's inner loop).
func BenchmarkReplay(b *testing.B) {
	s := mustSchema(b, shopSpec)
	evs := benchEvents(50)
	out := make([]float64, s.Len())
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Replay(VisitorHistory{}, evs, evs[len(evs)-1].TS, out); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(evs))/b.Elapsed().Seconds(), "events/s")
}

// TestNoAllocations pins the allocation counts the benchmarks report: folding an event (a page
// seen before or not, with props), computing a vector, encoding and decoding a state.
func TestNoAllocations(t *testing.T) {
	s := mustSchema(t, shopSpec)
	evs := benchEvents(200)
	st := s.NewState(VisitorHistory{})
	i := 0
	if n := testing.AllocsPerRun(1000, func() {
		s.Fold(&st, &evs[i%len(evs)])
		i++
	}); n != 0 {
		t.Errorf("Fold: %v allocs per event", n)
	}
	out := make([]float64, s.Len())
	if n := testing.AllocsPerRun(100, func() { _ = s.Vector(&st, at(5000), out) }); n != 0 {
		t.Errorf("Vector: %v allocs", n)
	}
	buf := make([]byte, 0, 1024)
	if n := testing.AllocsPerRun(100, func() { buf, _ = st.AppendBinary(buf[:0]) }); n != 0 {
		t.Errorf("AppendBinary: %v allocs", n)
	}
	var got State
	_ = got.UnmarshalBinary(buf)
	if n := testing.AllocsPerRun(100, func() { _ = got.UnmarshalBinary(buf) }); n != 0 {
		t.Errorf("UnmarshalBinary into a used state: %v allocs", n)
	}
}
