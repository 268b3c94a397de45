package dashboard

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/nudgehq/nudge/data/config"
	"github.com/nudgehq/nudge/training/report"
)

// Reporter computes a site's report (serve's Reporter, with its cache, satisfies it).
type Reporter interface {
	Report(ctx context.Context, site string, q report.Query) (*report.Report, error)
}

// Options configure a Handler. Config and Reporter are required.
type Options struct {
	Config   *config.Config
	Reporter Reporter
	// Sessions signs the session cookies (nil: a fresh random secret, 12-hour sessions).
	Sessions *Sessions
	// Prefix is where the dashboard is mounted (default "/dashboard"); ReportPath is the
	// report API that the download links use (default "/v1/report").
	Prefix, ReportPath string
	Now                func() time.Time
	Logger             *slog.Logger
}

// Handler serves the dashboard: the login page, the report page and its assets.
type Handler struct {
	cfg      *config.Config
	rep      Reporter
	sessions *Sessions
	prefix   string
	api      string
	now      func() time.Time
	log      *slog.Logger
	pages    map[string]*template.Template
	assets   http.Handler
}

//go:embed templates/*.html
var templateFS embed.FS

//go:embed assets
var assetFS embed.FS

// New builds the dashboard handler.
func New(opts Options) (*Handler, error) {
	if opts.Config == nil || opts.Reporter == nil {
		return nil, errors.New("dashboard: Options.Config and Reporter are required")
	}
	h := &Handler{
		cfg: opts.Config, rep: opts.Reporter, sessions: opts.Sessions, prefix: opts.Prefix, api: opts.ReportPath,
		now: opts.Now, log: opts.Logger, pages: map[string]*template.Template{},
	}
	if h.sessions == nil {
		var err error
		if h.sessions, err = NewSessions(nil, 0); err != nil {
			return nil, err
		}
	}
	if h.prefix == "" {
		h.prefix = "/dashboard"
	}
	h.prefix = strings.TrimSuffix(h.prefix, "/")
	if h.api == "" {
		h.api = "/v1/report"
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	funcs := template.FuncMap{
		"pct": fmtPct, "int": fmtInt, "money": fmtMoney, "humanize": humanize, "model": modelLabel,
		"join": strings.Join,
	}
	for _, page := range []string{"login", "report"} {
		t, err := template.New("base.html").Funcs(funcs).ParseFS(templateFS, "templates/base.html", "templates/"+page+".html")
		if err != nil {
			return nil, fmt.Errorf("dashboard: templates: %w", err)
		}
		h.pages[page] = t
	}
	sub, err := fs.Sub(assetFS, "assets")
	if err != nil {
		return nil, err
	}
	h.assets = http.StripPrefix(h.prefix+"/assets/", http.FileServerFS(sub))
	return h, nil
}

// Sessions returns the session signer, so the report API can accept the dashboard's cookie.
func (h *Handler) Sessions() *Sessions { return h.sessions }

// Prefix is the dashboard's path prefix ("/dashboard").
func (h *Handler) Prefix() string { return h.prefix }

// ServeHTTP routes the dashboard's paths.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	switch {
	case path == h.prefix:
		http.Redirect(w, r, h.prefix+"/", http.StatusMovedPermanently)
	case strings.HasPrefix(path, h.prefix+"/assets/"):
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.methodNotAllowed(w, "GET, HEAD")
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=3600")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		h.assets.ServeHTTP(w, r)
	case path == h.prefix+"/login":
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			h.loginPage(w, r, http.StatusOK, "")
		case http.MethodPost:
			h.login(w, r)
		default:
			h.methodNotAllowed(w, "GET, HEAD, POST")
		}
	case path == h.prefix+"/logout":
		if r.Method != http.MethodPost {
			h.methodNotAllowed(w, "POST")
			return
		}
		h.logout(w, r)
	case path == h.prefix+"/":
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.methodNotAllowed(w, "GET, HEAD")
			return
		}
		h.reportPage(w, r)
	default:
		h.secureHeaders(w)
		http.Error(w, "404 page not found", http.StatusNotFound)
	}
}

func (h *Handler) methodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	http.Error(w, "405 method not allowed", http.StatusMethodNotAllowed)
}

// secureHeaders are sent with every page: no framing, no inline script, no sniffing, no
// caching of pages that hold a site's figures.
func (h *Handler) secureHeaders(w http.ResponseWriter) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "same-origin")
	hd.Set("Cache-Control", "no-store")
}

func (h *Handler) render(w http.ResponseWriter, page string, status int, data any) {
	var b strings.Builder
	if err := h.pages[page].Execute(&b, data); err != nil {
		h.log.Error("dashboard: render", "page", page, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h.secureHeaders(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(b.String()))
}

// siteOption is a site in the selectors.
type siteOption struct {
	ID, Name string
	Selected bool
}

func (h *Handler) siteOptions(selected string) []siteOption {
	out := make([]siteOption, len(h.cfg.Sites))
	for i := range h.cfg.Sites {
		s := &h.cfg.Sites[i]
		name := s.Name
		if name == "" {
			name = s.ID
		}
		out[i] = siteOption{ID: s.ID, Name: name, Selected: s.ID == selected}
	}
	return out
}

type loginData struct {
	Prefix, Error, Site, Next string
	Sites                     []siteOption
	Multi                     bool
}

func (h *Handler) loginPage(w http.ResponseWriter, r *http.Request, status int, msg string) {
	site := r.FormValue("site")
	if site == "" && len(h.cfg.Sites) > 0 {
		site = h.cfg.Sites[0].ID
	}
	h.render(w, "login", status, loginData{
		Prefix: h.prefix, Error: msg, Site: site, Next: h.safeNext(r.FormValue("next")),
		Sites: h.siteOptions(site), Multi: len(h.cfg.Sites) > 1,
	})
}

// safeNext keeps a post-login redirect inside the dashboard.
func (h *Handler) safeNext(next string) string {
	if !strings.HasPrefix(next, h.prefix+"/") || strings.ContainsAny(next, "\\\r\n") || strings.HasPrefix(next, "//") ||
		strings.HasPrefix(next, h.prefix+"/login") || strings.HasPrefix(next, h.prefix+"/logout") {
		return ""
	}
	return next
}

// sameOrigin rejects a form posted from another origin (when the browser says so).
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" || o == "null" {
		return o == ""
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		h.secureHeaders(w)
		http.Error(w, "403 cross-origin login refused", http.StatusForbidden)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		h.loginPage(w, r, http.StatusBadRequest, "The form could not be read.")
		return
	}
	key := strings.TrimSpace(r.PostFormValue("key"))
	named := r.PostFormValue("site")
	site, ok := h.cfg.SiteByAdminKey(key) // constant-time over every site
	switch {
	case key == "":
		h.loginPage(w, r, http.StatusUnauthorized, "Enter the site's admin key.")
		return
	case !ok:
		h.log.Info("dashboard: login refused", "site", named, "reason", "unknown admin key")
		h.loginPage(w, r, http.StatusUnauthorized, "Wrong admin key.")
		return
	case named != "" && named != site.ID:
		h.log.Info("dashboard: login refused", "site", named, "reason", "key of another site")
		h.loginPage(w, r, http.StatusUnauthorized, fmt.Sprintf("This is not the admin key of site %q.", named))
		return
	}
	now := h.now()
	sites := []string{site.ID}
	if prev, err := h.sessions.FromRequest(r, now); err == nil {
		for _, s := range prev {
			if s != site.ID {
				sites = append(sites, s)
			}
		}
	}
	http.SetCookie(w, h.sessions.cookie(r, h.sessions.Issue(sites, now), now))
	h.log.Info("dashboard: login", "site", site.ID)
	next := h.safeNext(r.PostFormValue("next"))
	if next == "" {
		next = h.prefix + "/?site=" + url.QueryEscape(site.ID)
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, clearCookie(r))
	http.Redirect(w, r, h.prefix+"/login", http.StatusSeeOther)
}

// toLogin redirects to the login page, coming back to the request's URL afterwards.
func (h *Handler) toLogin(w http.ResponseWriter, r *http.Request, site string) {
	v := url.Values{"next": {r.URL.RequestURI()}}
	if site != "" {
		v.Set("site", site)
	}
	if _, err := r.Cookie(CookieName); err == nil {
		http.SetCookie(w, clearCookie(r)) // a bad or expired cookie goes
	}
	http.Redirect(w, r, h.prefix+"/login?"+v.Encode(), http.StatusSeeOther)
}

type pageData struct {
	Prefix, API, SiteID, SiteName, Error string
	Sites                                []siteOption
	Multi                                bool
	Sel                                  Selection
	Presets                              []presetLink
	Groups                               []groupOption
	Hidden                               []hiddenField
	Model                                string
	V                                    *view
}

type presetLink struct {
	Name, Label, URL string
	Active           bool
}

type groupOption struct {
	Value, Label string
	Selected     bool
}

type hiddenField struct{ Name, Value string }

func (h *Handler) reportPage(w http.ResponseWriter, r *http.Request) {
	now := h.now()
	sites, err := h.sessions.FromRequest(r, now)
	q := r.URL.Query()
	named := q.Get("site")
	if err != nil {
		h.toLogin(w, r, named)
		return
	}
	if named == "" {
		named = sites[0]
	}
	if !slices.Contains(sites, named) {
		// Logged in, but not to this site: its key is needed too.
		v := url.Values{"site": {named}, "next": {r.URL.RequestURI()}}
		http.Redirect(w, r, h.prefix+"/login?"+v.Encode(), http.StatusSeeOther)
		return
	}
	site, ok := h.cfg.Site(named)
	if !ok {
		h.toLogin(w, r, "")
		return
	}
	loc := site.Location()
	data := &pageData{
		Prefix: h.prefix, API: h.api, SiteID: site.ID, SiteName: site.Name,
		Sites: h.siteOptions(site.ID), Multi: len(h.cfg.Sites) > 1, Model: q.Get("model"),
	}
	if data.SiteName == "" {
		data.SiteName = site.ID
	}
	sel, err := ParseQuery(q, site.ID, loc, now, DefaultPreset, true)
	data.Sel = sel
	h.formOptions(data, sel)
	if err != nil {
		data.Error = err.Error()
		h.render(w, "report", http.StatusBadRequest, data)
		return
	}
	if m := data.Model; m != "" && !slices.Contains(AttributionModels, m) {
		data.Error = (&ParamError{"model", m, "want one of " + strings.Join(AttributionModels, ", ")}).Error()
		h.render(w, "report", http.StatusBadRequest, data)
		return
	}
	rep, err := h.rep.Report(r.Context(), site.ID, sel.Query)
	if errors.Is(err, report.ErrQuery) {
		data.Error = err.Error()
		h.render(w, "report", http.StatusBadRequest, data)
		return
	}
	if err != nil {
		h.log.Error("dashboard: report", "site", site.ID, "err", err)
		data.Error = "The report could not be computed: " + err.Error()
		h.render(w, "report", http.StatusInternalServerError, data)
		return
	}
	links := func(section string) downloads {
		v := sel.APIValues(loc)
		d := downloads{}
		v.Set("section", section)
		v.Set("format", "csv")
		d.CSV = h.api + "?" + v.Encode()
		v.Set("format", "json")
		d.JSON = h.api + "?" + v.Encode()
		return d
	}
	pageURL := func(extra url.Values) string {
		v := sel.Values()
		for k, vs := range extra {
			v[k] = vs
		}
		return h.prefix + "/?" + v.Encode()
	}
	data.V = newView(rep, loc, data.Model, links, pageURL)
	h.render(w, "report", http.StatusOK, data)
}

// formOptions fills the range presets, the group options and the hidden fields that carry
// the selection through the other forms.
func (h *Handler) formOptions(d *pageData, sel Selection) {
	labels := map[string]string{"7d": "Last 7 days", "28d": "Last 28 days", "all": "All time"}
	for _, p := range Presets {
		v := sel.Values()
		v.Del("from")
		v.Del("to")
		v.Set("range", p)
		d.Presets = append(d.Presets, presetLink{Name: p, Label: labels[p], URL: h.prefix + "/?" + v.Encode(), Active: sel.Preset == p})
	}
	d.Groups = []groupOption{{"", "Auto", sel.Query.Group == ""}}
	for _, g := range Groups {
		d.Groups = append(d.Groups, groupOption{g, humanize(g), sel.Query.Group == g})
	}
	v := sel.Values()
	for _, k := range []string{"site", "range", "from", "to", "group"} {
		if v.Get(k) != "" {
			d.Hidden = append(d.Hidden, hiddenField{k, v.Get(k)})
		}
	}
}

// APIValues are the report API's parameters for the same report: explicit bounds rather
// than a preset, so a download made later still covers the range on screen, and to is the
// exclusive end, as the API reads it.
func (s Selection) APIValues(loc *time.Location) url.Values {
	v := s.Values()
	v.Del("range")
	v.Del("from")
	v.Del("to")
	bound := func(t time.Time) string {
		if l := t.In(loc); l.Hour() == 0 && l.Minute() == 0 && l.Second() == 0 && l.Nanosecond() == 0 {
			return l.Format(dateLayout)
		}
		return t.Format(time.RFC3339Nano)
	}
	if !s.Query.From.IsZero() {
		v.Set("from", bound(s.Query.From))
	}
	if !s.Query.To.IsZero() {
		v.Set("to", bound(s.Query.To))
	}
	return v
}
