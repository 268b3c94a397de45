package dashboard_test

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/nudgehq/nudge/data/config"
	"github.com/nudgehq/nudge/features"
	"github.com/nudgehq/nudge/serve"
	"github.com/nudgehq/nudge/serve/dashboard/dashtest"
)

// noEvents is an EventStore with nothing in it: the browser test below needs the real
// server (routes, middleware, auth, the report API) but no ingest.
type noEvents struct{}

var errNoEvents = errors.New("no events in this test")

func (noEvents) Append(context.Context, string, []features.Event) (serve.AppendResult, error) {
	return serve.AppendResult{}, errNoEvents
}
func (noEvents) Session(context.Context, string, string) (serve.SessionInfo, []features.Event, error) {
	return serve.SessionInfo{}, nil, serve.ErrNotFound
}
func (noEvents) ResolveSession(context.Context, string, string) (string, error) {
	return "", serve.ErrNotFound
}
func (noEvents) Features(context.Context, string, string, int64, []float64) (*features.Schema, error) {
	return nil, serve.ErrNotFound
}
func (noEvents) Stats(context.Context, string) (serve.Stats, error) { return serve.Stats{}, nil }

// TestBrowserDashboard drives the dashboard in headless Chromium, served by the real
// server on 127.0.0.1 with a report fixture (every section filled): login, figures and
// charts against the report API, range changes, a CSV download, no console error.
// cmd/nudge's TestDemoDashboardBrowser does the same on a real store with the real engine.
// Without Chromium it skips, unless CI is set (then it fails). NUDGE_SCREENSHOTS=DIR keeps
// the screenshots.
func TestBrowserDashboard(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test: run without -short")
	}
	dashtest.Chromium(t)
	srv, err := serve.New(serve.Options{
		Config: config.Demo(), Events: noEvents{},
		Decode:   func([]byte, time.Time, bool) (serve.Batch, error) { return serve.Batch{}, errNoEvents },
		Reporter: &fakeReporter{},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Open("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Close(ctx); err != nil {
			t.Error(err)
		}
	})
	b := dashtest.NewBrowser(t)
	f := &dashtest.Flow{
		Base: "http://" + srv.Addr(), Site: "demo", AdminKey: config.Demo().Sites[0].AdminKey,
		ShotsDir: os.Getenv("NUDGE_SCREENSHOTS"), RequireData: true,
	}
	f.Run(t, b)
}
