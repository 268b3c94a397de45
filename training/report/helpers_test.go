package report

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/nudgehq/nudge/data/config"
	"github.com/nudgehq/nudge/data/store"
	"github.com/nudgehq/nudge/features"
)

// testSite is the demo site with a small catalogue, UTC.
func testSite(t testing.TB) (*config.Site, *features.Schema) {
	t.Helper()
	site := &config.Demo().Sites[0]
	sc, err := features.NewSchema(site.FeatureSpec())
	if err != nil {
		t.Fatal(err)
	}
	return site, sc
}

func openMem(t testing.TB, sc *features.Schema) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), store.Options{InMemory: true,
		Schema: func(string) (*features.Schema, error) { return sc, nil }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close(context.Background()) })
	return st
}

// logBuilder writes hand-built sessions: each call appends one event to a session.
type logBuilder struct {
	t   testing.TB
	st  *store.Store
	n   int
	evs []features.Event
}

func (l *logBuilder) add(sess, anon string, at time.Time, typ features.EventType, name string, value float64, props ...string) {
	l.t.Helper()
	l.n++
	ev := features.Event{EventID: fmt.Sprintf("e%d", l.n), SessionID: sess, AnonymousID: anon, Type: typ,
		TS: at.UnixMilli(), Name: name, Value: value, Consent: true}
	if len(props) > 0 {
		ev.Props = map[string]string{}
		for i := 0; i+1 < len(props); i += 2 {
			ev.Props[props[i]] = props[i+1]
		}
	}
	l.evs = append(l.evs, ev)
}

// flush appends the events (in the order given) through the store.
func (l *logBuilder) flush() {
	l.t.Helper()
	if _, err := l.st.Append(context.Background(), "demo", l.evs); err != nil {
		l.t.Fatal(err)
	}
	l.evs = nil
}

// waitDecisions waits until n decisions are readable.
func waitDecisions(t testing.TB, st *store.Store, site string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := 0
		if err := st.Decisions(context.Background(), site, 0, 0, func(*store.DecisionRecord) error { got++; return nil }); err != nil {
			t.Fatal(err)
		}
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d decisions readable", got, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

func checkNear(t *testing.T, name string, got, want float64) {
	t.Helper()
	if !near(got, want) {
		t.Errorf("%s = %v, want %v", name, got, want)
	}
}

func day(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}
