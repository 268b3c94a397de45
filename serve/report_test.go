package serve_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nudgehq/nudge/serve"
	"github.com/nudgehq/nudge/serve/dashboard"
	"github.com/nudgehq/nudge/serve/dashboard/dashtest"
	"github.com/nudgehq/nudge/training/report"
)

// fakeReporter builds dashtest.Fixture for the query, counting the computations; it keeps
// the last report so a test can render it itself.
type fakeReporter struct {
	mu    sync.Mutex
	calls int
	last  *report.Report
	lastQ report.Query
	err   error
	block chan struct{} // when set, Report waits for it to close
}

func (f *fakeReporter) Report(ctx context.Context, site string, q report.Query) (*report.Report, error) {
	f.mu.Lock()
	block := f.block
	f.calls++
	f.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	r := dashtest.Fixture(site, q.From, q.To, q.Group)
	f.last, f.lastQ = r, q
	return r, nil
}

func (f *fakeReporter) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// clock is a settable Now.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func startReport(t *testing.T) (*testServer, *fakeReporter, *clock) {
	t.Helper()
	rep := &fakeReporter{}
	clk := &clock{now: time.Date(2026, 11, 23, 15, 0, 0, 0, time.UTC)}
	ts := start(t, func(o *serve.Options) {
		o.Reporter, o.Now = rep, clk.Now
	})
	return ts, rep, clk
}

func TestReportAuth(t *testing.T) {
	ts, _, _ := startReport(t)
	u := ts.url + "/v1/report?from=2026-11-01&to=2026-11-23"
	for _, tc := range []struct {
		name, url, key string
		status         int
	}{
		{"no key", u, "", http.StatusUnauthorized},
		{"unknown key", u, "ak_nobody_0123456789abcdef", http.StatusUnauthorized},
		{"write key", u, writeKey, http.StatusForbidden},
		{"admin key", u, adminKey, http.StatusOK},
		{"admin key, its site named", u + "&site=demo", adminKey, http.StatusOK},
		{"another site's admin key", u + "&site=demo", adminKey2, http.StatusForbidden},
		{"admin key in the query", u + "&key=" + adminKey, "", http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, http.MethodGet, tc.url, tc.key, "")
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if tc.status != http.StatusOK {
				r.errorBody(t)
			}
		})
	}
}

func TestReportFormats(t *testing.T) {
	ts, rep, _ := startReport(t)
	base := ts.url + "/v1/report?site=demo&from=2026-10-27&to=2026-11-24&group=day"

	t.Run("json by default, as WriteJSON", func(t *testing.T) {
		r := do(t, http.MethodGet, base, adminKey, "")
		if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
			t.Fatalf("status %d %q: %s", r.status, r.header.Get("Content-Type"), r.body)
		}
		if cd := r.header.Get("Content-Disposition"); cd != "" {
			t.Errorf("inline JSON has Content-Disposition %q", cd)
		}
		var want bytes.Buffer
		if err := rep.last.WriteJSON(&want); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(r.body, want.Bytes()) {
			t.Errorf("body differs from WriteJSON:\n%s\nwant\n%s", r.body, want.Bytes())
		}
		// The days are in the site's time zone; to is exclusive.
		if q := rep.lastQ; !q.From.Equal(time.Date(2026, 10, 27, 0, 0, 0, 0, time.UTC)) || !q.To.Equal(time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)) || q.Group != "day" {
			t.Errorf("query %+v", q)
		}
	})
	for _, section := range report.Sections {
		t.Run("csv "+section, func(t *testing.T) {
			r := do(t, http.MethodGet, base+"&format=csv&section="+section, adminKey, "")
			if r.status != 200 || r.header.Get("Content-Type") != "text/csv; charset=utf-8" {
				t.Fatalf("status %d %q: %s", r.status, r.header.Get("Content-Type"), r.body)
			}
			var want bytes.Buffer
			if err := rep.last.WriteCSV(&want, section); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(r.body, want.Bytes()) {
				t.Errorf("body differs from WriteCSV:\n%s\nwant\n%s", r.body, want.Bytes())
			}
			wantCD := `attachment; filename="nudge-demo-` + section + `-2026-10-27-2026-11-23.csv"`
			if cd := r.header.Get("Content-Disposition"); cd != wantCD {
				t.Errorf("Content-Disposition %q, want %q", cd, wantCD)
			}
		})
		t.Run("json "+section, func(t *testing.T) {
			r := do(t, http.MethodGet, base+"&format=json&section="+section, adminKey, "")
			if r.status != 200 {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			var got, full map[string]json.RawMessage
			var want bytes.Buffer
			if err := rep.last.WriteJSON(&want); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(r.body, &got); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(want.Bytes(), &full); err != nil {
				t.Fatal(err)
			}
			if string(got["section"]) != `"`+section+`"` || len(got) != 12 {
				t.Errorf("keys %v", keys(got))
			}
			for k, v := range got {
				if k != "section" && !jsonEqual(t, v, full[k]) {
					t.Errorf("%s: %s, WriteJSON has %s", k, v, full[k])
				}
			}
			if cd := r.header.Get("Content-Disposition"); !strings.Contains(cd, "nudge-demo-"+section+"-2026-10-27-2026-11-23.json") {
				t.Errorf("Content-Disposition %q", cd)
			}
		})
	}
	t.Run("csv all", func(t *testing.T) {
		r := do(t, http.MethodGet, base+"&format=csv&section=all", adminKey, "")
		var want bytes.Buffer
		for _, s := range report.Sections {
			if err := rep.last.WriteCSV(&want, s); err != nil {
				t.Fatal(err)
			}
		}
		if r.status != 200 || !bytes.Equal(r.body, want.Bytes()) {
			t.Errorf("status %d; body differs from every WriteCSV in turn", r.status)
		}
	})
	t.Run("what if", func(t *testing.T) {
		if r := do(t, http.MethodGet, base+"&threshold=-0.5&budget=0.3", adminKey, ""); r.status != 200 {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		if q := rep.lastQ; q.Threshold == nil || *q.Threshold != -0.5 || q.Budget == nil || *q.Budget != 0.3 {
			t.Errorf("query %+v", q)
		}
	})
}

func keys(m map[string]json.RawMessage) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func jsonEqual(t *testing.T, a, b json.RawMessage) bool {
	t.Helper()
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return fmt.Sprint(x) == fmt.Sprint(y)
}

func TestReportBadParams(t *testing.T) {
	ts, rep, _ := startReport(t)
	for _, tc := range []struct{ query, param string }{
		{"format=xml", "format"},
		{"format=csv", "section"},
		{"format=csv&section=everything", "section"},
		{"section=notes", "section"},
		{"from=2026-13-01", "from"},
		{"to=last+week", "to"},
		{"from=2026-11-20&to=2026-11-20", "to"},
		{"group=minute", "group"},
		{"range=5d", "range"},
		{"threshold=high", "threshold"},
		{"threshold=NaN", "threshold"},
		{"budget=0", "budget"},
		{"budget=1.01", "budget"},
	} {
		t.Run(tc.query, func(t *testing.T) {
			r := do(t, http.MethodGet, ts.url+"/v1/report?"+tc.query, adminKey, "")
			if r.status != http.StatusBadRequest {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			e := r.errorBody(t)
			d, _ := json.Marshal(e.Details)
			if e.Code != "bad_parameter" || !strings.Contains(e.Message, "parameter "+tc.param+"=") || !strings.Contains(string(d), `"parameter":"`+tc.param+`"`) {
				t.Errorf("error %+v", e)
			}
		})
	}
	if n := rep.count(); n != 0 {
		t.Errorf("%d reports computed for bad requests", n)
	}
	t.Run("engine refuses the query", func(t *testing.T) {
		rep.mu.Lock()
		rep.err = serve.Mark(serve.ErrBadParam, errors.New("report: invalid query: outcome \"x\""))
		rep.mu.Unlock()
		r := do(t, http.MethodGet, ts.url+"/v1/report?range=all", adminKey, "")
		if e := r.errorBody(t); r.status != 400 || e.Code != "bad_parameter" || !strings.Contains(e.Message, "outcome") {
			t.Errorf("status %d %+v", r.status, e)
		}
	})
	t.Run("engine fails", func(t *testing.T) {
		rep.mu.Lock()
		rep.err = errors.New("disk on fire")
		rep.mu.Unlock()
		r := do(t, http.MethodGet, ts.url+"/v1/report?range=7d", adminKey, "")
		if e := r.errorBody(t); r.status != 500 || e.Code != "internal" || strings.Contains(e.Message, "fire") {
			t.Errorf("status %d %+v", r.status, e)
		}
	})
}

// TestReportCache: the same (site, query) is computed once per TTL; another query, another
// site or an expired entry is computed again; concurrent requests share one computation.
func TestReportCache(t *testing.T) {
	ts, rep, clk := startReport(t)
	u := ts.url + "/v1/report?from=2026-11-01&to=2026-11-20"
	get := func(u, key string) {
		t.Helper()
		if r := do(t, http.MethodGet, u, key, ""); r.status != 200 {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
	}
	get(u, adminKey)
	get(u+"&format=csv&section=funnel", adminKey)
	get(u+"&format=json&section=lift", adminKey)
	if n := rep.count(); n != 1 {
		t.Fatalf("%d computations for one query, want 1", n)
	}
	get(u+"&group=week", adminKey)
	get(u, adminKey2)
	if n := rep.count(); n != 3 {
		t.Fatalf("%d computations, want 3 (another group, another site)", n)
	}
	clk.add(serve.DefaultReportTTL)
	get(u, adminKey)
	if n := rep.count(); n != 4 {
		t.Fatalf("%d computations after the TTL, want 4", n)
	}

	// Concurrent requests for a new query: one computation.
	block := make(chan struct{})
	rep.mu.Lock()
	rep.block = block
	rep.mu.Unlock()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() { get(u+"&group=hour", adminKey) })
	}
	for rep.count() < 5 { // the first request is computing
		time.Sleep(time.Millisecond)
	}
	close(block)
	wg.Wait()
	if n := rep.count(); n != 5 {
		t.Fatalf("%d computations for 4 concurrent identical requests (want 1 more than 4)", n)
	}
}

// TestReportWithDashboardCookie: the dashboard's download links carry its session cookie
// instead of a key.
func TestReportWithDashboardCookie(t *testing.T) {
	ts, _, _ := startReport(t)
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.Get(ts.url + "/dashboard/")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/dashboard/login") {
		t.Fatalf("dashboard without a session: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	res, err = c.PostForm(ts.url+"/dashboard/login", url.Values{"site": {"demo"}, "key": {adminKey}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: %d", res.StatusCode)
	}
	getc := func(u string) *http.Response {
		t.Helper()
		res, err := c.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	if res := getc(ts.url + "/dashboard/?range=7d"); res.StatusCode != 200 {
		t.Fatalf("dashboard page: %d", res.StatusCode)
	}
	if res := getc(ts.url + "/v1/report?range=7d&format=csv&section=funnel"); res.StatusCode != 200 ||
		!strings.HasPrefix(res.Header.Get("Content-Disposition"), "attachment; filename=\"nudge-demo-funnel-") {
		t.Errorf("report with the cookie: %d %q", res.StatusCode, res.Header.Get("Content-Disposition"))
	}
	if res := getc(ts.url + "/v1/report?site=other&range=7d"); res.StatusCode != http.StatusForbidden {
		t.Errorf("another site with the cookie: %d", res.StatusCode)
	}
	// A tampered cookie is refused, not ignored.
	u, _ := url.Parse(ts.url)
	ck := jar.Cookies(u)[0]
	jar.SetCookies(u, []*http.Cookie{{Name: dashboard.CookieName, Value: ck.Value + "x", Path: "/"}})
	if res := getc(ts.url + "/v1/report?range=7d"); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("tampered cookie: %d", res.StatusCode)
	}
}
