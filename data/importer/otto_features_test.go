package importer

import (
	"context"
	"encoding/csv"
	"math"
	"os"
	"testing"
	"time"

	"github.com/nudgehq/nudge/data/config"
	"github.com/nudgehq/nudge/data/store"
	"github.com/nudgehq/nudge/features"
)

// TestOttoFeatureVectors is issue 3's import check: the OTTO sample imported through the real
// store (in-memory Badger, the demo site's schema) gives feature vectors whose page-view and
// cart counts match the file. OTTO sessions span weeks, so the store splits each into visits
// after 30 minutes of inactivity; the counts of a file session are the sums over its visits,
// read both from the live state and from point-in-time replay.
func TestOttoFeatureVectors(t *testing.T) {
	path := sharedData(t, "otto_sessions_sample.csv")
	ctx := context.Background()

	// Expected counts per OTTO session, read straight from the file.
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	wantViews, wantCarts := map[string]float64{}, map[string]float64{}
	for _, r := range rows[1:] { // session,aid,ts,type
		id := "otto-" + r[0]
		switch r[3] {
		case "clicks":
			wantViews[id]++
		case "carts":
			wantCarts[id]++
		}
	}

	site := config.Demo().Sites[0]
	sch, err := features.NewSchema(site.FeatureSpec())
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, store.Options{InMemory: true,
		Schema: func(string) (*features.Schema, error) { return sch, nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close(ctx)
	sink := func(ctx context.Context, evs []features.Event) (int, int, int, error) {
		res, err := st.Append(ctx, site.ID, evs)
		return res.Stored, res.Duplicates, res.Unlogged, err
	}
	in, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	rep, err := Import(ctx, in, Options{Site: site.ID, ConsentDefault: true,
		Now: func() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }}, sink)
	if err != nil || rep.Imported != 862 {
		t.Fatalf("import: %+v, %v", rep, err)
	}

	iViews, _ := sch.Index("page_views")
	iCarts, ok := sch.Index("ms_add_to_cart_count")
	if !ok {
		t.Fatal("schema has no ms_add_to_cart_count")
	}
	gotViews, gotCarts := map[string]float64{}, map[string]float64{}
	visits := 0
	live := make([]float64, sch.Len())
	replay := make([]float64, sch.Len())
	err = st.ScanSessions(ctx, site.ID, math.MinInt64, math.MaxInt64, func(si store.SessionInfo) error {
		visits++
		if _, err := st.Features(ctx, site.ID, si.Session, si.LastTS, live); err != nil {
			return err
		}
		if _, err := st.Replay(ctx, site.ID, si.Session, si.LastTS, replay); err != nil {
			return err
		}
		for i := range live {
			if live[i] != replay[i] {
				t.Errorf("%s: feature %s live %v, replayed %v", si.Session, sch.Names[i], live[i], replay[i])
			}
		}
		gotViews[si.ClientSessionID] += live[iViews]
		gotCarts[si.ClientSessionID] += live[iCarts]
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(gotViews) != 20 || visits <= 20 {
		t.Fatalf("%d file sessions in %d visits, want 20 sessions split into more visits", len(gotViews), visits)
	}
	for id := range gotViews {
		if gotViews[id] != wantViews[id] || gotCarts[id] != wantCarts[id] {
			t.Errorf("%s: vectors give %v page views and %v carts, the file %v and %v",
				id, gotViews[id], gotCarts[id], wantViews[id], wantCarts[id])
		}
	}
	t.Logf("20 OTTO sessions, %d visits after 30-minute sessionisation; page views and carts match the file", visits)
}
