package dashboard_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nudgehq/nudge/data/config"
	"github.com/nudgehq/nudge/serve/dashboard"
	"github.com/nudgehq/nudge/serve/dashboard/dashtest"
	"github.com/nudgehq/nudge/training/report"
)

// fakeReporter returns dashtest.Fixture for the query's range and records the queries.
type fakeReporter struct {
	mu      sync.Mutex
	queries []report.Query
	err     error
}

func (f *fakeReporter) Report(_ context.Context, site string, q report.Query) (*report.Report, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queries = append(f.queries, q)
	if f.err != nil {
		return nil, f.err
	}
	return dashtest.Fixture(site, q.From, q.To, q.Group), nil
}

func (f *fakeReporter) last() report.Query {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.queries[len(f.queries)-1]
}

var testNow = time.Date(2026, 11, 23, 15, 0, 0, 0, time.UTC)

// twoSites is the demo site plus a second one in another time zone.
func twoSites() *config.Config {
	cfg := config.Demo()
	other := cfg.Sites[0]
	other.ID, other.Name, other.TimeZone = "shop2", "Second shop", "Europe/Paris"
	other.WriteKey, other.AdminKey = "wk_shop2_0123456789abcdef", "ak_shop2_0123456789abcdef"
	cfg.Sites = append(cfg.Sites, other)
	return cfg
}

type env struct {
	h     *dashboard.Handler
	rep   *fakeReporter
	srv   *httptest.Server
	now   time.Time
	nowMu sync.Mutex
}

func newEnv(t *testing.T, cfg *config.Config) *env {
	t.Helper()
	e := &env{rep: &fakeReporter{}, now: testNow}
	sess, err := dashboard.NewSessions([]byte("0123456789abcdef0123456789abcdef"), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	e.h, err = dashboard.New(dashboard.Options{Config: cfg, Reporter: e.rep, Sessions: sess, Now: e.clock})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(e.h)
	t.Cleanup(e.srv.Close)
	return e
}

func (e *env) clock() time.Time {
	e.nowMu.Lock()
	defer e.nowMu.Unlock()
	return e.now
}

func (e *env) advance(d time.Duration) {
	e.nowMu.Lock()
	defer e.nowMu.Unlock()
	e.now = e.now.Add(d)
}

// client does not follow redirects, so tests see them.
func (e *env) client(t *testing.T) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func get(t *testing.T, c *http.Client, u string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	if _, err := fmt.Fprint(&b, readAll(t, resp)); err != nil {
		t.Fatal(err)
	}
	return resp, b.String()
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	var b strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return b.String()
}

func (e *env) login(t *testing.T, c *http.Client, site, key string) *http.Response {
	t.Helper()
	resp, err := c.PostForm(e.srv.URL+"/dashboard/login", url.Values{"site": {site}, "key": {key}})
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	resp.Body.Close()
	return resp
}

func sessionCookie(resp *http.Response) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == dashboard.CookieName {
			return c
		}
	}
	return nil
}

func TestAuthMatrix(t *testing.T) {
	e := newEnv(t, config.Demo())
	admin := config.Demo().Sites[0].AdminKey

	t.Run("no cookie redirects to login", func(t *testing.T) {
		resp, _ := get(t, e.client(t), e.srv.URL+"/dashboard/?range=7d")
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("status %d", resp.StatusCode)
		}
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if loc.Path != "/dashboard/login" || loc.Query().Get("next") != "/dashboard/?range=7d" {
			t.Errorf("Location %q", resp.Header.Get("Location"))
		}
	})
	t.Run("login page renders", func(t *testing.T) {
		resp, body := get(t, e.client(t), e.srv.URL+"/dashboard/login")
		if resp.StatusCode != 200 || !strings.Contains(body, `name="key" type="password"`) || strings.Contains(body, admin) {
			t.Fatalf("status %d, body:\n%s", resp.StatusCode, body)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
			t.Errorf("CSP %q", csp)
		}
	})
	for _, tc := range []struct{ name, site, key, msg string }{
		{"bad key", "demo", "ak_demo_wrong_wrong_wrong", "Wrong admin key"},
		{"write key", "demo", config.Demo().Sites[0].WriteKey, "Wrong admin key"},
		{"empty key", "demo", "", "Enter the site"},
	} {
		t.Run(tc.name+" gets 401 and the login page", func(t *testing.T) {
			c := e.client(t)
			resp, err := c.PostForm(e.srv.URL+"/dashboard/login", url.Values{"site": {tc.site}, "key": {tc.key}})
			if err != nil {
				t.Fatal(err)
			}
			body := readAll(t, resp)
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, tc.msg) || !strings.Contains(body, `id="login-error"`) {
				t.Fatalf("status %d, body:\n%s", resp.StatusCode, body)
			}
			if sessionCookie(resp) != nil {
				t.Error("a session cookie was set")
			}
		})
	}
	t.Run("good key sets a signed cookie and redirects", func(t *testing.T) {
		c := e.client(t)
		resp := e.login(t, c, "demo", admin)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/dashboard/?site=demo" {
			t.Fatalf("status %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		ck := sessionCookie(resp)
		if ck == nil {
			t.Fatal("no session cookie")
		}
		if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/" || ck.MaxAge != 3600 {
			t.Errorf("cookie %+v", ck)
		}
		if strings.Contains(ck.Value, admin) || strings.Contains(ck.Value, "ak_demo") {
			t.Errorf("cookie carries the key: %q", ck.Value)
		}
		resp, body := get(t, c, e.srv.URL+"/dashboard/")
		if resp.StatusCode != 200 || !strings.Contains(body, `id="overview"`) {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
	t.Run("login honours a local next and ignores others", func(t *testing.T) {
		for next, want := range map[string]string{
			"/dashboard/?range=all":  "/dashboard/?range=all",
			"https://evil.example/":  "/dashboard/?site=demo",
			"//evil.example/":        "/dashboard/?site=demo",
			"/dashboard/logout":      "/dashboard/?site=demo",
			"/v1/report?format=json": "/dashboard/?site=demo",
		} {
			c := e.client(t)
			resp, err := c.PostForm(e.srv.URL+"/dashboard/login", url.Values{"site": {"demo"}, "key": {admin}, "next": {next}})
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if got := resp.Header.Get("Location"); got != want {
				t.Errorf("next %q: Location %q, want %q", next, got, want)
			}
		}
	})
	t.Run("cross-origin login is refused", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/dashboard/login", strings.NewReader(url.Values{"key": {admin}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", "https://evil.example")
		resp, err := e.client(t).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || sessionCookie(resp) != nil {
			t.Errorf("status %d", resp.StatusCode)
		}
	})
	t.Run("tampered cookie redirects to login", func(t *testing.T) {
		c := e.client(t)
		ck := sessionCookie(e.login(t, c, "demo", admin))
		u, _ := url.Parse(e.srv.URL)
		for _, bad := range []string{
			strings.Replace(ck.Value, "v1.", "v2.", 1),
			ck.Value[:len(ck.Value)-2] + "AA",
			"v1.ZGVtbw.9999999999.AAAA",
			"garbage",
		} {
			c.Jar.SetCookies(u, []*http.Cookie{{Name: dashboard.CookieName, Value: bad, Path: "/"}})
			resp, _ := get(t, c, e.srv.URL+"/dashboard/")
			if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/dashboard/login") {
				t.Errorf("cookie %q: status %d Location %q", bad, resp.StatusCode, resp.Header.Get("Location"))
			}
		}
	})
	t.Run("expired cookie redirects to login", func(t *testing.T) {
		c := e.client(t)
		e.login(t, c, "demo", admin)
		if resp, _ := get(t, c, e.srv.URL+"/dashboard/"); resp.StatusCode != 200 {
			t.Fatalf("fresh session: %d", resp.StatusCode)
		}
		e.advance(time.Hour + time.Second)
		defer e.advance(-time.Hour - time.Second)
		// The jar would drop the cookie itself (Max-Age); send the same value anyway.
		resp, _ := get(t, c, e.srv.URL+"/dashboard/")
		if resp.StatusCode != http.StatusSeeOther {
			t.Errorf("expired session: status %d", resp.StatusCode)
		}
	})
	t.Run("logout clears the cookie", func(t *testing.T) {
		c := e.client(t)
		e.login(t, c, "demo", admin)
		resp, err := c.PostForm(e.srv.URL+"/dashboard/logout", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if ck := sessionCookie(resp); resp.StatusCode != http.StatusSeeOther || ck == nil || ck.MaxAge >= 0 {
			t.Fatalf("status %d cookie %+v", resp.StatusCode, ck)
		}
		if resp, _ := get(t, c, e.srv.URL+"/dashboard/"); resp.StatusCode != http.StatusSeeOther {
			t.Errorf("after logout: status %d", resp.StatusCode)
		}
		if resp, _ := get(t, c, e.srv.URL+"/dashboard/logout"); resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("GET logout: status %d", resp.StatusCode)
		}
	})
}

func TestSessionsVerify(t *testing.T) {
	s, err := dashboard.NewSessions(nil, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	tok := s.Issue([]string{"demo", "shop.2"}, testNow)
	sites, err := s.Verify(tok, testNow.Add(59*time.Second))
	if err != nil || len(sites) != 2 || sites[0] != "demo" || sites[1] != "shop.2" {
		t.Fatalf("sites %v, err %v", sites, err)
	}
	if _, err := s.Verify(tok, testNow.Add(time.Minute)); !errors.Is(err, dashboard.ErrExpiredSession) {
		t.Errorf("at expiry: %v", err)
	}
	other, _ := dashboard.NewSessions(nil, time.Minute)
	if _, err := other.Verify(tok, testNow); !errors.Is(err, dashboard.ErrBadSession) {
		t.Errorf("another process's secret: %v", err)
	}
	// Changing the expiry invalidates the signature.
	parts := strings.Split(tok, ".")
	parts[2] = "99999999999"
	if _, err := s.Verify(strings.Join(parts, "."), testNow); !errors.Is(err, dashboard.ErrBadSession) {
		t.Errorf("extended expiry: %v", err)
	}
}

func TestMultiSite(t *testing.T) {
	cfg := twoSites()
	e := newEnv(t, cfg)
	c := e.client(t)
	_, body := get(t, c, e.srv.URL+"/dashboard/login")
	if !strings.Contains(body, `<select id="site" name="site">`) || !strings.Contains(body, "Second shop") {
		t.Fatalf("login page has no site selector:\n%s", body)
	}
	// The demo key cannot log into shop2.
	resp, err := c.PostForm(e.srv.URL+"/dashboard/login", url.Values{"site": {"shop2"}, "key": {cfg.Sites[0].AdminKey}})
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("demo key for shop2: %d", resp.StatusCode)
	}
	e.login(t, c, "demo", cfg.Sites[0].AdminKey)
	resp, body = get(t, c, e.srv.URL+"/dashboard/?site=demo")
	if resp.StatusCode != 200 || !strings.Contains(body, `id="site-select"`) {
		t.Fatalf("status %d", resp.StatusCode)
	}
	// shop2 needs its own key: to the login page with the site chosen.
	resp, _ = get(t, c, e.srv.URL+"/dashboard/?site=shop2&range=7d")
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusSeeOther || loc.Path != "/dashboard/login" || loc.Query().Get("site") != "shop2" {
		t.Fatalf("status %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	e.login(t, c, "shop2", cfg.Sites[1].AdminKey)
	for _, site := range []string{"demo", "shop2"} {
		resp, body := get(t, c, e.srv.URL+"/dashboard/?site="+site+"&range=7d")
		if resp.StatusCode != 200 || !strings.Contains(body, `<option value="`+site+`" selected>`) {
			t.Errorf("site %s after both logins: %d", site, resp.StatusCode)
		}
	}
	// The range is in the site's time zone: 7 days up to today in Paris.
	q := e.rep.last()
	if q.Site != "shop2" || q.From.Location().String() != "Europe/Paris" ||
		!q.From.Equal(time.Date(2026, 11, 17, 0, 0, 0, 0, mustLoc(t, "Europe/Paris"))) ||
		!q.To.Equal(time.Date(2026, 11, 24, 0, 0, 0, 0, mustLoc(t, "Europe/Paris"))) {
		t.Errorf("shop2 query %+v", q)
	}
}

func mustLoc(t *testing.T, name string) *time.Location {
	t.Helper()
	l, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func loggedIn(t *testing.T, e *env) *http.Client {
	t.Helper()
	c := e.client(t)
	if resp := e.login(t, c, "demo", config.Demo().Sites[0].AdminKey); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	return c
}

// TestEverySectionRenders checks that each section of the fixture is on the page with its
// figures, its chart and its download links.
func TestEverySectionRenders(t *testing.T) {
	e := newEnv(t, config.Demo())
	c := loggedIn(t, e)
	resp, body := get(t, c, e.srv.URL+"/dashboard/?from=2026-10-27&to=2026-11-23&group=day")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d:\n%s", resp.StatusCode, body)
	}
	q := e.rep.last()
	if !q.From.Equal(time.Date(2026, 10, 27, 0, 0, 0, 0, time.UTC)) || !q.To.Equal(time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)) || q.Group != "day" {
		t.Errorf("query %+v", q)
	}
	r := dashtest.Fixture("demo", q.From, q.To, q.Group)
	for _, s := range append([]string{"notes"}, report.Sections...) {
		if !strings.Contains(body, `<section id="`+s+`"`) {
			t.Errorf("section %s missing", s)
		}
	}
	for _, s := range report.Sections {
		for _, f := range []string{"csv", "json"} {
			link := "/v1/report?format=" + f + "&amp;from=2026-10-27&amp;group=day&amp;section=" + s + "&amp;site=demo&amp;to=2026-11-24"
			if !strings.Contains(body, link) {
				t.Errorf("section %s: no %s link %s", s, f, link)
			}
		}
	}
	wants := []string{
		// Overview figures, formatted, with their change.
		fmtThousands(r.Overview.Sessions.Value), fmtThousands(r.Overview.Conversions.Value),
		`data-metric="clv"`, `data-metric="exposures"`, fmt.Sprintf("▲ &#43;%.1f%%", 100*r.Overview.Sessions.Change),
		// Notes, prominently.
		r.Notes[0],
		// Funnel, micro, lift, impact, attribution.
		"Checkout", "begin_checkout", "newsletter_signup", "discount10", "p-value", "significant",
		"models: propensity v1, uplift v2", "What if", "Position based", "google / organic",
		"data-chart=\"series-sessions\"", "data-chart=\"series-conversions\"", "data-chart=\"funnel\"",
		"data-chart=\"lift\"", "data-chart=\"impact-threshold\"", "data-chart=\"impact-budget\"",
		"data-chart=\"attribution-channels\"", "data-chart=\"attribution-interventions\"",
		"Oct 27 – Nov 23, 2026",
	}
	for _, w := range wants {
		if !strings.Contains(body, w) {
			t.Errorf("page lacks %q", w)
		}
	}
	// Charts carry their data: as many marks as points, and titles for screen readers.
	pts := regexp.MustCompile(`data-chart="series-sessions" data-points="(\d+)"`).FindStringSubmatch(body)
	if pts == nil || pts[1] != fmt.Sprint(2*len(r.Series)) {
		t.Errorf("series chart points %v, want %d", pts, 2*len(r.Series))
	}
	if n := strings.Count(body, `role="img" aria-labelledby=`); n < 8 {
		t.Errorf("%d labelled charts", n)
	}
	// Tables have headers.
	if strings.Count(body, "<thead>") < 6 || !strings.Contains(body, `<th scope="col">Arm</th>`) {
		t.Error("tables lack headers")
	}
	// One attribution panel visible (last touch by default), the others hidden.
	if strings.Count(body, `class="attr-panel"`) != 5 || strings.Count(body, `class="attr-panel" data-model="last_touch">`) != 1 {
		t.Error("attribution panels")
	}
	// A selected model.
	_, body = get(t, c, e.srv.URL+"/dashboard/?range=28d&model=linear")
	if !strings.Contains(body, `class="attr-panel" data-model="linear">`) {
		t.Error("model=linear not shown")
	}
}

func fmtThousands(v float64) string {
	s := fmt.Sprintf("%d", int64(v+0.5))
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func TestPageParameters(t *testing.T) {
	e := newEnv(t, config.Demo())
	c := loggedIn(t, e)
	t.Run("presets", func(t *testing.T) {
		for preset, days := range map[string]int{"7d": 7, "28d": 28} {
			resp, body := get(t, c, e.srv.URL+"/dashboard/?range="+preset)
			q := e.rep.last()
			if resp.StatusCode != 200 || q.To.Sub(q.From) != time.Duration(days)*24*time.Hour ||
				!q.To.Equal(time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)) {
				t.Errorf("%s: status %d query %v..%v", preset, resp.StatusCode, q.From, q.To)
			}
			if !strings.Contains(body, `class="seg active" aria-current="true" data-preset="`+preset+`"`) {
				t.Errorf("%s not marked active", preset)
			}
		}
		get(t, c, e.srv.URL+"/dashboard/?range=all")
		if q := e.rep.last(); !q.From.IsZero() || !q.To.IsZero() {
			t.Errorf("all: %+v", q)
		}
		get(t, c, e.srv.URL+"/dashboard/")
		if q := e.rep.last(); q.To.Sub(q.From) != 28*24*time.Hour {
			t.Errorf("default range: %v..%v", q.From, q.To)
		}
	})
	t.Run("what if", func(t *testing.T) {
		get(t, c, e.srv.URL+"/dashboard/?range=7d&threshold=1.5&budget=0.25")
		q := e.rep.last()
		if q.Threshold == nil || *q.Threshold != 1.5 || q.Budget == nil || *q.Budget != 0.25 {
			t.Errorf("query %+v", q)
		}
	})
	for _, tc := range []struct{ query, param string }{
		{"from=2026-13-01", "from"}, {"to=yesterday", "to"}, {"from=2026-11-20&to=2026-11-10", "to"},
		{"group=minute", "group"}, {"range=3d", "range"}, {"threshold=abc", "threshold"},
		{"budget=0", "budget"}, {"budget=1.5", "budget"}, {"model=markov", "model"},
	} {
		t.Run("bad "+tc.query, func(t *testing.T) {
			resp, body := get(t, c, e.srv.URL+"/dashboard/?"+tc.query)
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `id="page-error"`) || !strings.Contains(body, "parameter "+tc.param+"=") {
				t.Errorf("status %d; body lacks the error naming %s", resp.StatusCode, tc.param)
			}
		})
	}
	t.Run("engine refuses the query", func(t *testing.T) {
		e.rep.mu.Lock()
		e.rep.err = fmt.Errorf("%w: outcome \"x\"", report.ErrQuery)
		e.rep.mu.Unlock()
		defer func() { e.rep.mu.Lock(); e.rep.err = nil; e.rep.mu.Unlock() }()
		resp, body := get(t, c, e.srv.URL+"/dashboard/")
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "invalid query") {
			t.Errorf("status %d", resp.StatusCode)
		}
	})
	t.Run("reporter error", func(t *testing.T) {
		e.rep.mu.Lock()
		e.rep.err = errors.New("store closed")
		e.rep.mu.Unlock()
		defer func() { e.rep.mu.Lock(); e.rep.err = nil; e.rep.mu.Unlock() }()
		resp, body := get(t, c, e.srv.URL+"/dashboard/")
		if resp.StatusCode != http.StatusInternalServerError || !strings.Contains(body, "store closed") {
			t.Errorf("status %d", resp.StatusCode)
		}
	})
}

func TestAssets(t *testing.T) {
	e := newEnv(t, config.Demo())
	total := 0
	for name, ctype := range map[string]string{"style.css": "text/css", "dashboard.js": "text/javascript", "favicon.svg": "image/svg+xml"} {
		resp, body := get(t, e.client(t), e.srv.URL+"/dashboard/assets/"+name)
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), ctype) || len(body) == 0 {
			t.Errorf("%s: %d %q", name, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		total += len(body)
	}
	// Everything the browser loads besides the page itself stays small.
	if total > 24<<10 {
		t.Errorf("assets total %d bytes, budget 24 KiB", total)
	}
	if resp, _ := get(t, e.client(t), e.srv.URL+"/dashboard/assets/nope.css"); resp.StatusCode != 404 {
		t.Errorf("missing asset: %d", resp.StatusCode)
	}
	if resp, _ := get(t, e.client(t), e.srv.URL+"/dashboard"); resp.StatusCode != http.StatusMovedPermanently {
		t.Errorf("/dashboard: %d", resp.StatusCode)
	}
}

// emptyReporter answers the report of a site with no data, as the engine does: empty
// sections and a note.
type emptyReporter struct{}

func (emptyReporter) Report(_ context.Context, site string, q report.Query) (*report.Report, error) {
	return &report.Report{
		Version: report.FormatVersion, Site: site, From: q.From, To: q.To, TimeZone: "UTC", Group: "day",
		Generated: testNow, MacroName: "purchase", Value: 60,
		Series: []report.SeriesPoint{}, Funnel: []report.FunnelStep{}, Micro: []report.MicroRate{}, Lift: []report.Lift{},
		Impact:      report.Impact{ByThreshold: []report.ImpactPoint{}, ByBudget: []report.ImpactPoint{}},
		Attribution: []report.Attribution{}, Notes: []string{"no events are logged for this site yet"},
	}, nil
}

func TestEmptyReport(t *testing.T) {
	h, err := dashboard.New(dashboard.Options{Config: config.Demo(), Reporter: emptyReporter{}, Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	if _, err := c.PostForm(srv.URL+"/dashboard/login", url.Values{"key": {config.Demo().Sites[0].AdminKey}}); err != nil {
		t.Fatal(err)
	}
	resp, body := get(t, c, srv.URL+"/dashboard/?range=all")
	if resp.StatusCode != 200 || !strings.Contains(body, "no events are logged for this site yet") ||
		strings.Count(body, "No data in this range") < 5 || !strings.Contains(body, "all data") {
		t.Fatalf("status %d:\n%s", resp.StatusCode, body)
	}
}
