// Package policy turns scores into a decision: which intervention, if any, to show a live
// session. It owns the eligibility rules, the expected-value rule (uplift x conversion value
// - cost, above a threshold), the per-day budget, the frequency caps, and the randomised
// assignment (a sticky per-visitor holdout and a per-decision exploration share), and it
// reports the probability with which the policy takes the arm it took, so that uplift can be
// learnt and the policy evaluated off-policy (IPS) without bias.
//
// Assignment, for a decision with eligible arms E (after eligibility, caps and budget) and the
// greedy arm g (the arm of E with the highest expected value if that value is positive and at
// least the threshold, else "none"):
//
//   - a visitor whose hash(seed, visitor) falls below HoldoutShare is in the holdout group and
//     never treated; the holdout is sticky per visitor and independent of the features;
//   - otherwise, with probability ExplorationShare (by hash(seed, decision id)) the arm is drawn
//     uniformly from E ∪ {none} (group "explore"), else it is g (group "treatment");
//   - the logged probability of the arm a taken is the marginal over both draws:
//     P(a) = h·[a = none] + (1-h)·((1-e)·[a = g] + e/(|E|+1)).
//
// The package is pure computation plus in-memory counters (sharded, so no lock is shared by
// all requests). It imports features/ only.
package policy

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/nudgehq/nudge/features"
)

// ErrConfig is returned by New for an unusable policy configuration.
var ErrConfig = errors.New("policy: invalid configuration")

// Intervention is one entry of the site's catalogue, as the policy needs it.
type Intervention struct {
	ID   string
	Kind string
	Cost float64
	// Eligibility; empty means any.
	Phases       []string // funnel phases (by name) in which it may be shown; "none" = before any
	Devices      []string // mobile, tablet, desktop
	MinPageViews int
	PathPrefixes []string // page the session is on must start with one of these
	// Caps; 0 means unlimited.
	PerSession       int
	PerVisitorPerDay int
}

// Params are the site's policy settings.
type Params struct {
	Value            float64 // value of one macro conversion
	HoldoutShare     float64
	ExplorationShare float64
	Threshold        float64 // minimum expected value to intervene
	MaxShare         float64 // max share of decisions per day that intervene; 0 = no limit
	MaxSpendPerDay   float64 // max total cost per day; 0 = no limit
	Seed             uint64
	Location         *time.Location // day boundary for budgets and caps; nil = UTC
}

// Group is the experimental group of a decision.
type Group uint8

// Groups.
const (
	Treatment Group = iota // the greedy arm (possibly "none")
	Holdout                // kept from intervention
	Explore                // a uniformly random eligible arm (possibly "none")
)

func (g Group) String() string {
	switch g {
	case Holdout:
		return "holdout"
	case Explore:
		return "explore"
	}
	return "treatment"
}

// Request is one decision to take.
type Request struct {
	DecisionID string // unique; drives the exploration draw
	Visitor    string // sticky key: user id when known, else anonymous id
	Session    string
	Page       string    // path the session is on, for path eligibility; "" = unknown
	Features   []float64 // the session's vector in the schema given to New
	Propensity float64
	// Uplift per intervention, index-aligned with the catalogue; nil means no uplift model,
	// in which case only exploration can treat.
	Uplift []float64
	Now    time.Time
}

// Decision is the outcome. The slices are owned by the Decision and reused across calls to
// Decide with the same Decision (no allocation once sized).
type Decision struct {
	Group       Group
	Arm         int       // index into the catalogue, -1 = no intervention
	Probability float64   // probability the policy takes Arm for this request (see package doc)
	EV          []float64 // expected value per intervention (NaN when not eligible)
	Eligible    []bool    // per intervention, after eligibility rules, caps and budget
	Reason      string
}

// Intervene reports whether the decision shows an intervention.
func (d *Decision) Intervene() bool { return d.Arm >= 0 }

// Policy decides for one site. It is safe for concurrent use.
type Policy struct {
	p   Params
	ivs []Intervention

	// feature indexes for eligibility
	iPhase, iPageViews int
	deviceIdx          [3]int // mobile, tablet, desktop
	phaseAllowed       [][]bool
	deviceAllowed      [][3]bool
	exploreReason      []string // per intervention: the reason of an exploring decision that takes it

	counters *counters
}

var deviceNames = [3]string{"mobile", "tablet", "desktop"}

// New builds the policy of a site for vectors of schema s.
func New(s *features.Schema, p Params, ivs []Intervention) (*Policy, error) {
	if p.HoldoutShare < 0 || p.ExplorationShare < 0 || p.HoldoutShare+p.ExplorationShare >= 1 {
		return nil, fmt.Errorf("%w: holdout %.3f and exploration %.3f must be >= 0 with sum < 1", ErrConfig, p.HoldoutShare, p.ExplorationShare)
	}
	if p.Location == nil {
		p.Location = time.UTC
	}
	pol := &Policy{p: p, ivs: ivs, counters: newCounters(len(ivs))}
	var ok bool
	if pol.iPhase, ok = s.Index("funnel_phase"); !ok {
		return nil, fmt.Errorf("%w: schema has no funnel_phase", ErrConfig)
	}
	if pol.iPageViews, ok = s.Index("page_views"); !ok {
		return nil, fmt.Errorf("%w: schema has no page_views", ErrConfig)
	}
	for i, d := range deviceNames {
		if pol.deviceIdx[i], ok = s.Index("device_" + d); !ok {
			return nil, fmt.Errorf("%w: schema has no device_%s", ErrConfig, d)
		}
	}
	phases := s.Spec().Phases
	for _, iv := range ivs {
		if iv.Cost < 0 || math.IsNaN(iv.Cost) {
			return nil, fmt.Errorf("%w: intervention %q: cost %v", ErrConfig, iv.ID, iv.Cost)
		}
		var allowed []bool // index 0 = no phase yet, i = phase i (1-based)
		if len(iv.Phases) > 0 {
			allowed = make([]bool, len(phases)+1)
			for _, name := range iv.Phases {
				found := false
				if name == "none" {
					allowed[0], found = true, true
				}
				for j, ph := range phases {
					if ph.Name == name {
						allowed[j+1], found = true, true
					}
				}
				if !found {
					return nil, fmt.Errorf("%w: intervention %q: unknown phase %q", ErrConfig, iv.ID, name)
				}
			}
		}
		pol.phaseAllowed = append(pol.phaseAllowed, allowed)
		var dev [3]bool
		if len(iv.Devices) == 0 {
			dev = [3]bool{true, true, true}
		}
		for _, d := range iv.Devices {
			found := false
			for k, n := range deviceNames {
				if n == d {
					dev[k], found = true, true
				}
			}
			if !found {
				return nil, fmt.Errorf("%w: intervention %q: unknown device %q", ErrConfig, iv.ID, d)
			}
		}
		pol.deviceAllowed = append(pol.deviceAllowed, dev)
		pol.exploreReason = append(pol.exploreReason, "exploration: random eligible intervention "+iv.ID)
	}
	return pol, nil
}

// Interventions returns the catalogue (not to be modified).
func (p *Policy) Interventions() []Intervention { return p.ivs }

// Params returns the settings.
func (p *Policy) Params() Params { return p.p }

// InHoldout reports whether a visitor is in the sticky holdout group.
func (p *Policy) InHoldout(visitor string) bool {
	return unit(p.p.Seed, "holdout", visitor) < p.p.HoldoutShare
}

// eligible applies the static rules (phase, device, page views, path) to intervention k.
func (p *Policy) eligible(k int, x []float64, page string) bool {
	iv := &p.ivs[k]
	if allowed := p.phaseAllowed[k]; allowed != nil {
		ph := int(x[p.iPhase])
		if ph < 0 || ph >= len(allowed) || !allowed[ph] {
			return false
		}
	}
	if len(iv.Devices) > 0 {
		known := false
		for d, i := range p.deviceIdx {
			if x[i] > 0.5 {
				known = true
				if !p.deviceAllowed[k][d] {
					return false
				}
			}
		}
		if !known {
			return false
		}
	}
	if iv.MinPageViews > 0 && x[p.iPageViews] < float64(iv.MinPageViews) {
		return false
	}
	if len(iv.PathPrefixes) > 0 {
		ok := false
		for _, pre := range iv.PathPrefixes {
			if page != "" && strings.HasPrefix(page, pre) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// Decide takes a decision and, when it treats, counts it against caps and budget. out's slices
// are reused. A request whose Features or Uplift have the wrong length is an error.
func (p *Policy) Decide(req *Request, out *Decision) error {
	n := len(p.ivs)
	if req.Uplift != nil && len(req.Uplift) != n {
		return fmt.Errorf("policy: %d uplift scores for %d interventions", len(req.Uplift), n)
	}
	if need := max(p.iPhase, p.iPageViews, p.deviceIdx[0], p.deviceIdx[1], p.deviceIdx[2]); len(req.Features) <= need {
		return fmt.Errorf("policy: feature vector of %d elements is too short", len(req.Features))
	}
	if cap(out.EV) < n {
		out.EV = make([]float64, n)
		out.Eligible = make([]bool, n)
	}
	out.EV, out.Eligible = out.EV[:n], out.Eligible[:n]

	day := dayOf(req.Now, p.p.Location)
	h, e := p.p.HoldoutShare, p.p.ExplorationShare
	sh := p.counters.lock(req.Visitor, day)
	defer sh.mu.Unlock()
	ses, vis := sh.get(n, req.Session, req.Visitor)
	b := p.counters.budget(day)

	nElig, greedy, best := 0, -1, math.Inf(-1)
	for k := range p.ivs {
		out.EV[k] = math.NaN()
		iv := &p.ivs[k]
		ok := p.eligible(k, req.Features, req.Page) &&
			(iv.PerSession == 0 || ses[k] < int32(iv.PerSession)) &&
			(iv.PerVisitorPerDay == 0 || vis[k] < int32(iv.PerVisitorPerDay)) &&
			b.allows(iv.Cost, p.p.MaxShare, p.p.MaxSpendPerDay)
		out.Eligible[k] = ok
		if !ok {
			continue
		}
		nElig++
		if req.Uplift != nil {
			ev := req.Uplift[k]*p.p.Value - p.ivs[k].Cost
			out.EV[k] = ev
			if ev > best {
				greedy, best = k, ev
			}
		}
	}
	if greedy >= 0 && (best <= 0 || best < p.p.Threshold) {
		greedy = -1
	}
	prob := func(a int) float64 {
		pa := e / float64(nElig+1)
		if a == greedy {
			pa += 1 - e
		}
		pa *= 1 - h
		if a < 0 {
			pa += h
		}
		return pa
	}

	switch {
	case p.InHoldout(req.Visitor):
		out.Group, out.Arm, out.Reason = Holdout, -1, "visitor is in the holdout group"
	case unit(p.p.Seed, "explore", req.DecisionID) < e:
		out.Group = Explore
		draw := int(unit(p.p.Seed, "arm", req.DecisionID) * float64(nElig+1))
		out.Arm = -1
		for k, ok := range out.Eligible {
			if ok {
				if draw == 0 {
					out.Arm = k
					break
				}
				draw--
			}
		}
		if out.Arm >= 0 {
			out.Reason = p.exploreReason[out.Arm]
		} else {
			out.Reason = "exploration: random choice of no intervention"
		}
	default:
		out.Group, out.Arm = Treatment, greedy
		switch {
		case greedy >= 0:
			out.Reason = greedyReason(p.ivs[greedy].ID, best, req.Uplift[greedy], p.p.Value, p.ivs[greedy].Cost)
		case nElig == 0:
			out.Reason = "no intervention is eligible (rules, caps or budget)"
		case req.Uplift == nil:
			out.Reason = "no uplift model is promoted"
		default:
			var buf [128]byte
			b := append(buf[:0], "no eligible intervention has a positive expected value above the threshold (best "...)
			b = strconv.AppendFloat(b, best, 'f', 2, 64)
			out.Reason = string(append(b, ')'))
		}
	}
	out.Probability = prob(out.Arm)
	cost := 0.0
	if out.Arm >= 0 {
		cost = p.ivs[out.Arm].Cost
		ses[out.Arm]++
		vis[out.Arm]++
	}
	b.count(out.Arm >= 0, cost)
	return nil
}

// greedyReason is fmt.Sprintf("%s has the highest expected value (%.2f = uplift %.3f x %.2f -
// cost %.2f)", ...) in one allocation (the decide path's hot case).
func greedyReason(id string, ev, uplift, value, cost float64) string {
	var buf [192]byte
	b := append(buf[:0], id...)
	b = append(b, " has the highest expected value ("...)
	b = strconv.AppendFloat(b, ev, 'f', 2, 64)
	b = append(b, " = uplift "...)
	b = strconv.AppendFloat(b, uplift, 'f', 3, 64)
	b = append(b, " x "...)
	b = strconv.AppendFloat(b, value, 'f', 2, 64)
	b = append(b, " - cost "...)
	b = strconv.AppendFloat(b, cost, 'f', 2, 64)
	return string(append(b, ')'))
}

func dayOf(t time.Time, loc *time.Location) int32 {
	y, m, d := t.In(loc).Date()
	return int32(y*400 + int(m)*32 + d)
}

// unit maps (seed, domain, key) to a reproducible number in [0, 1): FNV-1a over the three,
// then the splitmix64 finaliser for avalanche. The same inputs give the same draw on every
// machine and across restarts, so the holdout is sticky and decisions can be replayed.
func unit(seed uint64, domain, key string) float64 {
	const prime = 1099511628211
	h := uint64(14695981039346656037)
	for i := 0; i < 8; i++ {
		h = (h ^ (seed >> (8 * i) & 0xff)) * prime
	}
	for i := 0; i < len(domain); i++ {
		h = (h ^ uint64(domain[i])) * prime
	}
	h = (h ^ 0xff) * prime
	for i := 0; i < len(key); i++ {
		h = (h ^ uint64(key[i])) * prime
	}
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return float64(h>>11) / (1 << 53)
}
