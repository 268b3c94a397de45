package sim

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/nudgehq/nudge/features"
)

// ErrConfig is returned by New for an invalid configuration.
var ErrConfig = errors.New("sim: invalid config")

// Sink receives events in batches, in session order (each session's events in time order).
// It must not retain the slice after returning.
type Sink func(ctx context.Context, events []features.Event) error

// DecisionRequest is what the simulator asks a Decider at a session's decision point. Every
// event of the session up to the decision has been given to the Sink before Decide is called.
type DecisionRequest struct {
	Site        string
	SessionID   string
	AnonymousID string
	UserID      string // "" when the visitor has not identified
	TS          int64  // Unix ms of the decision
	PageViews   int
	Phase       string   // "", "browse", "cart" or "checkout"
	Eligible    []string // interventions eligible now (demo shop rules)
	// Events are this session's events so far, for in-process deciders: read-only and valid
	// only during the Decide call (the buffer is reused for the next session).
	Events []features.Event

	truth *Truth // for OraclePolicy only
}

// Decision is a Decider's answer.
type Decision struct {
	Intervention string  // "" = none
	DecisionID   string  // "" lets the simulator make one
	Probability  float64 // probability with which the decider chose this arm
}

// Decider chooses an intervention at a session's decision point.
type Decider interface {
	Decide(ctx context.Context, req DecisionRequest) (Decision, error)
}

// Config drives a simulation. Zero fields take the documented defaults.
type Config struct {
	Seed              uint64
	Visitors          int                // default 1000
	Days              int                // default 21
	Start             time.Time          // default 2026-01-05 00:00 UTC
	DecideAfterEvents int                // the decision comes after this many session events; default 8
	Site              string             // default "demo"
	Shares            map[string]float64 // segment shares (normalised); nil = DefaultShares()
	BatchSize         int                // events per Sink call at most; default 500
	CrossDevice       float64            // share of identifying visitors with a second device; default 0.4
}

func (c Config) withDefaults() (Config, error) {
	if c.Visitors == 0 {
		c.Visitors = 1000
	}
	if c.Days == 0 {
		c.Days = 21
	}
	if c.Start.IsZero() {
		c.Start = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	}
	if c.DecideAfterEvents == 0 {
		c.DecideAfterEvents = 12
	}
	if c.Site == "" {
		c.Site = "demo"
	}
	if c.Shares == nil {
		c.Shares = DefaultShares()
	}
	if c.BatchSize == 0 {
		c.BatchSize = 500
	}
	if c.CrossDevice == 0 {
		c.CrossDevice = 0.4
	}
	if c.Visitors < 0 || c.Days < 0 || c.DecideAfterEvents < 2 || c.BatchSize < 1 || c.CrossDevice < 0 || c.CrossDevice > 1 {
		return c, fmt.Errorf("%w: visitors %d, days %d, decide after %d, batch %d, cross-device %g",
			ErrConfig, c.Visitors, c.Days, c.DecideAfterEvents, c.BatchSize, c.CrossDevice)
	}
	total := 0.0
	for name, s := range c.Shares {
		if _, ok := segmentSpecs[name]; !ok {
			return c, fmt.Errorf("%w: unknown segment %q", ErrConfig, name)
		}
		if s < 0 || math.IsNaN(s) {
			return c, fmt.Errorf("%w: share of %q is %g", ErrConfig, name, s)
		}
		total += s
	}
	if total <= 0 {
		return c, fmt.Errorf("%w: segment shares sum to %g", ErrConfig, total)
	}
	return c, nil
}

// Sim is a configured simulator. Run may be called several times; each run is identical
// for the same decider behaviour.
type Sim struct {
	cfg Config
}

// New validates cfg and returns a simulator.
func New(cfg Config) (*Sim, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Sim{cfg: c}, nil
}

// Config returns the effective configuration (defaults applied).
func (s *Sim) Config() Config { return s.cfg }

// Truth is the ground truth of one session that reached its decision point.
type Truth struct {
	SessionID   string
	AnonymousID string
	Segment     string
	TS          int64     // decision time, Unix ms
	PControl    float64   // true conversion probability with no intervention
	PArm        []float64 // true conversion probability under Interventions()[k]
	Eligible    []bool    // Interventions()[k] eligible at the decision point
}

// P returns the true conversion probability under arm (0 = none, k = Interventions()[k-1]).
func (t *Truth) P(arm int) float64 {
	if arm == 0 {
		return t.PControl
	}
	return t.PArm[arm-1]
}

// Gain is the true expected value of arm over no intervention: uplift * ConversionValue - cost.
// Arm 0 gains 0.
func (t *Truth) Gain(arm int) float64 {
	if arm == 0 {
		return 0
	}
	return (t.PArm[arm-1]-t.PControl)*ConversionValue - demoInterventions[arm-1].Cost
}

// BestArm is the eligible arm with the highest true Gain (0 when none is positive).
func (t *Truth) BestArm() (arm int, gain float64) {
	for k := range t.PArm {
		if t.Eligible[k] {
			if g := t.Gain(k + 1); g > gain {
				arm, gain = k+1, g
			}
		}
	}
	return arm, gain
}

// DecisionRecord is one decision the simulator asked for and its outcome.
type DecisionRecord struct {
	SessionID    string
	AnonymousID  string
	TS           int64
	DecisionID   string
	Intervention string
	Arm          int // ArmIndex(Intervention)
	Probability  float64
	Converted    bool
}

// Result summarises a run. Truth[i] and Decisions[i] describe the same session.
type Result struct {
	Visitors  int
	Sessions  int
	Events    int
	Segments  map[string]int // visitors per segment
	Truth     []Truth
	Decisions []DecisionRecord
}

// PolicyValue is the true expected value of assigning arms[i] to session truth[i]:
// sum of Gain. Ineligible arms are an error.
func PolicyValue(truth []Truth, arms []int) (float64, error) {
	if len(arms) != len(truth) {
		return 0, fmt.Errorf("sim: policy value: %d arms for %d sessions", len(arms), len(truth))
	}
	v := 0.0
	for i := range truth {
		a := arms[i]
		if a < 0 || a > len(demoInterventions) {
			return 0, fmt.Errorf("sim: policy value: arm %d out of range", a)
		}
		if a > 0 && !truth[i].Eligible[a-1] {
			return 0, fmt.Errorf("sim: policy value: session %s: %s not eligible", truth[i].SessionID, demoInterventions[a-1].Name)
		}
		v += truth[i].Gain(a)
	}
	return v, nil
}

// OracleArms is the best assignment treating at most budget sessions (budget < 0: no limit):
// every session's best eligible arm, keeping the budget sessions with the highest positive gain.
func OracleArms(truth []Truth, budget int) []int {
	arms := make([]int, len(truth))
	type cand struct {
		i, arm int
		gain   float64
	}
	cs := make([]cand, 0, len(truth))
	for i := range truth {
		if a, g := truth[i].BestArm(); a > 0 {
			cs = append(cs, cand{i, a, g})
		}
	}
	sort.SliceStable(cs, func(a, b int) bool { return cs[a].gain > cs[b].gain })
	if budget >= 0 && len(cs) > budget {
		cs = cs[:budget]
	}
	for _, c := range cs {
		arms[c.i] = c.arm
	}
	return arms
}

// RandomPolicy picks uniformly among none and the eligible interventions and logs the
// probability of its choice. Safe for concurrent use.
type RandomPolicy struct {
	mu  sync.Mutex
	rng *rand.Rand
	n   int
}

// NewRandomPolicy returns a seeded RandomPolicy.
func NewRandomPolicy(seed uint64) *RandomPolicy {
	return &RandomPolicy{rng: rand.New(rand.NewPCG(seed, 0x5eed))}
}

// Decide implements Decider.
func (p *RandomPolicy) Decide(_ context.Context, req DecisionRequest) (Decision, error) {
	p.mu.Lock()
	k := p.rng.IntN(len(req.Eligible) + 1)
	p.n++
	id := "rnd-" + strconv.Itoa(p.n)
	p.mu.Unlock()
	d := Decision{DecisionID: id, Probability: 1 / float64(len(req.Eligible)+1)}
	if k > 0 {
		d.Intervention = req.Eligible[k-1]
	}
	return d, nil
}

// OraclePolicy knows the true uplift: it shows the eligible intervention with the highest
// expected value (uplift*ConversionValue - cost) when that exceeds MinGain, treating at most a
// MaxShare of the sessions decided so far (0 = no budget). For the exact best policy at a
// given budget over a finished run use OracleArms. It only works inside this simulator.
type OraclePolicy struct {
	MinGain  float64
	MaxShare float64

	mu        sync.Mutex
	decisions int
	treated   int
}

// Decide implements Decider.
func (p *OraclePolicy) Decide(_ context.Context, req DecisionRequest) (Decision, error) {
	if req.truth == nil {
		return Decision{}, errors.New("sim: oracle policy used outside the simulator")
	}
	arm, gain := req.truth.BestArm()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.decisions++
	if arm == 0 || gain <= p.MinGain || (p.MaxShare > 0 && float64(p.treated+1) > p.MaxShare*float64(p.decisions)) {
		return Decision{Probability: 1}, nil
	}
	p.treated++
	return Decision{Intervention: demoInterventions[arm-1].Name, Probability: 1}, nil
}

// visitor is a simulated person.
type visitor struct {
	idx       int
	seg       *segmentSpec
	anon      [2]string
	device    [2]string
	devices   int
	userID    string
	identAt   int // session number at which the visitor identifies (-1 never)
	baseF     float64
	effF      float64
	identDone [2]bool
}

type session struct {
	v     *visitor
	n     int // session number of the visitor (0-based)
	dev   int
	start int64
	idx   int // global index (sorted by start)
}

func pick3(r *rand.Rand, w [3]float64) int {
	u := r.Float64() * (w[0] + w[1] + w[2])
	if u < w[0] {
		return 0
	}
	if u < w[0]+w[1] {
		return 1
	}
	return 2
}

func poisson(r *rand.Rand, mean float64) int {
	l, k, p := math.Exp(-mean), 0, 1.0
	for {
		p *= r.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

// Run simulates the configured traffic, asks decider at every session's decision point and
// sends the events to sink. It stops at the first sink or decider error.
func (s *Sim) Run(ctx context.Context, sink Sink, decider Decider) (*Result, error) {
	cfg := s.cfg
	root := rand.New(rand.NewPCG(cfg.Seed, 0xa11ce))
	segs := Segments()
	shares := make([]float64, len(segs))
	total := 0.0
	for i, name := range segs {
		shares[i] = cfg.Shares[name]
		total += shares[i]
	}
	res := &Result{Visitors: cfg.Visitors, Segments: map[string]int{}}
	start := cfg.Start.UnixMilli()
	span := int64(cfg.Days) * 24 * 3600 * 1000
	prefix := "sim" + strconv.FormatUint(cfg.Seed, 10)
	var sessions []session
	visitors := make([]visitor, cfg.Visitors)
	for i := range visitors {
		v := &visitors[i]
		v.idx = i
		u := root.Float64() * total
		si := 0
		for si < len(segs)-1 && u >= shares[si] {
			u -= shares[si]
			si++
		}
		v.seg = segmentSpecs[segs[si]]
		res.Segments[v.seg.name]++
		v.anon[0] = prefix + "-v" + strconv.Itoa(i)
		v.device[0] = devices[pick3(root, v.seg.device)]
		v.devices = 1
		v.identAt = -1
		v.baseF = 0.7 + 0.6*root.Float64()
		v.effF = 0.6 + 0.8*root.Float64()
		n := 1 + poisson(root, v.seg.sessions)
		if root.Float64() < v.seg.identify {
			v.userID = prefix + "-u" + strconv.Itoa(i)
			v.identAt = root.IntN(n)
			if root.Float64() < cfg.CrossDevice {
				v.devices = 2
				v.anon[1] = prefix + "-v" + strconv.Itoa(i) + "b"
				v.device[1] = "desktop"
				if v.device[0] == "desktop" {
					v.device[1] = "mobile"
				}
			}
		}
		t := start + int64(root.Float64()*float64(span)*0.9)
		for k := 0; k < n && t < start+span; k++ {
			dev := 0
			if v.devices == 2 && root.Float64() < 0.4 {
				dev = 1
			}
			sessions = append(sessions, session{v: v, n: k, dev: dev, start: t})
			// next visit: at least 2 hours later, exponential with a 3-day mean
			t += 2*3600*1000 + int64(root.ExpFloat64()*3*24*3600*1000)
		}
	}
	sort.SliceStable(sessions, func(a, b int) bool { return sessions[a].start < sessions[b].start })
	res.Sessions = len(sessions)
	res.Truth = make([]Truth, 0, len(sessions))
	res.Decisions = make([]DecisionRecord, 0, len(sessions))

	g := &gen{cfg: &cfg, prefix: prefix, sink: sink}
	for i := range sessions {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("sim: run: %w", err)
		}
		sessions[i].idx = i
		if err := g.session(ctx, &sessions[i], decider, res); err != nil {
			return nil, err
		}
	}
	if err := g.flush(ctx); err != nil {
		return nil, err
	}
	res.Events = g.events
	return res, nil
}

// gen generates one session at a time.
type gen struct {
	cfg    *Config
	prefix string
	sink   Sink
	batch  []features.Event
	events int

	// per session
	r         *rand.Rand
	sess      *session
	sid       string
	anon      string
	user      string
	ts        int64
	n         int
	evs       []features.Event
	stage     int // 0 landing, 1 category, 2 product, 3 cart, 4 checkout
	pageViews int
	milestone [3]bool
}

func (g *gen) flush(ctx context.Context) error {
	if len(g.batch) == 0 {
		return nil
	}
	if g.sink != nil {
		if err := g.sink(ctx, g.batch); err != nil {
			return fmt.Errorf("sim: sink: %w", err)
		}
	}
	g.batch = g.batch[:0]
	return nil
}

func (g *gen) emit(ctx context.Context, e features.Event) error {
	g.n++
	e.EventID = g.sid + "-e" + strconv.Itoa(g.n)
	e.SessionID = g.sid
	e.AnonymousID = g.anon
	e.UserID = g.user
	e.TS = g.ts
	e.Consent = true
	g.evs = append(g.evs, e)
	g.batch = append(g.batch, e)
	g.events++
	if len(g.batch) >= g.cfg.BatchSize {
		return g.flush(ctx)
	}
	return nil
}

func (g *gen) tick(meanSec float64) {
	g.ts += 1000 + int64(g.r.ExpFloat64()*meanSec*1000)
}

var stagePages = [...]struct{ path, group string }{
	{"/", "home"}, {"/c/shoes", "category"}, {"/p/", "product"}, {"/cart", "cart"}, {"/checkout", "checkout"},
}

func (g *gen) pageView(ctx context.Context, landing bool, src source) error {
	g.pageViews++
	p := stagePages[g.stage]
	path := p.path
	if g.stage == 2 {
		path += "sku-" + strconv.Itoa(100+g.r.IntN(400))
	}
	props := map[string]string{"path": path, "page_group": p.group, "device": g.sess.v.device[g.sess.dev],
		"engaged_ms": strconv.Itoa(int(g.r.ExpFloat64() * g.sess.v.seg.gapSec * 700))}
	if landing {
		if src.utmSource != "" {
			props["utm_source"], props["utm_medium"], props["utm_campaign"] = src.utmSource, src.utmMedium, src.utmCampaign
		}
		if src.referrer != "" {
			props["referrer"] = src.referrer
		}
	}
	return g.emit(ctx, features.Event{Type: features.PageView, Props: props})
}

func (g *gen) micro(ctx context.Context, name string) error {
	return g.emit(ctx, features.Event{Type: features.MicroConversion, Name: name})
}

// advance moves one stage deeper: a page view of the next stage and its milestone.
func (g *gen) advance(ctx context.Context) error {
	if g.stage >= 4 {
		return g.pageView(ctx, false, source{})
	}
	g.stage++
	var ms string
	switch g.stage {
	case 3:
		ms = MilestoneAddToCart // added on the product page, then the cart page
		if err := g.emit(ctx, features.Event{Type: features.MicroConversion, Name: ms, Value: 60}); err != nil {
			return err
		}
		g.milestone[1] = true
		return g.pageView(ctx, false, source{})
	case 4:
		ms = MilestoneBeginCheckout
	}
	if err := g.pageView(ctx, false, source{}); err != nil {
		return err
	}
	switch {
	case g.stage == 2 && !g.milestone[0]:
		g.milestone[0] = true
		return g.micro(ctx, MilestoneViewProduct)
	case g.stage == 4 && !g.milestone[2]:
		g.milestone[2] = true
		return g.micro(ctx, ms)
	}
	return nil
}

// step emits one behaviour step (one or two events) drawn from the segment's habits.
func (g *gen) step(ctx context.Context) error {
	seg := g.sess.v.seg
	g.tick(seg.gapSec)
	u := g.r.Float64()
	switch {
	case u < seg.errRate:
		kind := "client"
		if g.stage >= 3 || g.r.Float64() < 0.3 {
			kind = "form"
		}
		return g.emit(ctx, features.Event{Type: features.Error, Name: kind + "_error",
			Props: map[string]string{"error_kind": kind, "path": stagePages[g.stage].path}})
	case u < seg.errRate+seg.secondary:
		w := seg.secPick
		x := g.r.Float64() * (w[0] + w[1] + w[2] + w[3])
		k := 0
		for k < 3 && x >= w[k] {
			x -= w[k]
			k++
		}
		return g.micro(ctx, secondaryActions[k])
	case u < seg.errRate+seg.secondary+seg.clickRate:
		return g.emit(ctx, features.Event{Type: features.Click, Name: "click",
			Props: map[string]string{"path": stagePages[g.stage].path, "target": "button"}})
	default:
		if g.stage < 3 && g.r.Float64() < seg.advance || g.stage == 3 && g.r.Float64() < seg.advance*0.5 {
			return g.advance(ctx)
		}
		return g.pageView(ctx, false, source{})
	}
}

func (g *gen) phase() string {
	switch {
	case g.milestone[2]:
		return "checkout"
	case g.milestone[1]:
		return "cart"
	case g.milestone[0]:
		return "browse"
	}
	return ""
}

var stageFactor = [...]float64{0.6, 0.7, 0.9, 1.2, 1.45}

func clamp(p float64) float64 { return math.Min(0.97, math.Max(0.002, p)) }

func (g *gen) session(ctx context.Context, s *session, decider Decider, res *Result) error {
	v := s.v
	seg := v.seg
	g.r = rand.New(rand.NewPCG(g.cfg.Seed^0x9e3779b97f4a7c15, uint64(s.idx)+1))
	g.sess = s
	g.sid = g.prefix + "-s" + strconv.Itoa(s.idx)
	g.anon = v.anon[s.dev]
	g.user = ""
	if v.identAt >= 0 && s.n > v.identAt && v.identDone[s.dev] {
		g.user = v.userID
	}
	g.ts = s.start
	g.n = 0
	g.evs = g.evs[:0]
	g.stage = 0
	g.pageViews = 0
	g.milestone = [3]bool{}
	// conversion draw first, so the outcome is common across policies
	uConv := g.r.Float64()

	src := srcDirect
	if s.n == 0 || g.r.Float64() < 0.7 {
		x := g.r.Float64()
		for _, c := range seg.sources {
			src = c
			if x < c.w {
				break
			}
			x -= c.w
		}
	} else if g.r.Float64() < 0.5 {
		src = srcEmail
	}
	if g.r.Float64() < 0.3 {
		g.stage = 2 // landing on a product page from an ad or a link
	}
	if err := g.pageView(ctx, true, src); err != nil {
		return err
	}
	if g.stage == 2 {
		g.milestone[0] = true
		if err := g.micro(ctx, MilestoneViewProduct); err != nil {
			return err
		}
	}
	identifyNow := v.userID != "" && s.n >= v.identAt && !v.identDone[s.dev]
	for g.n < g.cfg.DecideAfterEvents {
		if identifyNow && g.n >= 2 {
			identifyNow = false
			v.identDone[s.dev] = true
			g.user = v.userID
			g.tick(5)
			if err := g.emit(ctx, features.Event{Type: features.Identify, Name: "login", UserID: v.userID}); err != nil {
				return err
			}
			continue
		}
		if err := g.step(ctx); err != nil {
			return err
		}
	}

	// decision point
	g.tick(2)
	phase := g.phase()
	tr := Truth{SessionID: g.sid, AnonymousID: g.anon, Segment: seg.name, TS: g.ts,
		PArm: make([]float64, len(demoInterventions)), Eligible: make([]bool, len(demoInterventions))}
	revisit := 1.0
	if s.n > 0 {
		revisit = 1.15
	}
	tr.PControl = clamp(seg.base * v.baseF * stageFactor[g.stage] * revisit)
	var eligible []string
	for k := range demoInterventions {
		iv := &demoInterventions[k]
		tr.Eligible[k] = iv.eligible(phase, g.pageViews)
		tr.PArm[k] = clamp(tr.PControl + seg.effect[k]*v.effF)
		if tr.Eligible[k] {
			eligible = append(eligible, iv.Name)
		}
	}
	if err := g.flush(ctx); err != nil {
		return err
	}
	req := DecisionRequest{Site: g.cfg.Site, SessionID: g.sid, AnonymousID: g.anon, UserID: g.user,
		TS: g.ts, PageViews: g.pageViews, Phase: phase, Eligible: eligible, Events: g.evs, truth: &tr}
	d, err := decider.Decide(ctx, req)
	if err != nil {
		return fmt.Errorf("sim: decide %s: %w", g.sid, err)
	}
	arm := ArmIndex(d.Intervention)
	if arm < 0 || arm > 0 && !tr.Eligible[arm-1] {
		return fmt.Errorf("sim: decide %s: intervention %q not eligible", g.sid, d.Intervention)
	}
	if d.DecisionID == "" {
		d.DecisionID = g.sid + "-d"
	}
	converted := uConv < tr.P(arm)
	res.Truth = append(res.Truth, tr)
	res.Decisions = append(res.Decisions, DecisionRecord{SessionID: g.sid, AnonymousID: g.anon, TS: g.ts,
		DecisionID: d.DecisionID, Intervention: d.Intervention, Arm: arm, Probability: d.Probability, Converted: converted})

	if arm > 0 {
		g.tick(1)
		if err := g.emit(ctx, features.Event{Type: features.Exposure, Name: d.Intervention,
			Props: map[string]string{"decision_id": d.DecisionID, "intervention": d.Intervention}}); err != nil {
			return err
		}
	}
	if converted {
		for g.stage < 4 {
			g.tick(seg.gapSec)
			if err := g.advance(ctx); err != nil {
				return err
			}
		}
		g.tick(seg.gapSec)
		if err := g.emit(ctx, features.Event{Type: features.MacroConversion, Name: Macro, Value: ConversionValue,
			Props: map[string]string{"order_id": g.sid + "-o"}}); err != nil {
			return err
		}
		return nil
	}
	for k := g.r.IntN(4); k > 0; k-- {
		if err := g.step(ctx); err != nil {
			return err
		}
	}
	return nil
}

// DeciderFunc adapts a function to a Decider.
type DeciderFunc func(ctx context.Context, req DecisionRequest) (Decision, error)

// Decide implements Decider.
func (f DeciderFunc) Decide(ctx context.Context, req DecisionRequest) (Decision, error) {
	return f(ctx, req)
}
