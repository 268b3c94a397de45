// Package serve owns nudge's HTTP API: the echo server, authentication with per-site write
// and admin keys, CORS, request logging, the single table that maps error kinds to HTTP
// statuses and JSON error bodies, and the handlers for ingest (POST /v1/events) and the admin
// reads (sessions, features, stats).
//
// It is the only package that imports echo. It declares the small interfaces it needs
// (EventStore, Decoder) and its own result types; cmd/nudge adapts the concrete data/
// packages to them. It must not import badger, training/ or cmd/.
package serve
