package report

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/nudgehq/nudge/data/config"
	"github.com/nudgehq/nudge/data/store"
	"github.com/nudgehq/nudge/features"
	"github.com/nudgehq/nudge/training/pipeline"
)

// ErrQuery is matched (errors.Is) by every error Build returns for a bad query.
var ErrQuery = errors.New("report: invalid query")

// Defaults applied to zero Query fields.
const (
	DefaultAttributionWindow = 30 * 24 * time.Hour
	DefaultHalfLife          = 7 * 24 * time.Hour
	// MinArmSessions is the size under which an arm's interval gets a note: with fewer units
	// on either side the normal approximations behind the intervals are not to be trusted.
	MinArmSessions = 100
)

// Outcome definitions of Query.Outcome.
const (
	// OutcomeVisitor: the decision's visitor (anonymous id) makes a macro conversion in
	// (t, t+Window], the label of the training pipeline.
	OutcomeVisitor = "visitor"
	// OutcomeSession: the decision's own session makes a macro conversion after t.
	OutcomeSession = "session"
)

// Groups of the time series.
var groups = []string{"hour", "day", "week"}

// Build computes the report of q for site from the store. It reads the store through its
// read APIs only (Stats, Decisions, ReplayAll, Promoted): one scan of the sessions that
// started between the earliest look-back the report needs and To + the outcome window.
// Build keeps no state between calls and is safe for concurrent use; errors for a bad query
// match ErrQuery.
func Build(ctx context.Context, st *store.Store, site *config.Site, q Query) (*Report, error) {
	if st == nil || site == nil {
		return nil, fmt.Errorf("%w: a store and a site are required", ErrQuery)
	}
	if q.Site == "" {
		q.Site = site.ID
	}
	if q.Site != site.ID {
		return nil, fmt.Errorf("%w: query site %q is not the configured site %q", ErrQuery, q.Site, site.ID)
	}
	if err := q.normalise(); err != nil {
		return nil, err
	}
	sc, err := features.NewSchema(site.FeatureSpec())
	if err != nil {
		return nil, fmt.Errorf("report: site %q: feature schema: %w", site.ID, err)
	}
	stats, err := st.Stats(ctx, site.ID)
	if err != nil {
		return nil, fmt.Errorf("report: stats: %w", err)
	}
	loc := site.Location()
	r := &Report{
		Version: FormatVersion, Site: site.ID, TimeZone: loc.String(), Generated: time.Now().UTC(),
		MacroName: site.Macro.Name, Value: site.Macro.Value,
		Series: []SeriesPoint{}, Funnel: []FunnelStep{}, Micro: []MicroRate{}, Lift: []Lift{},
		Attribution: []Attribution{}, Notes: []string{},
		Impact: Impact{ByThreshold: []ImpactPoint{}, ByBudget: []ImpactPoint{}},
	}
	from, to, note := clampRange(q.From, q.To, stats)
	if note != "" {
		r.Notes = append(r.Notes, note)
	}
	r.From, r.To = from.In(loc), to.In(loc)
	r.Group = q.Group
	if r.Group == "" {
		r.Group = pickGroup(to.Sub(from))
	}

	b := newBuilder(site, sc, q, from, to)
	b.lastTS = stats.LastTS
	if err := b.read(ctx, st); err != nil {
		return nil, err
	}
	b.overview(r)
	b.series(r, loc)
	b.funnel(r)
	b.micro(r)
	b.lift(r)
	if err := b.impact(ctx, st, r); err != nil {
		return nil, err
	}
	b.attribution(r)
	b.notes(r)
	return r, nil
}

// normalise validates q and applies the defaults.
func (q *Query) normalise() error {
	if !q.From.IsZero() && !q.To.IsZero() && !q.From.Before(q.To) {
		return fmt.Errorf("%w: from %s is not before to %s", ErrQuery, q.From.Format(time.RFC3339), q.To.Format(time.RFC3339))
	}
	if q.Group != "" {
		ok := false
		for _, g := range groups {
			ok = ok || g == q.Group
		}
		if !ok {
			return fmt.Errorf("%w: group %q: want hour, day or week", ErrQuery, q.Group)
		}
	}
	if q.Threshold != nil && (math.IsNaN(*q.Threshold) || math.IsInf(*q.Threshold, 0)) {
		return fmt.Errorf("%w: threshold %v", ErrQuery, *q.Threshold)
	}
	if q.Budget != nil && !(*q.Budget > 0 && *q.Budget <= 1) {
		return fmt.Errorf("%w: budget %v: want a share in (0, 1]", ErrQuery, *q.Budget)
	}
	if q.AttributionWindow < 0 || q.HalfLife < 0 || q.Window < 0 {
		return fmt.Errorf("%w: negative duration", ErrQuery)
	}
	if q.AttributionWindow == 0 {
		q.AttributionWindow = DefaultAttributionWindow
	}
	if q.HalfLife == 0 {
		q.HalfLife = DefaultHalfLife
	}
	if q.Window == 0 {
		q.Window = pipeline.DefaultWindow
	}
	switch q.Outcome {
	case "":
		q.Outcome = OutcomeVisitor
	case OutcomeVisitor, OutcomeSession:
	default:
		return fmt.Errorf("%w: outcome %q: want visitor or session", ErrQuery, q.Outcome)
	}
	return nil
}

// clampRange applies the zero defaults and clamps [from, to) to the site's data: from is at
// least the first logged event, to at most one millisecond after the last. A range outside
// the data is kept as asked, with a note.
func clampRange(from, to time.Time, stats store.Stats) (time.Time, time.Time, string) {
	if stats.FirstTS == 0 && stats.LastTS == 0 {
		if from.IsZero() || to.IsZero() {
			now := time.Now().UTC().Truncate(time.Hour)
			if to.IsZero() {
				to = now.Add(time.Hour)
			}
			if from.IsZero() {
				from = to.Add(-24 * time.Hour)
			}
		}
		return from.UTC(), to.UTC(), "no events are logged for this site yet"
	}
	first, end := time.UnixMilli(stats.FirstTS).UTC(), time.UnixMilli(stats.LastTS+1).UTC()
	af, at := from, to
	if from.IsZero() || from.Before(first) {
		af = first
	}
	if to.IsZero() || to.After(end) {
		at = end
	}
	if !af.Before(at) {
		if from.IsZero() {
			from = to.Add(-24 * time.Hour)
		}
		if to.IsZero() {
			to = from.Add(24 * time.Hour)
		}
		return from.UTC(), to.UTC(), fmt.Sprintf("the range has no data: events are logged from %s to %s",
			first.Format(time.RFC3339), end.Format(time.RFC3339))
	}
	return af.UTC(), at.UTC(), ""
}

// pickGroup is the series bucket for a range length: <= 2 days hour, <= 90 days day, else week.
func pickGroup(d time.Duration) string {
	switch {
	case d <= 48*time.Hour:
		return "hour"
	case d <= 90*24*time.Hour:
		return "day"
	}
	return "week"
}

// bucketStart is the start of t's bucket in loc (weeks start on Monday).
func bucketStart(t time.Time, group string, loc *time.Location) time.Time {
	t = t.In(loc)
	y, m, d := t.Date()
	switch group {
	case "hour":
		return time.Date(y, m, d, t.Hour(), 0, 0, 0, loc)
	case "week":
		wd := (int(t.Weekday()) + 6) % 7 // Monday = 0
		return time.Date(y, m, d-wd, 0, 0, 0, 0, loc)
	}
	return time.Date(y, m, d, 0, 0, 0, 0, loc)
}

// nextBucket is the start of the bucket after start (calendar arithmetic, so DST days have
// 23 or 25 hours).
func nextBucket(start time.Time, group string) time.Time {
	switch group {
	case "hour":
		return start.Add(time.Hour)
	case "week":
		y, m, d := start.Date()
		return time.Date(y, m, d+7, 0, 0, 0, 0, start.Location())
	}
	y, m, d := start.Date()
	return time.Date(y, m, d+1, 0, 0, 0, 0, start.Location())
}

// conv is one macro conversion.
type conv struct {
	ts    int64
	value float64
}

// exposure is one exposure event.
type exposure struct {
	ts           int64
	intervention string
}

// sess is what the report keeps of one logged session.
type sess struct {
	id, anon      string
	start         int64
	channel       string
	pageViews     int
	actions       []bool // per builder.actions index
	furthest      int    // furthest phase reached: 0 none, i = Phases[i-1]
	convs         []conv
	exposures     []exposure
	ivClicks      int
	decisions     []*decision
	customer      bool // the visitor had converted before this session (its history)
	inRange, prev bool
}

func (s *sess) converted() bool { return len(s.convs) > 0 }

// decision is one logged decision with what the report derives for it.
type decision struct {
	rec      store.DecisionRecord
	s        *sess  // nil when its session was not read
	arm      int    // 0 = none, k = site.Interventions[k-1]; -1 = unknown intervention
	eligible []bool // per intervention
	y        bool   // outcome (Query.Outcome)
	yKnown   bool
}

// builder holds one Build's data.
type builder struct {
	site     *config.Site
	sc       *features.Schema
	q        Query
	from, to int64 // range, Unix ms
	prevFrom int64

	actions  []action // milestones (phase order) then secondary actions
	actIndex map[string]int
	phaseOf  map[string]int // milestone -> phase index (1-based)
	ivIndex  map[string]int // intervention id -> arm (1-based)

	sessions []*sess            // every session read, in start order
	byID     map[string]*sess   // sessions with decisions
	visConv  map[string][]int64 // anon -> macro conversion times, ascending per session order
	decs     []*decision        // decisions with TS in [from, to), time order
	unread   int                // decisions whose session was not read

	prevDecisions int   // decisions of the previous period
	lastTS        int64 // the latest logged event of the site
	openWindow    int   // decisions whose outcome window extends past lastTS
	eligRules     *eligibility
}

type action struct {
	name, kind, phase string
}

func newBuilder(site *config.Site, sc *features.Schema, q Query, from, to time.Time) *builder {
	b := &builder{site: site, sc: sc, q: q, from: from.UnixMilli(), to: to.UnixMilli(),
		actIndex: map[string]int{}, phaseOf: map[string]int{}, ivIndex: map[string]int{},
		byID: map[string]*sess{}, visConv: map[string][]int64{}}
	b.prevFrom = b.from - (b.to - b.from)
	for i, ph := range site.Phases {
		for _, m := range ph.Milestones {
			if _, ok := b.phaseOf[m]; !ok {
				b.phaseOf[m] = i + 1
			}
			if _, ok := b.actIndex[m]; !ok {
				b.actIndex[m] = len(b.actions)
				b.actions = append(b.actions, action{m, "milestone", ph.Name})
			}
		}
	}
	for _, a := range site.SecondaryActions {
		if _, ok := b.actIndex[a]; !ok {
			b.actIndex[a] = len(b.actions)
			b.actions = append(b.actions, action{a, "secondary", ""})
		}
	}
	for k, iv := range site.Interventions {
		b.ivIndex[iv.ID] = k + 1
	}
	return b
}

// isMacro is the training pipeline's rule: an event of type macro_conversion, or one named as
// the site's macro conversion.
func isMacro(ev *features.Event, macro string) bool {
	return ev.Type == features.MacroConversion || (macro != "" && ev.Name == macro)
}

// byName reports whether the fold counts ev by its name (milestones, secondary actions).
func byName(ev *features.Event) bool {
	return ev.Type == features.MicroConversion || ev.Type == features.Custom || ev.Type == features.Click
}

// read loads the decisions of the range, then scans the sessions once.
func (b *builder) read(ctx context.Context, st *store.Store) error {
	err := st.Decisions(ctx, b.site.ID, b.prevFrom, b.to, func(rec *store.DecisionRecord) error {
		if rec.TS < b.from {
			b.prevDecisions++
			return nil
		}
		d := &decision{rec: *rec}
		d.rec.Interventions = append([]string(nil), rec.Interventions...)
		d.rec.Uplift = append([]float64(nil), rec.Uplift...)
		if rec.Uplift == nil {
			d.rec.Uplift = nil
		}
		d.arm = 0
		if rec.Arm != "" {
			k, ok := b.ivIndex[rec.Arm]
			if !ok {
				k = -1
			}
			d.arm = k
		}
		b.decs = append(b.decs, d)
		return nil
	})
	if err != nil {
		return fmt.Errorf("report: read decisions: %w", err)
	}
	wantDec := map[string][]*decision{}
	for _, d := range b.decs {
		wantDec[d.rec.Session] = append(wantDec[d.rec.Session], d)
	}

	scanFrom := min(b.prevFrom, b.from-b.q.AttributionWindow.Milliseconds())
	// Decisions may belong to sessions that started before the range (a session spanning
	// its start): the look-back covers them unless they are older than the attribution window.
	scanTo := b.to + b.q.Window.Milliseconds()
	macro := b.site.Macro.Name
	row := make([]float64, b.sc.Len())
	err = st.ReplayAll(ctx, b.site.ID, scanFrom, scanTo, func(info store.SessionInfo, hist features.VisitorHistory, evs []features.Event) error {
		s := &sess{id: info.Session, anon: info.AnonymousID, start: info.StartTS, customer: hist.Conversions > 0}
		s.inRange = s.start >= b.from && s.start < b.to
		s.prev = s.start >= b.prevFrom && s.start < b.from
		landing := -1
		for i := range evs {
			ev := &evs[i]
			if landing < 0 && (ev.Type == features.PageView || ev.Props["utm_source"] != "" || ev.Props["referrer"] != "") {
				landing = i
			}
			if isMacro(ev, macro) {
				v := ev.Value
				if !(v > 0) || math.IsInf(v, 0) {
					v = b.site.Macro.Value
				}
				s.convs = append(s.convs, conv{ev.TS, v})
				b.visConv[s.anon] = append(b.visConv[s.anon], ev.TS)
			}
			switch ev.Type {
			case features.PageView:
				s.pageViews++
			case features.Exposure:
				iv := ev.Props["intervention"]
				if iv == "" {
					iv = ev.Name
				}
				s.exposures = append(s.exposures, exposure{ev.TS, iv})
			case features.Click:
				if ev.Props[store.DecisionIDProp] != "" || ev.Props["intervention"] != "" {
					s.ivClicks++
				}
			}
			if byName(ev) && ev.Name != "" {
				if i, ok := b.actIndex[ev.Name]; ok {
					if s.actions == nil {
						s.actions = make([]bool, len(b.actions))
					}
					s.actions[i] = true
				}
				if ph := b.phaseOf[ev.Name]; ph > s.furthest {
					s.furthest = ph
				}
			}
		}
		if s.converted() {
			s.furthest = len(b.site.Phases)
		}
		s.channel = "direct"
		if landing >= 0 {
			tr := features.DeriveTraffic(evs[landing].Props)
			if tr.Source != features.SourceDirect {
				s.channel = tr.Source + " / " + tr.Medium
			}
		}
		if ds := wantDec[s.id]; len(ds) > 0 {
			b.byID[s.id] = s
			s.decisions = ds
			for _, d := range ds {
				d.s = s
				if err := b.sc.Replay(hist, evs, d.rec.TS, row); err != nil {
					return fmt.Errorf("replay session %s: %w", s.id, err)
				}
				d.eligible = b.staticEligible(row, d.rec.Page)
			}
		}
		if s.start < b.to { // later sessions are read for outcomes only
			b.sessions = append(b.sessions, s)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("report: read sessions: %w", err)
	}
	for _, c := range b.visConv {
		sort.Slice(c, func(i, j int) bool { return c[i] < c[j] })
	}
	b.outcomes()
	return nil
}
