package main

import (
	"context"
	"encoding/json"
	"fmt"
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

// TestServeReportWiring starts the real `nudge serve` binary on an empty store: the
// dashboard is mounted (a page without a session redirects to the login page, which
// renders), and GET /v1/report computes the report of the events just ingested with the
// real engine.
func TestServeReportWiring(t *testing.T) {
	p := startServe(t, t.TempDir())
	if !strings.Contains(p.logs.String(), `"dashboard":"`+p.url+`/dashboard/"`) {
		t.Errorf("the listening line does not name the dashboard:\n%s", p.logs)
	}
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := noFollow.Get(p.url + "/dashboard/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/dashboard/login") {
		t.Fatalf("GET /dashboard/: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	res, err = http.Get(p.url + "/dashboard/login")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(body), "Sign in to the dashboard") {
		t.Fatalf("login page: %d", res.StatusCode)
	}

	now := time.Now().UTC().Add(-time.Hour).UnixMilli()
	events := fmt.Sprintf(`{"events": [
		{"event_id": "r1", "session_id": "rs1", "anonymous_id": "rv1", "type": "page_view", "timestamp": %d, "props": {"path": "/"}},
		{"event_id": "r2", "session_id": "rs1", "anonymous_id": "rv1", "type": "micro_conversion", "name": "add_to_cart", "timestamp": %d},
		{"event_id": "r3", "session_id": "rs1", "anonymous_id": "rv1", "type": "macro_conversion", "name": "purchase", "value": 42, "timestamp": %d}]}`,
		now, now+1000, now+2000)
	req, _ := http.NewRequest(http.MethodPost, p.url+"/v1/events", strings.NewReader(events))
	req.Header.Set("Authorization", "Bearer "+demo.WriteKey)
	req.Header.Set("Content-Type", "application/json")
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("ingest: %d %s", res.StatusCode, body)
	}
	req, _ = http.NewRequest(http.MethodGet, p.url+"/v1/report?range=7d", nil)
	req.Header.Set("Authorization", "Bearer "+demo.AdminKey)
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Site     string `json:"site"`
		Overview struct {
			Sessions, Conversions, Revenue struct{ Value float64 }
		} `json:"overview"`
		Funnel []struct {
			Phase    string
			Sessions int64
		} `json:"funnel"`
	}
	err = json.NewDecoder(res.Body).Decode(&rep)
	res.Body.Close()
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("report: %d %v", res.StatusCode, err)
	}
	if rep.Site != "demo" || rep.Overview.Sessions.Value != 1 || rep.Overview.Conversions.Value != 1 || rep.Overview.Revenue.Value != 42 || len(rep.Funnel) == 0 {
		t.Errorf("report of one converting session: %+v", rep)
	}
	req, _ = http.NewRequest(http.MethodGet, p.url+"/v1/report?range=7d&group=minute", nil)
	req.Header.Set("Authorization", "Bearer "+demo.AdminKey)
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 400 || !strings.Contains(string(body), `"parameter":"group"`) {
		t.Errorf("bad group: %d %s", res.StatusCode, body)
	}
}
