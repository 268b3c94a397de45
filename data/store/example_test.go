package store_test

import (
	"context"
	"fmt"
	"time"

	"github.com/nudgehq/nudge/data/store"
	"github.com/nudgehq/nudge/features"
)

func Example() {
	ctx := context.Background()
	sc, _ := features.NewSchema(features.Spec{MacroConversion: "purchase"})
	s, err := store.Open(ctx, store.Options{
		InMemory: true,
		Schema:   func(site string) (*features.Schema, error) { return sc, nil },
	})
	if err != nil {
		panic(err)
	}
	defer s.Close(ctx)

	t0 := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC).UnixMilli()
	page := func(id string, ts int64) features.Event {
		return features.Event{EventID: id, SessionID: "c1", AnonymousID: "a1", Type: features.PageView,
			TS: ts, Consent: true, Props: map[string]string{"path": "/" + id}}
	}
	batch := []features.Event{page("e1", t0), page("e2", t0+60_000), page("e3", t0+2*3600_000)}
	res, _ := s.Append(ctx, "shop", batch)
	fmt.Println("stored", res.Stored, "sessions", res.Sessions)
	res, _ = s.Append(ctx, "shop", batch) // a retry
	fmt.Println("retry: stored", res.Stored, "duplicates", res.Duplicates)

	vec := make([]float64, sc.Len())
	if _, err := s.Features(ctx, "shop", "c1", t0+60_000, vec); err != nil {
		panic(err)
	}
	i, _ := sc.Index("page_views")
	fmt.Println("page_views of c1:", vec[i])
	st, _ := s.Stats(ctx, "shop")
	fmt.Println("page_view events:", st.Events["page_view"], "sessions:", st.Sessions)
	// Output:
	// stored 3 sessions [c1 c1 c1~2]
	// retry: stored 0 duplicates 3
	// page_views of c1: 2
	// page_view events: 3 sessions: 2
}
