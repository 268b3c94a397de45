package store

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nudgehq/nudge/features"
)

func TestCodecRoundTrip(t *testing.T) {
	evs := []features.Event{
		{EventID: "e1", SessionID: "s", AnonymousID: "a", UserID: "u", Type: features.Identify, TS: t0, Consent: true, Session: "s~2"},
		{EventID: "e2", SessionID: "s", Type: features.Custom, TS: -5, Name: "x", Value: -1.5,
			Props: map[string]string{"b": "2", "a": "1", "": "\x00\xff"}},
		{EventID: "", Type: features.PageView, Props: map[string]string{"path": "/"}},
	}
	for i, ev := range evs {
		b := appendEvent(nil, &ev)
		var got features.Event
		if err := decodeEvent(b, &got); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if fmt.Sprint(got) != fmt.Sprint(ev) {
			t.Errorf("event %d: got %+v, want %+v", i, got, ev)
		}
		if err := decodeEvent(b[:len(b)-1], &got); err == nil && len(ev.Props) > 0 {
			t.Errorf("event %d: truncated value decoded without error", i)
		}
	}
	rec := sessionRecord{Client: "c", Anon: "a", User: "u", Fingerprint: "fp", Visit: 3, StartTS: t0, LastTS: t0 + 5,
		HistTS: t0, Events: 7, LoggedEvents: 6, Converted: true, Indexed: true,
		Hist:  features.VisitorHistory{Sessions7d: 1, Sessions30d: 2, LastSessionTS: t0 - hr, Conversions: 1, LastConversionTS: t0 - 2*hr, Monetary: 12.5},
		State: []byte{1, 2, 3}}
	var got sessionRecord
	if err := decodeSession(appendSession(nil, &rec), &got); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(rec) {
		t.Errorf("session: got %+v, want %+v", got, rec)
	}
	var c siteCounters
	c.add(&features.Event{Type: features.PageView, TS: 5})
	c.add(&features.Event{Type: features.Click, TS: 3})
	c.Sessions, c.Duplicates = 4, 2
	var c2 siteCounters
	if err := c2.decode(c.encode()); err != nil || c2 != c {
		t.Errorf("counters: got %+v (%v), want %+v", c2, err, c)
	}
}

func TestKeysSortByTime(t *testing.T) {
	tss := []int64{-3, 0, 1, 255, 256, t0, t0 + 1}
	var prev []byte
	for _, ts := range tss {
		k := eventKey("site", "sess", ts, "e")
		if prev != nil && string(prev) >= string(k) {
			t.Fatalf("key of %d does not sort after the previous one", ts)
		}
		if got := decodeTS(k[len(key(nsEvent, "site", "sess")):]); got != ts {
			t.Fatalf("decodeTS = %d, want %d", got, ts)
		}
		prev = k
	}
	// A session id that is a prefix of another never shares its key prefix.
	if a, b := key(nsEvent, "s", "ab"), key(nsEvent, "s", "a"); string(a[:len(b)]) == string(b) {
		t.Fatal("length-prefixed keys collide")
	}
}

func TestAppendIdempotent(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openStore(t, dir, nil)
	batch := []features.Event{
		pv("e1", "s1", "a1", t0, "/"),
		pv("e2", "s1", "a1", t0+sec, "/p"),
		pv("e2", "s1", "a1", t0+sec, "/p"), // duplicate inside the batch
		conv("e3", "s1", "a1", t0+2*sec, 10),
	}
	res := mustAppend(t, s, "site", slices.Clone(batch)...)
	if res.Stored != 3 || res.Duplicates != 1 || res.Unlogged != 0 {
		t.Fatalf("first append: %+v", res)
	}
	if want := []string{"s1", "s1", "s1", "s1"}; !slices.Equal(res.Sessions, want) {
		t.Fatalf("sessions %v, want %v", res.Sessions, want)
	}
	res = mustAppend(t, s, "site", slices.Clone(batch)...)
	if res.Stored != 0 || res.Duplicates != 4 {
		t.Fatalf("retried append: %+v", res)
	}
	if !slices.Equal(res.Sessions, []string{"s1", "s1", "s1", "s1"}) {
		t.Fatalf("duplicates report sessions %v", res.Sessions)
	}
	check := func(s *Store) {
		t.Helper()
		info, evs, err := s.Session(ctx, "site", "s1")
		if err != nil {
			t.Fatal(err)
		}
		if got := eventIDs(evs); !slices.Equal(got, []string{"e1", "e2", "e3"}) {
			t.Fatalf("logged events %v", got)
		}
		if info.Events != 3 || !info.Converted || info.StartTS != t0 || info.LastTS != t0+2*sec {
			t.Fatalf("info %+v", info)
		}
		if got := feature(t, s, "site", "s1", "page_views", t0+2*sec); got != 2 {
			t.Fatalf("page_views = %v, want 2", got)
		}
	}
	check(s)
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir, nil)
	res = mustAppend(t, s, "site", slices.Clone(batch)...)
	if res.Stored != 0 || res.Duplicates != 4 {
		t.Fatalf("append after restart: %+v", res)
	}
	check(s)
	st, err := s.Stats(ctx, "site")
	if err != nil {
		t.Fatal(err)
	}
	if st.Events["page_view"] != 2 || st.Events["macro_conversion"] != 1 || st.Duplicates != 9 ||
		st.Sessions != 1 || st.Visitors != 1 || st.FirstTS != t0 || st.LastTS != t0+2*sec {
		t.Fatalf("stats %+v", st)
	}
	// The same event id on another site is another event.
	if res := mustAppend(t, s, "other", pv("e1", "s1", "a1", t0, "/")); res.Stored != 1 {
		t.Fatalf("other site: %+v", res)
	}
}

func TestSessionisation(t *testing.T) {
	type step struct {
		ts   int64
		want string // server session
	}
	tests := []struct {
		name    string
		timeout time.Duration
		steps   []step
	}{
		{"within 29m59s", 0, []step{{0, "c"}, {29*mn + 59*sec, "c"}, {2 * (29*mn + 59*sec), "c"}}},
		{"exactly 30m stays", 0, []step{{0, "c"}, {30 * mn, "c"}}},
		{"after 30m01s new visit", 0, []step{{0, "c"}, {30*mn + sec, "c~2"}}},
		{"several visits", 0, []step{{0, "c"}, {hr, "c~2"}, {hr + 10*mn, "c~2"}, {3 * hr, "c~3"}, {30 * 24 * hr, "c~4"}}},
		{"late event folds into current", 0, []step{{0, "c"}, {10 * mn, "c"}, {5 * mn, "c"}, {39*mn + 59*sec, "c"}}},
		{"late event after new visit stays in it", 0, []step{{0, "c"}, {hr, "c~2"}, {10 * mn, "c~2"}}},
		{"custom timeout", 5 * time.Minute, []step{{0, "c"}, {5 * mn, "c"}, {10*mn + 1, "c~2"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openStore(t, "", func(o *Options) { o.SessionTimeout = tt.timeout })
			for i, st := range tt.steps {
				res := mustAppend(t, s, "site", pv(fmt.Sprint("e", i), "c", "a", t0+st.ts, "/"))
				if res.Sessions[0] != st.want {
					t.Fatalf("step %d (t+%ds): session %q, want %q", i, st.ts/sec, res.Sessions[0], st.want)
				}
			}
			last := tt.steps[len(tt.steps)-1].want
			got, err := s.ResolveSession(context.Background(), "site", "c")
			if err != nil || got != last {
				t.Fatalf("ResolveSession = %q, %v; want %q", got, err, last)
			}
			// Every event was stored once, in the session the append reported.
			total := 0
			var ids []string
			for _, st := range tt.steps {
				ids = append(ids, st.want)
			}
			slices.Sort(ids)
			for _, id := range slices.Compact(ids) {
				_, evs, err := s.Session(context.Background(), "site", id)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.IsSortedFunc(evs, func(a, b features.Event) int { return int(a.TS - b.TS) }) {
					t.Fatalf("session %s events out of time order", id)
				}
				total += len(evs)
			}
			if total != len(tt.steps) {
				t.Fatalf("%d events logged, want %d", total, len(tt.steps))
			}
		})
	}
}
