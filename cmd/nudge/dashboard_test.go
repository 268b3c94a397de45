package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nudgehq/nudge/serve/dashboard/dashtest"
)

// TestDemoDashboardBrowser runs `nudge demo` small (real server on 127.0.0.1, real store,
// simulated traffic through the real endpoints, models trained and promoted, the real
// report engine), then drives the dashboard it prints in headless Chromium: login, the
// overview figures and charts checked against the report API, range changes, a CSV
// download, no console error (dashtest.Flow). Without Chromium it skips, unless CI is set
// (then it fails). NUDGE_SCREENSHOTS=DIR keeps the screenshots.
func TestDemoDashboardBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("demo setup and a browser: run without -short")
	}
	dashtest.Chromium(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &syncBuffer{}
	done := make(chan int, 1)
	var errOut strings.Builder
	go func() {
		done <- run(ctx, []string{"demo", "--addr", "127.0.0.1:0", "--visitors", "300", "--days", "14", "--seed", "5",
			"--learner", "logistic"}, nil, out, &errOut)
	}()
	var dash string
	re := regexp.MustCompile(`Dashboard:\s+(http://127\.0\.0\.1:\d+)/dashboard/`)
	for dash == "" {
		select {
		case code := <-done:
			t.Fatalf("demo exited %d before serving: %s\n%s", code, errOut.String(), out.String())
		case <-time.After(50 * time.Millisecond):
		}
		if s := out.String(); strings.Contains(s, "Serving until Ctrl-C") {
			m := re.FindStringSubmatch(s)
			if m == nil {
				t.Fatalf("no dashboard URL in the demo's output:\n%s", s)
			}
			dash = m[1]
		}
	}
	t.Logf("demo output:\n%s", out.String())

	// The report API with the admin key, as the printed curl example does.
	req, _ := http.NewRequest(http.MethodGet, dash+"/v1/report?range=28d&format=csv&section=funnel", nil)
	req.Header.Set("Authorization", "Bearer "+demo.AdminKey)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.HasPrefix(string(body), "# nudge report v1 section=funnel site=demo") {
		t.Fatalf("GET /v1/report: %d %s", res.StatusCode, body)
	}

	b := dashtest.NewBrowser(t)
	f := &dashtest.Flow{Base: dash, Site: "demo", AdminKey: demo.AdminKey, ShotsDir: os.Getenv("NUDGE_SCREENSHOTS")}
	f.Run(t, b)

	cancel()
	if code := <-done; code != 0 {
		t.Errorf("demo exited %d after Ctrl-C: %s", code, errOut.String())
	}
}
