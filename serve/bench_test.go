package serve_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/nudgehq/nudge/data/config"
	"github.com/nudgehq/nudge/features"
	"github.com/nudgehq/nudge/serve"
)

type nopStore struct{ serve.EventStore }

func (nopStore) Append(_ context.Context, _ string, evs []features.Event) (serve.AppendResult, error) {
	return serve.AppendResult{Stored: len(evs)}, nil
}

// BenchmarkPostEventsOverhead measures the API's own cost per batch of 100 events: the
// middleware chain, auth, body reading and the response, with a decoder and a store that
// do nothing (data/wire and data/store have their own benchmarks).
func BenchmarkPostEventsOverhead(b *testing.B) {
	decoded := make([]features.Event, 100)
	srv, err := serve.New(serve.Options{
		Config: config.Demo(), Events: nopStore{},
		Decode: func(body []byte, now time.Time, consent bool) (serve.Batch, error) {
			return serve.Batch{Events: decoded, Received: len(decoded)}, nil
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	h := srv.Handler()
	body := []byte(batchOf(100))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		req := httptest.NewRequest(http.MethodPost, "/v1/events", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+writeKey)
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
}

func batchOf(n int) string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprint("e", i)
	}
	return batch(ids...)
}
