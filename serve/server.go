package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/nudgehq/nudge/data/config"
	"github.com/nudgehq/nudge/features"
	"github.com/nudgehq/nudge/serve/dashboard"
)

// EventStore is what the API needs of the event store. Append must return only once the
// events are durable: the API acknowledges nothing before. Implementations wrap ErrNotFound
// and ErrOverloaded (and ErrUnavailable once closed) so the API can map them.
type EventStore interface {
	Append(ctx context.Context, site string, evs []features.Event) (AppendResult, error)
	Session(ctx context.Context, site, session string) (SessionInfo, []features.Event, error)
	ResolveSession(ctx context.Context, site, clientSessionID string) (string, error)
	Features(ctx context.Context, site, session string, asOfTS int64, out []float64) (*features.Schema, error)
	Stats(ctx context.Context, site string) (Stats, error)
}

// AppendResult is what one Append did.
type AppendResult struct {
	Stored     int      // new events logged
	Duplicates int      // events whose event_id was already stored (retries)
	Unlogged   int      // events without consent: folded into live state, not logged
	Sessions   []string // server-side sessions touched
}

// SessionInfo describes one server-side session.
type SessionInfo struct {
	ID          string // server-side session id
	ClientID    string // the client's session id
	AnonymousID string
	UserID      string
	StartTS     int64 // Unix ms
	LastTS      int64 // Unix ms
	Events      int
}

// Stats are a site's counts.
type Stats struct {
	Events     map[string]int64 // per event type name
	Sessions   int64
	Visitors   int64
	Duplicates int64
	Unlogged   int64
	FirstTS    int64
	LastTS     int64
}

// Batch is a decoded and validated ingest batch.
type Batch struct {
	Events   []features.Event // the valid events
	Index    []int            // Index[i] is the position of Events[i] in the request
	Errors   []FieldError     // one per invalid event
	Received int              // events in the request
}

// FieldError says why one event of a batch was rejected.
type FieldError struct {
	Index   int
	EventID string
	Field   string
	Reason  string
}

// Decoder decodes and validates an ingest body. It wraps ErrMalformed for a body that is not
// a batch and ErrTooManyEvents for a batch past the length limit.
type Decoder func(body []byte, now time.Time, consentDefault bool) (Batch, error)

// Options configure a Server. Config, Events and Decode are required.
type Options struct {
	Config *config.Config
	Events EventStore
	Decode Decoder
	Logger *slog.Logger     // nil discards
	Now    func() time.Time // nil means time.Now

	// BodyLimit is the largest accepted request body in bytes (default DefaultBodyLimit).
	BodyLimit int64
	// RequestTimeout bounds each request's context (default 30s).
	RequestTimeout time.Duration
	// RetryAfter is the Retry-After sent with a 503 (default 1s).
	RetryAfter time.Duration

	// Decisions enables the decide path (POST /v1/decide, /v1/score; decide.go); Live holds
	// the promoted models (nil: NewLive(Config, nil), no models); Models enables the admin
	// model API (models.go).
	Decisions DecisionStore
	Live      *Live
	Models    ModelRegistry

	// Reporter enables the report API (GET /v1/report) and the dashboard (/dashboard/;
	// report.go). ReportTTL is how long a report is reused (default DefaultReportTTL);
	// DashboardSessions signs the dashboard's cookies (nil: a random per-process secret).
	Reporter          Reporter
	ReportTTL         time.Duration
	DashboardSessions *dashboard.Sessions
}

// DefaultBodyLimit is the default largest request body: 1 MiB.
const DefaultBodyLimit = 1 << 20

// Server is nudge's HTTP API.
type Server struct {
	cfg        *config.Config
	events     EventStore
	decode     Decoder
	log        *slog.Logger
	now        func() time.Time
	bodyLimit  int64
	retryAfter time.Duration
	origins    map[string]bool // union of every site's allowed origins, for preflights

	echo *echo.Echo
	http *http.Server

	mu      sync.Mutex
	ln      net.Listener
	done    chan struct{}
	serveMu sync.Mutex
	serveEr error

	schemaMu sync.Mutex
	schemas  map[string]*features.Schema

	decisions DecisionStore
	live      *Live
	models    ModelRegistry
	report    *reportRoutes // nil without a Reporter
}

// New builds a Server. It does not listen: call Open.
func New(opts Options) (*Server, error) {
	if opts.Config == nil || opts.Events == nil || opts.Decode == nil {
		return nil, errors.New("serve: Options.Config, Events and Decode are required")
	}
	s := &Server{
		cfg:        opts.Config,
		events:     opts.Events,
		decode:     opts.Decode,
		log:        opts.Logger,
		now:        opts.Now,
		bodyLimit:  opts.BodyLimit,
		retryAfter: opts.RetryAfter,
		origins:    map[string]bool{},
		schemas:    map[string]*features.Schema{},
		decisions:  opts.Decisions,
		live:       opts.Live,
		models:     opts.Models,
	}
	if s.live == nil && s.decisions != nil {
		var err error
		if s.live, err = NewLive(s.cfg, nil); err != nil {
			return nil, err
		}
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.bodyLimit <= 0 {
		s.bodyLimit = DefaultBodyLimit
	}
	if s.retryAfter <= 0 {
		s.retryAfter = time.Second
	}
	timeout := opts.RequestTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	for i := range s.cfg.Sites {
		for _, o := range s.cfg.Sites[i].AllowedOrigins {
			s.origins[o] = true
		}
	}

	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.handleError
	e.Use(middleware.RequestID())
	e.Use(middleware.RequestLoggerWithConfig(middleware.RequestLoggerConfig{
		LogStatus: true, LogMethod: true, LogURIPath: true, LogLatency: true,
		LogRequestID: true, LogError: true, LogContentLength: true, LogResponseSize: true,
		HandleError: true, // the error handler runs first, so the logged status is the sent one
		LogValuesFunc: func(c echo.Context, v middleware.RequestLoggerValues) error {
			level := slog.LevelInfo
			if v.Status >= 500 {
				level = slog.LevelError
			}
			attrs := []slog.Attr{
				slog.String("method", v.Method), slog.String("path", v.URIPath),
				slog.Int("status", v.Status), slog.Duration("latency", v.Latency),
				slog.String("request_id", v.RequestID), slog.Int64("bytes_out", v.ResponseSize),
			}
			if v.Error != nil {
				attrs = append(attrs, slog.String("err", v.Error.Error()))
			}
			s.log.LogAttrs(c.Request().Context(), level, "request", attrs...)
			return nil
		},
	}))
	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{
		LogErrorFunc: func(c echo.Context, err error, stack []byte) error {
			s.log.Error("panic in handler", "err", err, "stack", string(stack))
			return err
		},
	}))
	e.Use(middleware.CORSWithConfig(middleware.CORSConfig{
		AllowOriginFunc: func(origin string) (bool, error) { return s.origins[origin], nil },
		AllowMethods:    []string{http.MethodGet, http.MethodPost, http.MethodOptions},
		AllowHeaders:    []string{echo.HeaderAuthorization, echo.HeaderContentType},
		ExposeHeaders:   []string{echo.HeaderXRequestID, "Retry-After"},
		MaxAge:          600,
	}))
	e.Use(middleware.ContextTimeoutWithConfig(middleware.ContextTimeoutConfig{Timeout: timeout}))

	e.GET("/healthz", s.healthz)
	e.POST("/v1/events", s.postEvents)
	e.GET("/v1/sessions/:id", s.getSession)
	e.GET("/v1/sessions/:id/features", s.getFeatures)
	e.GET("/v1/stats", s.getStats)
	s.routesDecide(e)
	s.routesModels(e)
	if opts.Reporter != nil {
		if err := s.routesReport(e, opts); err != nil {
			return nil, err
		}
	}
	s.echo = e
	s.http = &http.Server{
		Handler:           e,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       timeout,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// Handler returns the API as an http.Handler (for tests and embedding).
func (s *Server) Handler() http.Handler { return s.echo }

// Open binds addr (port 0 picks a free port) synchronously, so a busy port fails at once,
// and serves in the background until Close.
func (s *Server) Open(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("serve: listen %s: %w", addr, err)
	}
	s.mu.Lock()
	if s.ln != nil {
		s.mu.Unlock()
		ln.Close()
		return errors.New("serve: already open")
	}
	s.ln, s.done = ln, make(chan struct{})
	s.mu.Unlock()
	go func() {
		defer close(s.done)
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.serveMu.Lock()
			s.serveEr = err
			s.serveMu.Unlock()
			s.log.Error("http server stopped", "err", err)
		}
	}()
	return nil
}

// Addr returns the bound address ("" before Open).
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Close stops accepting connections and waits, within ctx, for in-flight requests to finish.
// It does not close the EventStore (its owner does, after Close returns).
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	done := s.done
	s.mu.Unlock()
	err := s.http.Shutdown(ctx)
	if err != nil {
		s.http.Close() // deadline passed: drop what is left
		err = fmt.Errorf("serve: shutdown: %w", err)
	}
	if done != nil {
		<-done
	}
	s.serveMu.Lock()
	defer s.serveMu.Unlock()
	return errors.Join(err, s.serveEr)
}

// schema returns the feature schema of a site, built once from its configuration.
func (s *Server) schema(site *config.Site) (*features.Schema, error) {
	s.schemaMu.Lock()
	defer s.schemaMu.Unlock()
	if sc, ok := s.schemas[site.ID]; ok {
		return sc, nil
	}
	sc, err := features.NewSchema(site.FeatureSpec())
	if err != nil {
		return nil, fmt.Errorf("serve: schema of site %q: %w", site.ID, err)
	}
	s.schemas[site.ID] = sc
	return sc, nil
}

func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}
