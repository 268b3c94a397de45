// Package serve owns nudge's HTTP API: the echo server, authentication with per-site write
// and admin keys, CORS, request logging, the single table that maps error kinds to HTTP
// statuses and JSON error bodies, and the handlers for ingest (POST /v1/events), the admin
// reads (sessions, features, stats), the decide path (POST /v1/decide and /v1/score, the live
// model holder Live with its atomic swaps; decide.go, live.go) and the admin model API
// (list, compare, promote, rollback, export, import, train; models.go), and the report API
// (GET /v1/report) with the dashboard (serve/dashboard) mounted at /dashboard/ (report.go).
//
// It is the only package that imports echo. It declares the small interfaces it needs
// (EventStore, Decoder, DecisionStore, ModelLoader, ModelRegistry, PropensityModel,
// UpliftModel, Reporter) and its own result types; cmd/nudge adapts the concrete data/
// packages to them. It must not import badger, training/ (except training/report, for the
// report's types) or cmd/.
package serve
