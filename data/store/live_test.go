package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/nudgehq/nudge/features"
)

func TestLiveSession(t *testing.T) {
	s := openStore(t, "", nil)
	ctx := context.Background()
	mustAppend(t, s, "shop",
		pv("e1", "c1", "a1", t0, "/"),
		pv("e2", "c1", "a1", t0+mn, "/p/1"),
		identify("e3", "c1", "a1", "u1", t0+2*mn),
		// a new visit of the same client session id after the 30-minute timeout
		pv("e4", "c1", "a1", t0+2*hr, "/p/2"),
	)
	want := make([]float64, testSchema.Len())
	got := make([]float64, testSchema.Len())
	asOf := t0 + 2*hr + sec
	for _, tc := range []struct{ name, id, session, user string }{
		{"client id resolves to the current visit", "c1", "c1~2", ""},
		{"server id of the current visit", "c1~2", "c1~2", ""},
		{"server id of the first visit", "c1", "c1~2", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			info, sc, err := s.LiveSession(ctx, "shop", tc.id, asOf, got)
			if err != nil {
				t.Fatal(err)
			}
			if info.Session != tc.session || info.AnonymousID != "a1" || sc != testSchema {
				t.Errorf("info %+v", info)
			}
			if _, err := s.Features(ctx, "shop", info.Session, asOf, want); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, want) {
				t.Errorf("vector %v, want Features' %v", got, want)
			}
		})
	}
	info, _, err := s.LiveSession(ctx, "shop", "c1~2", asOf, nil)
	if err != nil || info.Events != 1 {
		t.Errorf("second visit: %+v %v", info, err)
	}
	if _, _, err := s.LiveSession(ctx, "shop", "nope", asOf, got); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown: %v, want ErrNotFound", err)
	}
	// The first visit is still readable by its server id, with the identified user.
	info, _, err = s.LiveSession(ctx, "shop", "c1~1", asOf, got)
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("c1~1 is not an id: %+v %v", info, err)
	}
}

// BenchmarkLiveSession: the decide path's read of a cached session among many.
func BenchmarkLiveSession(b *testing.B) {
	s := openStore(b, "", nil)
	const n = 2000
	for i := 0; i < n; i += 100 {
		var evs = make([]features.Event, 0, 100)
		for j := i; j < i+100; j++ {
			sid := fmt.Sprintf("s%05d", j)
			evs = append(evs, pv(sid+"a", sid, "a"+sid, t0+int64(j)*sec, "/"), pv(sid+"b", sid, "a"+sid, t0+int64(j)*sec+10*sec, "/p/1"))
		}
		mustAppend(b, s, "shop", evs...)
	}
	out := make([]float64, testSchema.Len())
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, _, err := s.LiveSession(ctx, "shop", fmt.Sprintf("s%05d", i%n), t0+hr, out); err != nil {
			b.Fatal(err)
		}
	}
}
