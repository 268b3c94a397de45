package store

import (
	"bytes"
	"context"
	"errors"
	"math"
	"reflect"
	"sync"
	"testing"
	"time"
)

func testRecord(site, kind string, artifact string) *ModelRecord {
	return &ModelRecord{
		Site: site, Kind: kind, Learner: "gbdt",
		Params:      map[string]string{"trees": "200", "depth": "6"},
		Fingerprint: testSchema.Fingerprint,
		Features:    []string{"a", "b"},
		Arms:        []string{"control", "discount10"},
		TrainFrom:   t0, TrainTo: t0 + 7*24*hr, Rows: 1234,
		Metrics:  map[string]float64{"auc": 0.91, "uplift_at_10": math.NaN()},
		Note:     "note",
		Artifact: []byte(artifact),
	}
}

func TestModelRegistryVersions(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	s := openStore(t, "", func(o *Options) { o.Now = func() time.Time { return now } })

	if _, err := s.Model(ctx, "shop", 1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Model on an empty registry: %v, want ErrNotFound", err)
	}
	if list, err := s.Models(ctx, "shop"); err != nil || len(list) != 0 {
		t.Fatalf("Models on an empty registry: %v %v", list, err)
	}
	for i, kind := range []string{"propensity", "uplift", "propensity"} {
		rec := testRecord("shop", kind, "artifact-"+kind)
		if err := s.PutModel(ctx, rec); err != nil {
			t.Fatal(err)
		}
		if rec.Version != i+1 || rec.CreatedAt != now.UnixMilli() {
			t.Fatalf("put %d: version %d created %d", i, rec.Version, rec.CreatedAt)
		}
	}
	// another site has its own sequence
	other := testRecord("other", "propensity", "x")
	other.CreatedAt = 42
	if err := s.PutModel(ctx, other); err != nil || other.Version != 1 || other.CreatedAt != 42 {
		t.Fatalf("other site: version %d created %d err %v", other.Version, other.CreatedAt, err)
	}

	list, err := s.Models(ctx, "shop")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 3 || list[0].Version != 3 || list[1].Version != 2 || list[2].Version != 1 {
		t.Fatalf("Models: %+v", list)
	}
	for _, r := range list {
		if r.Artifact != nil {
			t.Errorf("Models returned an artifact for version %d", r.Version)
		}
	}
	got, err := s.Model(ctx, "shop", 2)
	if err != nil {
		t.Fatal(err)
	}
	want := testRecord("shop", "uplift", "artifact-uplift")
	want.Version, want.CreatedAt = 2, now.UnixMilli()
	if !math.IsNaN(got.Metrics["uplift_at_10"]) {
		t.Errorf("NaN metric came back as %v", got.Metrics["uplift_at_10"])
	}
	delete(got.Metrics, "uplift_at_10")
	delete(want.Metrics, "uplift_at_10")
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Model round trip:\n got %+v\nwant %+v", got, want)
	}
	if _, err := s.Model(ctx, "shop", 4); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing version: %v", err)
	}
}

func TestModelRegistryConcurrentPuts(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, "", nil)
	var wg sync.WaitGroup
	versions := make([]int, 16)
	for i := range versions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec := testRecord("shop", "propensity", "a")
			if err := s.PutModel(ctx, rec); err != nil {
				t.Error(err)
			}
			versions[i] = rec.Version
		}()
	}
	wg.Wait()
	seen := map[int]bool{}
	for _, v := range versions {
		if v < 1 || v > len(versions) || seen[v] {
			t.Fatalf("versions not a permutation of 1..%d: %v", len(versions), versions)
		}
		seen[v] = true
	}
}

func TestModelPromoteRollback(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, "", nil)
	if _, err := s.Promoted(ctx, "shop", "propensity"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Promoted with none: %v", err)
	}
	for _, kind := range []string{"propensity", "propensity", "uplift", "propensity"} {
		if err := s.PutModel(ctx, testRecord("shop", kind, "art")); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Promote(ctx, "shop", "propensity", 3, t0); err == nil {
		t.Fatal("promoting an uplift model as propensity succeeded")
	}
	if err := s.Promote(ctx, "shop", "propensity", 9, t0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("promoting a missing version: %v", err)
	}
	if _, err := s.RollbackModel(ctx, "shop", "propensity", t0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("rollback with no history: %v", err)
	}
	steps := []struct {
		promote int // 0 = rollback
		want    int
	}{{1, 1}, {2, 2}, {4, 4}, {0, 2}, {0, 1}, {4, 4}, {0, 1}}
	for i, st := range steps {
		ts := t0 + int64(i)*hr
		if st.promote > 0 {
			if err := s.Promote(ctx, "shop", "propensity", st.promote, ts); err != nil {
				t.Fatal(err)
			}
		} else {
			v, err := s.RollbackModel(ctx, "shop", "propensity", ts)
			if err != nil || v != st.want {
				t.Fatalf("step %d: rollback -> %d, %v; want %d", i, v, err, st.want)
			}
		}
		rec, err := s.Promoted(ctx, "shop", "propensity")
		if err != nil || rec.Version != st.want || string(rec.Artifact) != "art" {
			t.Fatalf("step %d: promoted %+v %v, want version %d", i, rec, err, st.want)
		}
	}
	if _, err := s.RollbackModel(ctx, "shop", "propensity", t0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("rollback past the first promotion: %v", err)
	}
	hist, err := s.Promotions(ctx, "shop", "propensity")
	if err != nil {
		t.Fatal(err)
	}
	wantHist := []Promotion{{1, t0, false}, {2, t0 + hr, false}, {4, t0 + 2*hr, false}, {2, t0 + 3*hr, true},
		{1, t0 + 4*hr, true}, {4, t0 + 5*hr, false}, {1, t0 + 6*hr, true}}
	if !reflect.DeepEqual(hist, wantHist) {
		t.Errorf("history\n got %+v\nwant %+v", hist, wantHist)
	}
	if _, err := s.Promoted(ctx, "shop", "uplift"); !errors.Is(err, ErrNotFound) {
		t.Errorf("uplift kind is independent: %v", err)
	}
}

func TestModelRegistryDurable(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openStore(t, dir, nil)
	art := bytes.Repeat([]byte("0123456789"), 300_000) // 3 MB artifact: several chunks and updates
	for range 2 {
		if err := s.PutModel(ctx, testRecord("shop", "uplift", string(art))); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Promote(ctx, "shop", "uplift", 1, t0); err != nil {
		t.Fatal(err)
	}
	if err := s.Promote(ctx, "shop", "uplift", 2, t0+1); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.PutModel(ctx, testRecord("shop", "uplift", "x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("PutModel after Close: %v", err)
	}

	s2 := openStore(t, dir, nil)
	rec, err := s2.Promoted(ctx, "shop", "uplift")
	if err != nil || rec.Version != 2 || !bytes.Equal(rec.Artifact, art) {
		t.Fatalf("after reopen: %v %v", rec, err)
	}
	if v, err := s2.RollbackModel(ctx, "shop", "uplift", t0+2); err != nil || v != 1 {
		t.Fatalf("rollback after reopen: %d %v", v, err)
	}
	rec3 := testRecord("shop", "propensity", "p")
	if err := s2.PutModel(ctx, rec3); err != nil || rec3.Version != 3 {
		t.Fatalf("sequence continues after reopen: %d %v", rec3.Version, err)
	}
}

func TestModelRecordCorrupt(t *testing.T) {
	b := appendModelRecord(nil, testRecord("s", "uplift", ""))
	for _, n := range []int{0, 1, 5, len(b) / 2, len(b) - 1} {
		var r ModelRecord
		if err := decodeModelRecord(b[:n], &r); !errors.Is(err, ErrCorrupt) {
			t.Errorf("truncated to %d: %v", n, err)
		}
	}
}

func TestModelLargeArtifactInMemory(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, "", nil)
	for _, size := range []int{0, 1, artifactChunk, artifactChunk + 1, 5*artifactChunk + 7} {
		art := make([]byte, size)
		for i := range art {
			art[i] = byte(i * 7)
		}
		rec := testRecord("shop", "uplift", string(art))
		if err := s.PutModel(ctx, rec); err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		got, err := s.Model(ctx, "shop", rec.Version)
		if err != nil || !bytes.Equal(got.Artifact, art) {
			t.Fatalf("size %d: got %d bytes, %v", size, len(got.Artifact), err)
		}
	}
	if list, err := s.Models(ctx, "shop"); err != nil || len(list) != 5 {
		t.Fatalf("Models: %d %v", len(list), err)
	}
}
