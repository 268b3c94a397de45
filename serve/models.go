package serve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	gojson "github.com/goccy/go-json"
	"github.com/labstack/echo/v4"
)

// ErrConflict: the request conflicts with the state (a model whose feature schema does not
// match the live one). The model API answers 409.
var ErrConflict = errors.New("serve: conflict")

// ModelInfo is a registry record without its artifact, as the admin API shows it.
type ModelInfo struct {
	Site        string             `json:"site"`
	Version     int                `json:"version"`
	Kind        string             `json:"kind"`
	Learner     string             `json:"learner"`
	Params      map[string]string  `json:"params,omitempty"`
	Fingerprint string             `json:"fingerprint"`
	Features    []string           `json:"features,omitempty"`
	Arms        []string           `json:"arms,omitempty"`
	TrainFrom   int64              `json:"train_from"`
	TrainTo     int64              `json:"train_to"`
	Rows        int                `json:"rows"`
	Metrics     map[string]float64 `json:"metrics"` // finite values only
	CreatedAt   int64              `json:"created_at"`
	Note        string             `json:"note,omitempty"`
	Promoted    bool               `json:"promoted"` // in force for its kind
}

// TrainRequest is the body of POST /v1/train.
type TrainRequest struct {
	Learner       string `json:"learner,omitempty"`        // logistic | gbdt | auto
	UpliftLearner string `json:"uplift_learner,omitempty"` // t | x | to | auto
	Window        string `json:"window,omitempty"`         // label window, a Go duration ("24h")
	From          int64  `json:"from,omitempty"`           // Unix ms; 0 = everything
	To            int64  `json:"to,omitempty"`
	NoUplift      bool   `json:"no_uplift,omitempty"`
	Seed          uint64 `json:"seed,omitempty"`
	Note          string `json:"note,omitempty"`
	Promote       bool   `json:"promote,omitempty"` // promote what was trained and swap it live

	WindowDuration time.Duration `json:"-"` // Window parsed by the handler
}

// TrainResult is what a training run registered.
type TrainResult struct {
	Propensity *ModelInfo       `json:"propensity"`
	Uplift     *ModelInfo       `json:"uplift"` // nil when too few decisions are logged
	Sessions   int              `json:"sessions"`
	Decisions  int              `json:"decisions"`
	Report     string           `json:"report"`
	Promoted   []*PromoteResult `json:"promoted,omitempty"`
	Live       *LiveVersions    `json:"live,omitempty"`
}

// PromoteResult says what a promotion or rollback did.
type PromoteResult struct {
	Model    *ModelInfo `json:"model"`
	Previous int        `json:"previous"`         // version in force before (0 = none)
	Report   string     `json:"report,omitempty"` // human-readable, with the off-policy estimate for uplift
	OPE      any        `json:"ope,omitempty"`
}

// LiveVersions are the model versions the decide path is serving.
type LiveVersions struct {
	Propensity int `json:"propensity"`
	Uplift     int `json:"uplift"`
}

// ModelRegistry is what the admin model API needs of the registry and the training pipeline.
// Promote wraps ErrConflict when the model does not fit the live feature schema; lookups
// wrap ErrNotFound.
type ModelRegistry interface {
	Models(ctx context.Context, site string) ([]ModelInfo, error)
	Model(ctx context.Context, site string, version int) (*ModelInfo, error)
	Promoted(ctx context.Context, site string) (map[string]int, error) // kind -> version
	Promote(ctx context.Context, site string, version int) (*PromoteResult, error)
	Rollback(ctx context.Context, site, kind string) (*PromoteResult, error)
	Export(ctx context.Context, site string, version int, w io.Writer) error
	Import(ctx context.Context, site string, r io.Reader) (*ModelInfo, error)
	Train(ctx context.Context, site string, req TrainRequest) (*TrainResult, error)
}

// TrainTimeout bounds POST /v1/train, which outlives the ordinary request timeout.
const TrainTimeout = 15 * time.Minute

// routesModels registers the admin model API (all with the admin key).
func (s *Server) routesModels(e *echo.Echo) {
	e.GET("/v1/models", s.getModels)
	e.GET("/v1/models/compare", s.compareModels)
	e.POST("/v1/models/rollback", s.rollbackModel)
	e.POST("/v1/models/import", s.importModel)
	e.GET("/v1/models/:version", s.getModel)
	e.GET("/v1/models/:version/export", s.exportModel)
	e.POST("/v1/models/:version/promote", s.promoteModel)
	e.POST("/v1/train", s.postTrain)
}

// modelsAdmin authenticates an admin request and checks that the model API is configured.
func (s *Server) modelsAdmin(c echo.Context) (string, error) {
	site, _, err := s.authenticate(c, RoleAdmin)
	if err != nil {
		return "", err
	}
	if s.models == nil {
		return "", newError(ErrUnavailable, nil, "the model registry is not configured on this server")
	}
	return site.ID, nil
}

func versionParam(s string) (int, error) {
	v, err := strconv.Atoi(s)
	if err != nil || v <= 0 {
		return 0, newError(ErrBadParam, nil, "model version %q: want a positive integer", s)
	}
	return v, nil
}

// modelErr maps registry errors to API errors: 404 for an unknown version, 409 (written
// here, as the error table has no conflict kind) for a schema mismatch.
func (s *Server) modelErr(c echo.Context, err error, what string) error {
	switch {
	case errors.Is(err, ErrConflict):
		return c.JSON(http.StatusConflict, ErrorBody{Error: ErrorInfo{Code: "conflict", Message: err.Error()}})
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrBadParam), errors.Is(err, ErrMalformed):
		return err
	case errors.Is(err, ErrModelMismatch):
		return c.JSON(http.StatusConflict, ErrorBody{Error: ErrorInfo{Code: "conflict", Message: err.Error()}})
	}
	return fmt.Errorf("serve: %s: %w", what, err)
}

// ModelsResponse is the body of GET /v1/models.
type ModelsResponse struct {
	Site     string         `json:"site"`
	Models   []ModelInfo    `json:"models"` // newest first
	Promoted map[string]int `json:"promoted"`
	Live     LiveVersions   `json:"live"`
}

func (s *Server) liveVersions(site string) LiveVersions {
	var lv LiveVersions
	if s.live != nil {
		lv.Propensity, lv.Uplift = s.live.Versions(site)
	}
	return lv
}

func (s *Server) getModels(c echo.Context) error {
	site, err := s.modelsAdmin(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	ms, err := s.models.Models(ctx, site)
	if err != nil {
		return s.modelErr(c, err, "list models")
	}
	prom, err := s.models.Promoted(ctx, site)
	if err != nil {
		return s.modelErr(c, err, "promoted models")
	}
	if ms == nil {
		ms = []ModelInfo{}
	}
	return c.JSON(http.StatusOK, ModelsResponse{Site: site, Models: ms, Promoted: prom, Live: s.liveVersions(site)})
}

func (s *Server) getModel(c echo.Context) error {
	site, err := s.modelsAdmin(c)
	if err != nil {
		return err
	}
	v, err := versionParam(c.Param("version"))
	if err != nil {
		return err
	}
	m, err := s.models.Model(c.Request().Context(), site, v)
	if err != nil {
		return s.modelErr(c, err, "read model")
	}
	return c.JSON(http.StatusOK, m)
}

// CompareResponse is the body of GET /v1/models/compare?versions=3,5: the records and, per
// metric, each version's value.
type CompareResponse struct {
	Models  []*ModelInfo                  `json:"models"`
	Metrics map[string]map[string]float64 `json:"metrics"` // metric -> version -> value
}

func (s *Server) compareModels(c echo.Context) error {
	site, err := s.modelsAdmin(c)
	if err != nil {
		return err
	}
	raw := c.QueryParam("versions")
	if raw == "" {
		return newError(ErrBadParam, nil, "versions is required, e.g. ?versions=3,5")
	}
	out := CompareResponse{Metrics: map[string]map[string]float64{}}
	for _, p := range strings.Split(raw, ",") {
		v, err := versionParam(strings.TrimSpace(p))
		if err != nil {
			return err
		}
		m, err := s.models.Model(c.Request().Context(), site, v)
		if err != nil {
			return s.modelErr(c, err, "read model")
		}
		out.Models = append(out.Models, m)
		for k, x := range m.Metrics {
			if out.Metrics[k] == nil {
				out.Metrics[k] = map[string]float64{}
			}
			out.Metrics[k][strconv.Itoa(v)] = x
		}
	}
	return c.JSON(http.StatusOK, out)
}

// PromoteResponse is the body of a promotion or rollback: what changed in the registry and
// what the decide path serves now.
type PromoteResponse struct {
	*PromoteResult
	Live LiveVersions `json:"live"`
}

// swapLive reloads the site's promoted models into the decide path.
func (s *Server) swapLive(ctx context.Context, site string) error {
	if s.live == nil || s.live.loader == nil {
		return nil
	}
	if _, err := s.live.Reload(ctx, site); err != nil {
		return err
	}
	return nil
}

func (s *Server) promoteModel(c echo.Context) error {
	site, err := s.modelsAdmin(c)
	if err != nil {
		return err
	}
	v, err := versionParam(c.Param("version"))
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	res, err := s.models.Promote(ctx, site, v)
	if err != nil {
		return s.modelErr(c, err, "promote model")
	}
	if err := s.swapLive(ctx, site); err != nil {
		return s.modelErr(c, err, "swap live models")
	}
	return c.JSON(http.StatusOK, PromoteResponse{PromoteResult: res, Live: s.liveVersions(site)})
}

func (s *Server) rollbackModel(c echo.Context) error {
	site, err := s.modelsAdmin(c)
	if err != nil {
		return err
	}
	kind := c.QueryParam("kind")
	if kind != "propensity" && kind != "uplift" {
		return newError(ErrBadParam, nil, "kind %q: want propensity or uplift", kind)
	}
	ctx := c.Request().Context()
	res, err := s.models.Rollback(ctx, site, kind)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return newError(ErrNotFound, nil, "no earlier %s promotion to roll back to", kind)
		}
		return s.modelErr(c, err, "roll back")
	}
	if err := s.swapLive(ctx, site); err != nil {
		return s.modelErr(c, err, "swap live models")
	}
	return c.JSON(http.StatusOK, PromoteResponse{PromoteResult: res, Live: s.liveVersions(site)})
}

func (s *Server) exportModel(c echo.Context) error {
	site, err := s.modelsAdmin(c)
	if err != nil {
		return err
	}
	v, err := versionParam(c.Param("version"))
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	if _, err := s.models.Model(ctx, site, v); err != nil {
		return s.modelErr(c, err, "read model")
	}
	var buf strings.Builder
	if err := s.models.Export(ctx, site, v, &buf); err != nil {
		return s.modelErr(c, err, "export model")
	}
	c.Response().Header().Set(echo.HeaderContentDisposition, fmt.Sprintf(`attachment; filename="%s-model-%d.json"`, site, v))
	return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, []byte(buf.String()))
}

func (s *Server) importModel(c echo.Context) error {
	site, err := s.modelsAdmin(c)
	if err != nil {
		return err
	}
	req := c.Request()
	if req.ContentLength > 64<<20 {
		return newError(ErrBodyTooLarge, nil, "model artifacts are limited to 64 MiB")
	}
	body := http.MaxBytesReader(c.Response(), req.Body, 64<<20)
	m, err := s.models.Import(req.Context(), site, body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return newError(ErrBodyTooLarge, nil, "model artifacts are limited to 64 MiB")
		}
		if errors.Is(err, ErrMalformed) || errors.Is(err, ErrBadParam) {
			return err
		}
		return newError(ErrMalformed, nil, "import: %v", err)
	}
	return c.JSON(http.StatusCreated, m)
}

func (s *Server) postTrain(c echo.Context) error {
	site, err := s.modelsAdmin(c)
	if err != nil {
		return err
	}
	var req TrainRequest
	body, err := s.readBody(c)
	if err != nil {
		return err
	}
	if len(strings.TrimSpace(string(body))) > 0 {
		if err := gojson.Unmarshal(body, &req); err != nil {
			return newError(ErrMalformed, nil, "the body is not a train request: %v", err)
		}
	}
	if req.Window != "" {
		if req.WindowDuration, err = time.ParseDuration(req.Window); err != nil || req.WindowDuration <= 0 {
			return newError(ErrBadParam, nil, "window %q: want a positive duration such as \"24h\"", req.Window)
		}
	}
	if req.Learner != "" && !slices.Contains([]string{"logistic", "gbdt", "auto"}, req.Learner) {
		return newError(ErrBadParam, nil, "learner %q: want logistic, gbdt or auto", req.Learner)
	}
	if req.UpliftLearner != "" && !slices.Contains([]string{"t", "x", "to", "auto"}, req.UpliftLearner) {
		return newError(ErrBadParam, nil, "uplift_learner %q: want t, x, to or auto", req.UpliftLearner)
	}
	// Training outlives the ordinary request deadline.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request().Context()), TrainTimeout)
	defer cancel()
	res, err := s.Train(ctx, site, req)
	if err != nil {
		return s.modelErr(c, err, "train")
	}
	return c.JSON(http.StatusOK, res)
}

// Train runs a training through the registry and, when req.Promote, promotes what it
// registered and swaps it live. It is POST /v1/train without HTTP (the demo calls it).
func (s *Server) Train(ctx context.Context, site string, req TrainRequest) (*TrainResult, error) {
	if s.models == nil {
		return nil, newError(ErrUnavailable, nil, "the model registry is not configured on this server")
	}
	res, err := s.models.Train(ctx, site, req)
	if err != nil {
		return nil, err
	}
	if req.Promote {
		for _, m := range []*ModelInfo{res.Propensity, res.Uplift} {
			if m == nil {
				continue
			}
			pr, err := s.models.Promote(ctx, site, m.Version)
			if err != nil {
				return nil, fmt.Errorf("promote v%d: %w", m.Version, err)
			}
			m.Promoted = true
			res.Promoted = append(res.Promoted, pr)
		}
		if err := s.swapLive(ctx, site); err != nil {
			return nil, err
		}
		lv := s.liveVersions(site)
		res.Live = &lv
	}
	return res, nil
}
