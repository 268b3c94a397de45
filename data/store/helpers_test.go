package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nudgehq/nudge/features"
)

// t0 is a Monday morning; tests express times as offsets from it.
var t0 = time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC).UnixMilli()

const (
	sec = int64(1000)
	mn  = 60 * sec
	hr  = 60 * mn
)

var testSchema = func() *features.Schema {
	sc, err := features.NewSchema(features.Spec{
		MacroConversion: "purchase",
		Phases: []features.Phase{
			{Name: "browse", Milestones: []string{"view_product"}},
			{Name: "cart", Milestones: []string{"add_to_cart"}},
			{Name: "checkout", Milestones: []string{"begin_checkout"}},
		},
		SecondaryActions: []string{"newsletter_signup"},
	})
	if err != nil {
		panic(err)
	}
	return sc
}()

func schemaOf(string) (*features.Schema, error) { return testSchema, nil }

// openStore opens an in-memory store (or on disk in dir when dir != "") closed at cleanup.
func openStore(t testing.TB, dir string, mut func(*Options)) *Store {
	t.Helper()
	opts := Options{InMemory: dir == "", Dir: dir, Schema: schemaOf}
	if mut != nil {
		mut(&opts)
	}
	s, err := Open(context.Background(), opts)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

func pv(id, sess, anon string, ts int64, path string) features.Event {
	return features.Event{
		EventID: id, SessionID: sess, AnonymousID: anon, Type: features.PageView, TS: ts,
		Consent: true, Props: map[string]string{"path": path},
	}
}

func conv(id, sess, anon string, ts int64, value float64) features.Event {
	return features.Event{
		EventID: id, SessionID: sess, AnonymousID: anon, Type: features.MacroConversion, TS: ts,
		Name: "purchase", Value: value, Consent: true,
	}
}

func identify(id, sess, anon, user string, ts int64) features.Event {
	return features.Event{
		EventID: id, SessionID: sess, AnonymousID: anon, UserID: user, Type: features.Identify,
		TS: ts, Consent: true,
	}
}

func mustAppend(t testing.TB, s *Store, site string, evs ...features.Event) AppendResult {
	t.Helper()
	res, err := s.Append(context.Background(), site, evs)
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	return res
}

// feature returns one named feature of a session's live vector.
func feature(t testing.TB, s *Store, site, session, name string, asOf int64) float64 {
	t.Helper()
	vec, sc, err := s.FeatureVector(context.Background(), site, session, asOf)
	if err != nil {
		t.Fatalf("features of %s: %v", session, err)
	}
	i, ok := sc.Index(name)
	if !ok {
		t.Fatalf("no feature %q", name)
	}
	return vec[i]
}

func eventIDs(evs []features.Event) []string {
	out := make([]string, len(evs))
	for i := range evs {
		out[i] = evs[i].EventID
	}
	return out
}

func seq(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return out
}
