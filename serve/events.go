package serve

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"

	"github.com/labstack/echo/v4"
)

// IngestResponse is the body of a successful POST /v1/events.
type IngestResponse struct {
	Received   int             `json:"received"`   // events in the request
	Accepted   int             `json:"accepted"`   // valid events, all durable now
	Stored     int             `json:"stored"`     // new events written to the log
	Duplicates int             `json:"duplicates"` // already stored (a retry): not written again
	Unlogged   int             `json:"unlogged"`   // no consent: folded into live state only
	Rejected   []RejectedEvent `json:"rejected"`   // invalid events, by index
}

// RejectedEvent says why the event at Index of the request was rejected.
type RejectedEvent struct {
	Index   int    `json:"index"`
	EventID string `json:"event_id,omitempty"`
	Field   string `json:"field"`
	Reason  string `json:"reason"`
}

// postEvents is POST /v1/events: decode and validate a batch, store its valid events
// durably, then answer. Nothing is acknowledged before the store says it is on disk.
func (s *Server) postEvents(c echo.Context) error {
	site, _, err := s.authenticate(c, RoleWrite)
	if err != nil {
		return err
	}
	body, err := s.readBody(c)
	if err != nil {
		return err
	}
	b, err := s.decode(body, s.now(), site.ConsentByDefault())
	if err != nil {
		switch {
		case errors.Is(err, ErrTooManyEvents):
			return newError(ErrTooManyEvents, nil, "%v", err)
		case errors.Is(err, ErrMalformed):
			return newError(ErrMalformed, nil, "%v", err)
		}
		return fmt.Errorf("serve: decode batch: %w", err)
	}
	rejected := make([]RejectedEvent, len(b.Errors))
	for i, fe := range b.Errors {
		rejected[i] = RejectedEvent{Index: fe.Index, EventID: fe.EventID, Field: fe.Field, Reason: fe.Reason}
	}
	if len(b.Events) == 0 {
		if b.Received == 0 {
			return newError(ErrNoValidEvents, rejected, "the batch has no events")
		}
		return newError(ErrNoValidEvents, rejected, "none of the %d events is valid; see details", b.Received)
	}
	res, err := s.events.Append(c.Request().Context(), site.ID, b.Events)
	if err != nil {
		if errors.Is(err, ErrOverloaded) {
			return newError(ErrOverloaded, nil, "the event store is overloaded; retry the same batch later (it is deduplicated)")
		}
		return fmt.Errorf("serve: append events: %w", err)
	}
	return c.JSON(http.StatusOK, IngestResponse{
		Received:   b.Received,
		Accepted:   len(b.Events),
		Stored:     res.Stored,
		Duplicates: res.Duplicates,
		Unlogged:   res.Unlogged,
		Rejected:   rejected,
	})
}

// readBody checks the content type and reads the body within the size limit.
func (s *Server) readBody(c echo.Context) ([]byte, error) {
	req := c.Request()
	if ct := req.Header.Get(echo.HeaderContentType); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && mt != "text/plain") {
			return nil, newError(ErrUnsupportedMedia, nil,
				"content type %q: send JSON as application/json or text/plain", ct)
		}
	}
	if req.ContentLength > s.bodyLimit {
		return nil, newError(ErrBodyTooLarge, nil,
			"request body of %d bytes exceeds the limit of %d bytes; split the batch", req.ContentLength, s.bodyLimit)
	}
	rd := http.MaxBytesReader(c.Response(), req.Body, s.bodyLimit)
	var body []byte
	var err error
	if n := req.ContentLength; n > 0 {
		// Known length (net/http stops the body there): one allocation.
		body = make([]byte, n)
		_, err = io.ReadFull(rd, body)
	} else {
		body, err = io.ReadAll(rd)
	}
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, newError(ErrBodyTooLarge, nil,
				"request body exceeds the limit of %d bytes; split the batch", s.bodyLimit)
		}
		return nil, newError(ErrMalformed, nil, "reading request body: %v", err)
	}
	return body, nil
}
