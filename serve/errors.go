package serve

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"
)

// Error kinds. Handlers and the adapters in cmd/ wrap these (errors.Is matches them); the
// table in errorKinds maps each to an HTTP status and a stable JSON error code.
var (
	ErrUnauthorized     = errors.New("serve: unauthorized")
	ErrForbidden        = errors.New("serve: forbidden")
	ErrMalformed        = errors.New("serve: malformed request body")
	ErrNoValidEvents    = errors.New("serve: no valid event in batch")
	ErrBodyTooLarge     = errors.New("serve: request body too large")
	ErrTooManyEvents    = errors.New("serve: too many events in batch")
	ErrUnsupportedMedia = errors.New("serve: unsupported content type")
	ErrBadParam         = errors.New("serve: invalid parameter")
	ErrNotFound         = errors.New("serve: not found")
	ErrOverloaded       = errors.New("serve: overloaded")
	ErrUnavailable      = errors.New("serve: unavailable")
)

type errorKind struct {
	err    error
	status int
	code   string
}

// errorKinds is the one table from error kinds to HTTP statuses and JSON codes. The first
// match wins; an error matching none is a 500 "internal".
var errorKinds = []errorKind{
	{ErrUnauthorized, http.StatusUnauthorized, "unauthorized"},
	{ErrForbidden, http.StatusForbidden, "forbidden"},
	{ErrMalformed, http.StatusBadRequest, "malformed_body"},
	{ErrNoValidEvents, http.StatusBadRequest, "no_valid_events"},
	{ErrBadParam, http.StatusBadRequest, "bad_parameter"},
	{ErrBodyTooLarge, http.StatusRequestEntityTooLarge, "body_too_large"},
	{ErrTooManyEvents, http.StatusRequestEntityTooLarge, "too_many_events"},
	{ErrUnsupportedMedia, http.StatusUnsupportedMediaType, "unsupported_media_type"},
	{ErrNotFound, http.StatusNotFound, "not_found"},
	{ErrOverloaded, http.StatusServiceUnavailable, "overloaded"},
	{ErrUnavailable, http.StatusServiceUnavailable, "unavailable"},
	{context.DeadlineExceeded, http.StatusServiceUnavailable, "timeout"},
	{context.Canceled, http.StatusServiceUnavailable, "canceled"},
}

// statusCodes names the statuses echo itself produces (routing, body limit, ...).
var statusCodes = map[int]string{
	http.StatusBadRequest:            "bad_request",
	http.StatusUnauthorized:          "unauthorized",
	http.StatusForbidden:             "forbidden",
	http.StatusNotFound:              "not_found",
	http.StatusMethodNotAllowed:      "method_not_allowed",
	http.StatusRequestEntityTooLarge: "body_too_large",
	http.StatusUnsupportedMediaType:  "unsupported_media_type",
	http.StatusTooManyRequests:       "too_many_requests",
	http.StatusInternalServerError:   "internal",
	http.StatusServiceUnavailable:    "unavailable",
}

// ErrorBody is the JSON body of every error response.
type ErrorBody struct {
	Error ErrorInfo `json:"error"`
}

// ErrorInfo describes one error: a stable code, a human message and optional details
// (for a rejected batch, one RejectedEvent per bad event).
type ErrorInfo struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Details any    `json:"details,omitempty"`
}

// apiError is an error with a message meant for the client and optional details.
type apiError struct {
	kind    error
	msg     string
	details any
}

func (e *apiError) Error() string { return e.kind.Error() + ": " + e.msg }
func (e *apiError) Unwrap() error { return e.kind }

func newError(kind error, details any, format string, args ...any) error {
	return &apiError{kind: kind, msg: fmt.Sprintf(format, args...), details: details}
}

// classify maps err to its status, code, client message and details.
func classify(err error) (status int, info ErrorInfo) {
	var he *echo.HTTPError
	if errors.As(err, &he) && !errors.Is(err, context.DeadlineExceeded) {
		status = he.Code
		info.Code = statusCodes[status]
		if info.Code == "" {
			info.Code = "error"
		}
		info.Message = fmt.Sprint(he.Message)
		if status == http.StatusRequestEntityTooLarge {
			info.Message = "request body too large"
		}
		if status == http.StatusNotFound {
			info.Message = "no such endpoint"
		}
		return status, info
	}
	status, info.Code = http.StatusInternalServerError, "internal"
	for _, k := range errorKinds {
		if errors.Is(err, k.err) {
			status, info.Code = k.status, k.code
			break
		}
	}
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		info.Message, info.Details = ae.msg, ae.details
	case status == http.StatusInternalServerError:
		info.Message = "internal error" // details are logged, not sent
	default:
		info.Message = err.Error()
	}
	return status, info
}

// handleError is echo's HTTPErrorHandler: every error, echo's own included, leaves as the
// same JSON body.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	status, info := classify(err)
	if status >= 500 {
		s.log.Error("request failed", "err", err, "status", status,
			"request_id", c.Response().Header().Get(echo.HeaderXRequestID))
	}
	if status == http.StatusServiceUnavailable {
		c.Response().Header().Set("Retry-After", strconv.Itoa(int(s.retryAfter.Seconds()+0.5)))
	}
	if status == http.StatusUnauthorized {
		c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="nudge"`)
	}
	if c.Request().Method == http.MethodHead {
		err = c.NoContent(status)
	} else {
		err = c.JSON(status, ErrorBody{Error: info})
	}
	if err != nil {
		s.log.Debug("write error response", "err", err)
	}
}

// Mark returns err marked with kind: errors.Is(Mark(kind, err), kind) holds, and the message
// is err's own. Adapters use it to map other packages' sentinel errors onto serve's kinds.
func Mark(kind, err error) error {
	if err == nil {
		return nil
	}
	return &marked{kind: kind, err: err}
}

type marked struct{ kind, err error }

func (m *marked) Error() string   { return m.err.Error() }
func (m *marked) Unwrap() []error { return []error{m.kind, m.err} }
