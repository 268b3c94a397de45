package store

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nudgehq/nudge/features"
)

// waitDecision polls until the writer has written decision id (LogDecision does not wait).
func waitDecision(t *testing.T, s *Store, site, id string) (*DecisionRecord, bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		rec, exposed, err := s.Decision(context.Background(), site, id)
		if err == nil {
			return rec, exposed
		}
		if !errors.Is(err, ErrNotFound) || time.Now().After(deadline) {
			t.Fatalf("decision %q: %v", id, err)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestDecisionRoundTrip(t *testing.T) {
	s := openStore(t, "", nil)
	ctx := context.Background()
	recs := []*DecisionRecord{
		{ID: "d1", Site: "shop", Session: "s1", AnonymousID: "a1", UserID: "u1", Page: "/cart",
			TS: t0 + 2*sec, Group: "treatment", Arm: "discount10", Probability: 0.9, Propensity: 0.31,
			Interventions: []string{"discount10", "free_shipping"}, Uplift: []float64{0.05, -0.01},
			PropensityVersion: 3, UpliftVersion: 4, Fingerprint: "fp", Reason: "best expected value"},
		{ID: "d0", Site: "shop", Session: "s2", AnonymousID: "a2", TS: t0 + sec, Group: "holdout",
			Probability: 1, Interventions: []string{"discount10", "free_shipping"}, Reason: "holdout"},
		{ID: "d2", Site: "shop", Session: "s2", AnonymousID: "a2", TS: t0 + 3*sec, Group: "explore",
			Arm: "free_shipping", Probability: 0.05, Interventions: []string{"discount10", "free_shipping"}},
		{ID: "x1", Site: "other", Session: "s9", TS: t0 + 2*sec, Group: "treatment"},
	}
	for _, r := range recs {
		if err := s.LogDecision(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	got, exposed := waitDecision(t, s, "shop", "d2")
	if exposed {
		t.Error("d2 exposed before any exposure event")
	}
	if !reflect.DeepEqual(got, recs[2]) {
		t.Errorf("d2 = %+v, want %+v", got, recs[2])
	}
	got, _ = waitDecision(t, s, "shop", "d1")
	if !reflect.DeepEqual(got, recs[0]) {
		t.Errorf("d1 = %+v, want %+v", got, recs[0])
	}

	t.Run("time order and range", func(t *testing.T) {
		for _, tc := range []struct {
			from, to int64
			want     []string
		}{
			{0, 0, []string{"d0", "d1", "d2"}},
			{t0 + 2*sec, 0, []string{"d1", "d2"}},
			{t0, t0 + 3*sec, []string{"d0", "d1"}},
			{t0 + 4*sec, 0, nil},
		} {
			var ids []string
			err := s.Decisions(ctx, "shop", tc.from, tc.to, func(r *DecisionRecord) error {
				if r.Site != "shop" {
					t.Errorf("site %q", r.Site)
				}
				ids = append(ids, r.ID)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(ids, tc.want) {
				t.Errorf("[%d,%d): %v, want %v", tc.from-t0, tc.to-t0, ids, tc.want)
			}
		}
	})
	t.Run("callback error stops", func(t *testing.T) {
		stop := errors.New("stop")
		n := 0
		err := s.Decisions(ctx, "shop", 0, 0, func(*DecisionRecord) error { n++; return stop })
		if !errors.Is(err, stop) || n != 1 {
			t.Errorf("err %v after %d", err, n)
		}
	})
	t.Run("unknown", func(t *testing.T) {
		if _, _, err := s.Decision(ctx, "shop", "nope"); !errors.Is(err, ErrNotFound) {
			t.Errorf("err = %v, want ErrNotFound", err)
		}
	})
	t.Run("bad input", func(t *testing.T) {
		if err := s.LogDecision(ctx, &DecisionRecord{Site: "shop"}); err == nil {
			t.Error("no id accepted")
		}
		bad := &DecisionRecord{ID: "z", Site: "shop", Interventions: []string{"a"}, Uplift: []float64{1, 2}}
		if err := s.LogDecision(ctx, bad); err == nil {
			t.Error("misaligned uplift accepted")
		}
	})
}

func TestExposureLinksDecision(t *testing.T) {
	s := openStore(t, "", nil)
	ctx := context.Background()
	if _, err := s.Append(ctx, "shop", []features.Event{pv("e1", "s1", "a1", t0, "/p/1")}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"d1", "d2"} {
		if err := s.LogDecision(ctx, &DecisionRecord{ID: id, Site: "shop", Session: "s1", TS: t0 + sec}); err != nil {
			t.Fatal(err)
		}
	}
	exp := features.Event{EventID: "e2", SessionID: "s1", AnonymousID: "a1", Type: features.Exposure,
		Name: "discount10", TS: t0 + 2*sec, Consent: true, Props: map[string]string{DecisionIDProp: "d1"}}
	if _, err := s.Append(ctx, "shop", []features.Event{exp}); err != nil {
		t.Fatal(err)
	}
	if _, exposed := waitDecision(t, s, "shop", "d1"); !exposed {
		t.Error("d1 not exposed after its exposure event")
	}
	if _, exposed := waitDecision(t, s, "shop", "d2"); exposed {
		t.Error("d2 exposed without an exposure naming it")
	}
}

// TestDecisionsDurableAfterClose: Close writes every decision queued before it, and they are
// read back after reopening the on-disk store.
func TestDecisionsDurableAfterClose(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s, err := Open(ctx, Options{Dir: dir, Schema: schemaOf})
	if err != nil {
		t.Fatal(err)
	}
	const n = 500
	for i := range n {
		rec := &DecisionRecord{ID: fmt.Sprintf("d%04d", i), Site: "shop", TS: t0 + int64(i), Group: "explore",
			Probability: 0.5, Interventions: []string{"a"}, Uplift: []float64{float64(i)}}
		if err := s.LogDecision(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.LogDecision(ctx, &DecisionRecord{ID: "late", Site: "shop"}); !errors.Is(err, ErrClosed) {
		t.Errorf("log after close: %v, want ErrClosed", err)
	}
	s = openStore(t, dir, nil)
	i := 0
	err = s.Decisions(ctx, "shop", 0, 0, func(r *DecisionRecord) error {
		if want := fmt.Sprintf("d%04d", i); r.ID != want || r.Uplift[0] != float64(i) {
			return fmt.Errorf("decision %d = %s %v", i, r.ID, r.Uplift)
		}
		i++
		return nil
	})
	if err != nil || i != n {
		t.Fatalf("read %d of %d: %v", i, n, err)
	}
}

func TestLogDecisionOverloaded(t *testing.T) {
	block := make(chan struct{})
	s := openStore(t, "", func(o *Options) { o.QueueLimit = 3 })
	s.testHookGroup = func() { <-block }
	ctx := context.Background()
	// The first decision is taken by the writer (blocked in the hook); 3 more fill the queue.
	var err error
	for i := 0; i < 10 && err == nil; i++ {
		err = s.LogDecision(ctx, &DecisionRecord{ID: fmt.Sprint(i), Site: "shop"})
	}
	if !errors.Is(err, ErrOverloaded) {
		t.Errorf("err = %v, want ErrOverloaded", err)
	}
	close(block)
}

// TestDecisionLayout checks the one-buffer layout of writeDecisions against the key builders
// the readers use, and that the size hint bounds what is laid out.
func TestDecisionLayout(t *testing.T) {
	recs := []*DecisionRecord{
		{ID: "d1", Site: "shop", TS: t0, Group: "treatment"},
		{ID: "0123456789abcdef0123456789abcdef", Site: "a-rather-longer-site-id", Session: "s~2",
			AnonymousID: "anon", UserID: "user", Page: "/checkout/step-2", TS: -5, Group: "explore",
			Arm: "chat_offer", Probability: 0.05, Propensity: 0.3, Interventions: []string{"discount10", "chat_offer", "help_tip"},
			Uplift: []float64{0.01, 0.02, 0.03}, PropensityVersion: 1 << 40, UpliftVersion: 300,
			Fingerprint: "0123456789abcdef", Reason: "exploration: random eligible intervention chat_offer"},
	}
	for _, r := range recs {
		if got, want := appendDecisionKey([]byte("x"), r.Site, r.TS, r.ID), append([]byte("x"), decisionKey(r.Site, r.TS, r.ID)...); string(got) != string(want) {
			t.Errorf("appendDecisionKey = %x, want %x", got, want)
		}
		laid := len(decisionKey(r.Site, r.TS, r.ID)) + len(appendDecision(nil, r)) + len(key(nsDecisionByID, r.Site, r.ID)) + 8
		if h := decisionSizeHint(r); h < laid {
			t.Errorf("size hint %d < %d bytes laid out for %q", h, laid, r.ID)
		}
	}
}

// TestDecisionGroupTooBigForOneTransaction queues more decisions than one Badger transaction
// holds (the writer blocked meanwhile), so writeDecisions must commit and continue: after
// Close every decision is in the log, in order, and readable by id.
func TestDecisionGroupTooBigForOneTransaction(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s, err := Open(ctx, Options{Dir: dir, Schema: schemaOf})
	if err != nil {
		t.Fatal(err)
	}
	block := make(chan struct{})
	first := true
	s.testHookGroup = func() {
		if first {
			first = false
			<-block
		}
	}
	// Badger's transactions hold at most 15% of the store's 32 MB memtable: 30,000 decisions
	// of about 400 bytes need three or more.
	const n = 30000
	ivs := []string{"discount10", "chat_offer", "help_tip"}
	reason := strings.Repeat("a long reason ", 25)
	for i := range n {
		rec := &DecisionRecord{ID: fmt.Sprintf("d%05d", i), Site: "shop", Session: "s", TS: t0 + int64(i),
			Group: "treatment", Interventions: ivs, Uplift: []float64{1, 2, float64(i)}, Reason: reason}
		if err := s.LogDecision(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}
	close(block)
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir, nil)
	i := 0
	err = s.Decisions(ctx, "shop", 0, 0, func(r *DecisionRecord) error {
		if want := fmt.Sprintf("d%05d", i); r.ID != want || r.Uplift[2] != float64(i) || r.Reason != reason {
			return fmt.Errorf("decision %d = %s %v", i, r.ID, r.Uplift)
		}
		i++
		return nil
	})
	if err != nil || i != n {
		t.Fatalf("read %d of %d: %v", i, n, err)
	}
	for _, id := range []string{"d00000", "d14999", "d29999"} {
		if _, _, err := s.Decision(ctx, "shop", id); err != nil {
			t.Errorf("decision %s by id: %v", id, err)
		}
	}
}
