// Package dashboard owns the marketer's dashboard served by nudge at /dashboard/: a login
// page (a site's admin key for an HMAC-signed, HttpOnly, SameSite=Strict session cookie),
// and one server-rendered page (html/template) with every section of a report.Report —
// overview cards with the change against the previous period, the time series, the funnel
// with drop-off, micro-conversion rates, lift against the holdout with confidence
// intervals, the predicted impact of the policy with its threshold and budget curves,
// attribution under five models, and the report's notes — each with CSV and JSON download
// links to the report API (GET /v1/report). Charts are small inline SVGs drawn on the
// server (charts.go); the stylesheet, a few lines of progressive-enhancement script and the
// icon are embedded with go:embed. No CDN, no build step; every page works without script.
//
// It declares the one interface it needs (Reporter) and is plain net/http, so serve mounts
// it on echo and tests drive it with httptest. It may import data/config and
// training/report (for its types); it must not import echo, badger, serve or cmd/.
// dashtest holds the tests' report fixture and the headless Chromium harness.
package dashboard
