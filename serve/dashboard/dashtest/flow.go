package dashtest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// Flow is a browser session against a running nudge server.
type Flow struct {
	Base           string // "http://127.0.0.1:port"
	Site, AdminKey string
	// ShotsDir receives the screenshots (login.png, dashboard.png, dashboard-7d.png).
	ShotsDir string
	// RequireData makes every section's chart need data (the fixture has all of them).
	RequireData bool
}

// pageState is what the flow reads from a dashboard page.
type pageState struct {
	Status   int                        `json:"status"`
	Report   json.RawMessage            `json:"report"`
	Cards    map[string]string          `json:"cards"`
	Charts   map[string]chartState      `json:"charts"`
	Range    string                     `json:"range"`
	From     string                     `json:"from"`
	To       string                     `json:"to"`
	Active   string                     `json:"active"`
	Notes    []string                   `json:"notes"`
	Sections map[string]map[string]bool `json:"sections"`
}

type chartState struct {
	Points int    `json:"points"`
	Marks  int    `json:"marks"`
	Title  string `json:"title"`
	Label  string `json:"label"`
}

// readPage reads the cards, the charts and the range of the dashboard page, and fetches the
// full report JSON through the page's own "Full report JSON" link (with the session
// cookie), so the page can be checked against the report API.
const readPage = `(async () => {
  const link = document.querySelector(".range-info a.dl").href;
  const resp = await fetch(link, {credentials: "same-origin"});
  const report = await resp.json();
  const cards = {};
  document.querySelectorAll(".card").forEach(c => cards[c.dataset.metric] = c.querySelector(".card-value").textContent.trim());
  const charts = {};
  document.querySelectorAll("svg.chart").forEach(s => {
    if (s.closest("[hidden]")) return;
    charts[s.dataset.chart] = {points: +s.dataset.points, marks: s.querySelectorAll(".mark").length,
      title: (s.querySelector("title") || {}).textContent || "", label: s.getAttribute("aria-labelledby") || ""};
  });
  const sections = {};
  document.querySelectorAll("main section[id]").forEach(s => {
    const d = {};
    s.querySelectorAll(".downloads a").forEach(a => d[a.textContent.trim()] = a.hasAttribute("download") && a.href.includes("/v1/report?"));
    sections[s.id] = d;
  });
  const active = document.querySelector(".presets .seg.active");
  return {status: resp.status, report, cards, charts, sections,
    range: document.getElementById("range-label").textContent.trim(),
    from: document.getElementById("from").value, to: document.getElementById("to").value,
    active: active ? active.dataset.preset : "",
    notes: Array.from(document.querySelectorAll("#notes li")).map(li => li.textContent.trim())};
})()`

// apiReport is the part of the report JSON the flow compares with the page.
type apiReport struct {
	Site     string `json:"site"`
	Group    string `json:"group"`
	Overview map[string]struct {
		Value float64 `json:"value"`
	} `json:"overview"`
	Series      []json.RawMessage `json:"series"`
	Funnel      []json.RawMessage `json:"funnel"`
	Lift        []json.RawMessage `json:"lift"`
	Attribution []struct {
		Model string `json:"model"`
		Rows  []struct {
			Kind string `json:"kind"`
		} `json:"rows"`
	} `json:"attribution"`
	Notes []string `json:"notes"`
}

func (b *Browser) read(t *testing.T) (pageState, apiReport) {
	t.Helper()
	st, err := chromedp.Run(b.Ctx, chromedp.Evaluate[pageState](readPage, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("read the page: %v", err)
	}
	if st.Status != 200 {
		t.Fatalf("the page's report JSON link answered %d: %s", st.Status, st.Report)
	}
	var r apiReport
	if err := json.Unmarshal(st.Report, &r); err != nil {
		t.Fatalf("report JSON: %v", err)
	}
	return st, r
}

// thousands formats an integer count as the cards do: 12,345.
func thousands(v float64) string {
	s := fmt.Sprint(int64(math.Round(v)))
	var out strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			out.WriteByte(',')
		}
		out.WriteRune(c)
	}
	return out.String()
}

// checkPage compares the page with the report API's JSON for the same range.
func (f *Flow) checkPage(t *testing.T, st pageState, r apiReport) {
	t.Helper()
	if r.Site != f.Site {
		t.Errorf("report of site %q, want %q", r.Site, f.Site)
	}
	for _, k := range []string{"sessions", "visitors", "conversions", "decisions"} {
		if want := thousands(r.Overview[k].Value); st.Cards[k] != want {
			t.Errorf("card %s shows %q, the report API says %s", k, st.Cards[k], want)
		}
	}
	if len(st.Cards) < 11 {
		t.Errorf("%d overview cards: %v", len(st.Cards), st.Cards)
	}
	want := map[string]int{
		"series-sessions": 2 * len(r.Series), "series-conversions": len(r.Series), "funnel": len(r.Funnel),
		"lift": len(r.Lift),
	}
	for name, n := range want {
		c, ok := st.Charts[name]
		switch {
		case !ok:
			t.Errorf("chart %s missing (charts: %v)", name, st.Charts)
		case c.Points != n || c.Marks != n:
			t.Errorf("chart %s: %d points, %d marks; the report has %d", name, c.Points, c.Marks, n)
		case c.Title == "" || c.Label == "":
			t.Errorf("chart %s has no accessible title", name)
		case f.RequireData && n == 0:
			t.Errorf("chart %s has no data", name)
		}
	}
	for _, name := range []string{"impact-threshold", "impact-budget", "attribution-channels", "attribution-interventions"} {
		if _, ok := st.Charts[name]; !ok {
			t.Errorf("chart %s missing", name)
		} else if f.RequireData && st.Charts[name].Marks == 0 {
			t.Errorf("chart %s has no data", name)
		}
	}
	if f.RequireData && len(r.Series) == 0 {
		t.Error("the report has no time series")
	}
	for _, s := range []string{"overview", "series", "funnel", "micro", "lift", "impact", "attribution"} {
		if d := st.Sections[s]; !d["CSV"] || !d["JSON"] {
			t.Errorf("section %s: download links %v", s, d)
		}
	}
	if len(st.Notes) != len(r.Notes) {
		t.Errorf("page shows %d notes, the report has %d", len(st.Notes), len(r.Notes))
	}
}

// Run drives the dashboard like a marketer would: it is sent to the login page, fails with
// a wrong key, logs in, reads the overview and the charts (checked against the report API
// through the page's own JSON link), switches to the last 7 days, picks a custom range and
// an hourly grouping, switches the attribution model (script), downloads a section as CSV,
// uses the attribution tabs and the what-if form with script disabled, logs out — with no
// console error on the way. It saves screenshots in ShotsDir.
func (f *Flow) Run(t *testing.T, b *Browser) {
	t.Helper()
	if f.ShotsDir == "" {
		f.ShotsDir = t.TempDir()
	}
	dash := f.Base + "/dashboard/"

	// 1. Not logged in: the login page.
	if err := chromedp.Do(b.Ctx, chromedp.Navigate(dash)); err != nil {
		t.Fatal(err)
	}
	b.WaitJS(t, "the login page", `document.getElementById("key") && location.pathname === "/dashboard/login"`)
	if errs := b.ConsoleErrors(t); len(errs) > 0 {
		t.Errorf("console errors on the login page: %v", errs)
	}
	t.Logf("screenshot: %s", b.Screenshot(t, f.ShotsDir, "login.png"))

	// 2. A wrong key: the login page again, with the error (and a 401, which the console
	// reports as a failed load: expected, then forgotten).
	b.Navigating(t, "a wrong key", chromedp.Steps(
		chromedp.SendKeys(chromedp.ID("key"), "ak_wrong_wrong_wrong_wrong"),
		chromedp.Click(chromedp.ID("login-submit")),
	), `document.getElementById("login-error")`)
	msg, err := chromedp.Run(b.Ctx, chromedp.Text(chromedp.ID("login-error")))
	if err != nil || !strings.Contains(msg, "Wrong admin key") {
		t.Fatalf("wrong key: error %q (%v)", msg, err)
	}
	b.ResetConsole(t)

	// 3. The right key: the dashboard.
	b.Navigating(t, "login", chromedp.Steps(
		chromedp.SendKeys(chromedp.ID("key"), f.AdminKey),
		chromedp.Click(chromedp.ID("login-submit")),
	), `document.getElementById("overview")`)
	st, r := b.read(t)
	f.checkPage(t, st, r)
	if st.Active == "" {
		t.Errorf("no preset active on the default page (range %q)", st.Range)
	}
	t.Logf("default range %q (%s): %s sessions, %s conversions, %d buckets by %s", st.Range, st.Active,
		st.Cards["sessions"], st.Cards["conversions"], len(r.Series), r.Group)
	t.Logf("screenshot: %s", b.Screenshot(t, f.ShotsDir, "dashboard.png"))

	// 4. The last 7 days.
	b.Navigating(t, "the 7-day preset", chromedp.Click(chromedp.CSS(`.presets a[data-preset="7d"]`)),
		`document.querySelector('.presets a.active[data-preset="7d"]')`)
	st7, r7 := b.read(t)
	f.checkPage(t, st7, r7)
	if st7.Range == st.Range || st7.Cards["sessions"] == st.Cards["sessions"] && len(r7.Series) == len(r.Series) {
		t.Errorf("the page did not change with the range: %q %s sessions -> %q %s sessions", st.Range, st.Cards["sessions"], st7.Range, st7.Cards["sessions"])
	}
	t.Logf("7 days %q: %s sessions, %d buckets", st7.Range, st7.Cards["sessions"], len(r7.Series))
	t.Logf("screenshot: %s", b.Screenshot(t, f.ShotsDir, "dashboard-7d.png"))

	// 5. A custom range: the week before, through the form.
	from7, err := time.Parse("2006-01-02", st7.From)
	if err != nil {
		t.Fatalf("from field %q: %v", st7.From, err)
	}
	cf, ct := from7.AddDate(0, 0, -7).Format("2006-01-02"), from7.AddDate(0, 0, -1).Format("2006-01-02")
	b.Navigating(t, "a custom range", chromedp.Steps(
		chromedp.SetValue(chromedp.ID("from"), cf),
		chromedp.SetValue(chromedp.ID("to"), ct),
		chromedp.Click(chromedp.ID("apply")),
	), `document.getElementById("overview")`)
	stc, rc := b.read(t)
	f.checkPage(t, stc, rc)
	if stc.From != cf || stc.To != ct || stc.Active != "" || stc.Range == st7.Range {
		t.Errorf("custom range: fields %s..%s, preset %q, label %q; want %s..%s", stc.From, stc.To, stc.Active, stc.Range, cf, ct)
	}

	// 6. Hourly buckets: the group select submits itself on change (script; SetValue fires
	// input and change events).
	b.Navigating(t, "group by hour", chromedp.SetValue(chromedp.ID("group"), "hour"),
		`new URLSearchParams(location.search).get("group") === "hour" && document.getElementById("overview")`)
	sth, rh := b.read(t)
	f.checkPage(t, sth, rh)
	if rh.Group != "hour" || len(rh.Series) <= len(rc.Series) && len(rc.Series) > 0 {
		t.Errorf("group=hour: report group %q, %d buckets (by day: %d)", rh.Group, len(rh.Series), len(rc.Series))
	}

	// 7. Attribution model tabs switch in place (script), no reload.
	if _, err := chromedp.Run(b.Ctx, chromedp.Evaluate[chromedp.Void](`window.__nudgeSamePage = true`)); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(b.Ctx, chromedp.Click(chromedp.CSS(`.tabs a[data-model="linear"]`))); err != nil {
		t.Fatal(err)
	}
	b.WaitJS(t, "the linear attribution panel", `window.__nudgeSamePage && !document.querySelector('.attr-panel[data-model="linear"]').hidden &&
		document.querySelector('.attr-panel[data-model="last_touch"]').hidden && location.search.includes("model=linear")`)

	// 8. Back to 28 days, and download the funnel as CSV.
	b.Navigating(t, "the 28-day preset", chromedp.Click(chromedp.CSS(`.presets a[data-preset="28d"]`)),
		`document.querySelector('.presets a.active[data-preset="28d"]')`)
	path := b.Download(t, `#funnel .downloads a[href*="format=csv"]`)
	if ok, _ := regexp.MatchString(`^nudge-`+regexp.QuoteMeta(f.Site)+`-funnel-\d{4}-\d\d-\d\d-\d{4}-\d\d-\d\d\.csv$`, filepath.Base(path)); !ok {
		t.Errorf("downloaded file name %q", filepath.Base(path))
	}
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	var lines []string
	for sc.Scan() && len(lines) < 3 {
		lines = append(lines, sc.Text())
	}
	if len(lines) < 2 || !strings.HasPrefix(lines[0], "# nudge report v") || !strings.Contains(lines[0], "section=funnel") ||
		!strings.Contains(lines[1], "phase") || !strings.Contains(lines[1], "sessions") {
		t.Errorf("funnel CSV starts %q", lines)
	}
	t.Logf("downloaded %s: %q", filepath.Base(path), lines)

	// 9. No console error on any page so far.
	if errs := b.ConsoleErrors(t); len(errs) > 0 {
		t.Errorf("console errors: %v", errs)
	}

	// 10. Without JavaScript: the model tabs and the what-if form are plain links and forms.
	if _, err := chromedp.Call(b.Ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
		t.Fatalf("disable scripts: %v", err)
	}
	if err := chromedp.Do(b.Ctx, chromedp.Navigate(dash+"?range=7d")); err != nil {
		t.Fatal(err)
	}
	b.WaitJS(t, "the page without script", `document.readyState === "complete" && document.getElementById("overview")`)
	b.Navigating(t, "an attribution tab without script", chromedp.Click(chromedp.CSS(`.tabs a[data-model="position_based"]`)),
		`location.search.includes("model=position_based") && !document.querySelector('.attr-panel[data-model="position_based"]').hidden`)
	b.Navigating(t, "what if without script", chromedp.Steps(
		chromedp.SetValue(chromedp.ID("threshold"), "2"),
		chromedp.SetValue(chromedp.ID("budget"), "0.3"),
		// As a reader would: the button in view, not under the sticky toolbar.
		chromedp.Evaluate[chromedp.Void](`document.querySelector("form.whatif button").scrollIntoView({block: "center"})`),
		chromedp.Click(chromedp.CSS(`form.whatif button`)),
	), `location.search.includes("threshold=2") && location.search.includes("budget=0.3") && document.getElementById("impact")`)
	if _, err := chromedp.Call(b.Ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: false}); err != nil {
		t.Fatalf("enable scripts: %v", err)
	}

	// 11. Log out: back to the login page, and the dashboard is closed again.
	b.Navigating(t, "log out", chromedp.Click(chromedp.ID("logout")), `document.getElementById("key")`)
	if err := chromedp.Do(b.Ctx, chromedp.Navigate(dash)); err != nil {
		t.Fatal(err)
	}
	b.WaitJS(t, "the login page after logout", `document.getElementById("key") && location.pathname === "/dashboard/login"`)
}
