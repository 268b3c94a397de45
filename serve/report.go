package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/nudgehq/nudge/data/config"
	"github.com/nudgehq/nudge/serve/dashboard"
	"github.com/nudgehq/nudge/training/report"
)

// Reporter computes a site's report (training/report.Build behind an adapter in cmd/).
// Implementations wrap ErrBadParam for a query the engine refuses and ErrNotFound for an
// unknown site.
type Reporter interface {
	Report(ctx context.Context, site string, q report.Query) (*report.Report, error)
}

// DefaultReportTTL is how long a computed report is reused for the same site and query.
const DefaultReportTTL = 30 * time.Second

// reportRoutes are the report API and the dashboard, mounted when Options.Reporter is set.
type reportRoutes struct {
	reports *reportCache
	dash    *dashboard.Handler
}

// routesReport mounts GET /v1/report and the dashboard (/dashboard/).
func (s *Server) routesReport(e *echo.Echo, opts Options) error {
	ttl := opts.ReportTTL
	if ttl <= 0 {
		ttl = DefaultReportTTL
	}
	cache := newReportCache(opts.Reporter, ttl, s.now)
	dash, err := dashboard.New(dashboard.Options{
		Config: s.cfg, Reporter: cache, Sessions: opts.DashboardSessions, Now: s.now, Logger: s.log,
	})
	if err != nil {
		return fmt.Errorf("serve: dashboard: %w", err)
	}
	s.report = &reportRoutes{reports: cache, dash: dash}
	e.GET("/v1/report", s.getReport)
	h := echo.WrapHandler(dash)
	e.Any(dash.Prefix(), h)
	e.Any(dash.Prefix()+"/*", h)
	return nil
}

// reportSite authenticates a report request: the site's admin key as a Bearer token, or
// (for the dashboard's download links) the dashboard's session cookie for that site.
func (s *Server) reportSite(c echo.Context) (*config.Site, error) {
	req := c.Request()
	if req.Header.Get(echo.HeaderAuthorization) == "" && s.report != nil {
		if _, err := req.Cookie(dashboard.CookieName); err == nil {
			sites, err := s.report.dash.Sessions().FromRequest(req, s.now())
			if err != nil {
				return nil, newError(ErrUnauthorized, nil, "dashboard session: %v; log in again at %s/login", err, s.report.dash.Prefix())
			}
			id := c.QueryParam("site")
			if id == "" {
				id = sites[0]
			}
			if !slices.Contains(sites, id) {
				return nil, newError(ErrForbidden, nil, "the dashboard session is not logged in to site %q", id)
			}
			site, ok := s.cfg.Site(id)
			if !ok {
				return nil, newError(ErrForbidden, nil, "unknown site %q", id)
			}
			return site, nil
		}
	}
	site, _, err := s.authenticate(c, RoleAdmin)
	return site, err
}

// reportHeaderKeys are the report's top-level JSON fields that a one-section JSON keeps.
var reportHeaderKeys = []string{"version", "site", "from", "to", "time_zone", "group", "generated", "macro_name", "value", "notes"}

// getReport serves GET /v1/report?site=&from=&to=&range=&group=&threshold=&budget=&format=json|csv&section=.
func (s *Server) getReport(c echo.Context) error {
	site, err := s.reportSite(c)
	if err != nil {
		return err
	}
	q := c.QueryParams()
	format := q.Get("format")
	switch format {
	case "":
		format = "json"
	case "json", "csv":
	default:
		return badParam("format", format, "want json or csv")
	}
	section := q.Get("section")
	if section != "" && section != "all" && !slices.Contains(report.Sections, section) {
		return badParam("section", section, "want one of "+strings.Join(report.Sections, ", ")+" or all")
	}
	if format == "csv" && section == "" {
		return badParam("section", section, "format=csv needs a section: one of "+strings.Join(report.Sections, ", ")+" or all")
	}
	loc := site.Location()
	sel, err := dashboard.ParseQuery(q, site.ID, loc, s.now(), "", false)
	var pe *dashboard.ParamError
	if errors.As(err, &pe) {
		return badParam(pe.Param, pe.Value, pe.Reason)
	}
	if err != nil {
		return err
	}
	rep, err := s.report.reports.Report(c.Request().Context(), site.ID, sel.Query)
	if errors.Is(err, ErrBadParam) || errors.Is(err, ErrNotFound) {
		var ae *apiError
		if errors.As(err, &ae) {
			return err
		}
		kind := ErrBadParam
		if errors.Is(err, ErrNotFound) {
			kind = ErrNotFound
		}
		return newError(kind, nil, "%v", err)
	}
	if err != nil {
		return fmt.Errorf("serve: report: %w", err)
	}
	var buf bytes.Buffer
	h := c.Response().Header()
	if format == "csv" {
		sections := []string{section}
		if section == "all" {
			sections = report.Sections
		}
		for _, sec := range sections {
			if err := rep.WriteCSV(&buf, sec); err != nil {
				return fmt.Errorf("serve: report csv: %w", err)
			}
		}
		h.Set(echo.HeaderContentDisposition, `attachment; filename="`+dashboard.Filename(rep, section, "csv", loc)+`"`)
		return c.Blob(http.StatusOK, "text/csv; charset=utf-8", buf.Bytes())
	}
	if err := rep.WriteJSON(&buf); err != nil {
		return fmt.Errorf("serve: report json: %w", err)
	}
	body := buf.Bytes()
	if section != "" && section != "all" {
		if body, err = sectionJSON(body, section); err != nil {
			return fmt.Errorf("serve: report json: %w", err)
		}
	}
	if section != "" {
		h.Set(echo.HeaderContentDisposition, `attachment; filename="`+dashboard.Filename(rep, section, "json", loc)+`"`)
	}
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, body)
}

// sectionJSON keeps, of a report's JSON, the header fields and one section.
func sectionJSON(full []byte, section string) ([]byte, error) {
	var all map[string]json.RawMessage
	if err := json.Unmarshal(full, &all); err != nil {
		return nil, err
	}
	out := map[string]json.RawMessage{}
	for _, k := range append(slices.Clone(reportHeaderKeys), section) {
		if v, ok := all[k]; ok {
			out[k] = v
		}
	}
	out["section"], _ = json.Marshal(section)
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

func badParam(name, value, reason string) error {
	return newError(ErrBadParam, []map[string]string{{"parameter": name, "value": value, "reason": reason}},
		"parameter %s=%q: %s", name, value, reason)
}

// reportCache computes each (site, query) once per TTL: the dashboard's page and its
// downloads reuse one computation. Concurrent requests for the same report wait for the
// one in flight; errors are not kept.
type reportCache struct {
	r   Reporter
	ttl time.Duration
	now func() time.Time

	mu      sync.Mutex
	entries map[string]*reportEntry
}

type reportEntry struct {
	done chan struct{}
	rep  *report.Report
	err  error
	at   time.Time
}

// maxReportEntries bounds the cache; past it, expired entries go, then the oldest.
const maxReportEntries = 64

func newReportCache(r Reporter, ttl time.Duration, now func() time.Time) *reportCache {
	return &reportCache{r: r, ttl: ttl, now: now, entries: map[string]*reportEntry{}}
}

// Report returns the report of (site, q), computed at most once per TTL.
func (c *reportCache) Report(ctx context.Context, site string, q report.Query) (*report.Report, error) {
	q.Site = site
	kb, err := json.Marshal(q)
	if err != nil {
		return nil, fmt.Errorf("serve: report cache key: %w", err)
	}
	key := string(kb)
	now := c.now()
	c.mu.Lock()
	e, ok := c.entries[key]
	if ok && e.rep != nil && now.Sub(e.at) >= c.ttl {
		delete(c.entries, key)
		ok = false
	}
	if !ok {
		c.evict(now)
		e = &reportEntry{done: make(chan struct{}), at: now}
		c.entries[key] = e
		c.mu.Unlock()
		rep, err := c.r.Report(ctx, site, q)
		c.mu.Lock()
		e.rep, e.err, e.at = rep, err, c.now()
		if err != nil && c.entries[key] == e {
			delete(c.entries, key)
		}
		c.mu.Unlock()
		close(e.done)
		return rep, err
	}
	c.mu.Unlock()
	select {
	case <-e.done:
		return e.rep, e.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// evict makes room for one entry; c.mu is held.
func (c *reportCache) evict(now time.Time) {
	if len(c.entries) < maxReportEntries {
		return
	}
	var oldest string
	for k, e := range c.entries {
		select {
		case <-e.done:
		default:
			continue // in flight
		}
		if now.Sub(e.at) >= c.ttl {
			delete(c.entries, k)
			continue
		}
		if oldest == "" || e.at.Before(c.entries[oldest].at) {
			oldest = k
		}
	}
	if len(c.entries) >= maxReportEntries && oldest != "" {
		delete(c.entries, oldest)
	}
}
