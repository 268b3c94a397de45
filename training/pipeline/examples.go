package pipeline

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sort"

	"github.com/nudgehq/nudge/data/config"
	"github.com/nudgehq/nudge/data/store"
	"github.com/nudgehq/nudge/features"
	"github.com/nudgehq/nudge/training"
)

// examples are the point-in-time training sets of one scan of the log.
type examples struct {
	prop *training.Dataset // propensity rows: every decision point
	upl  *training.Dataset // uplift rows: logged decisions with a known arm and probability
	// per uplift row: which arms were eligible (index = arm; arm 0 always) and the reward
	// inputs for off-policy evaluation
	eligible [][]bool

	sessions  int // sessions read
	decisions int // logged decisions read
	skipped   map[string]int
	lastTS    int64 // latest logged event seen
}

// pendingPoint is a decision point whose label is set once every conversion is known.
type pendingPoint struct {
	anon string
	ts   int64
}

// scanRange is what buildExamples reads.
type scanRange struct {
	from, to   int64 // decision points in sessions started in [from, to); to <= 0: no bound
	window     int64 // label window, ms
	afterEvent []int
	uplift     bool // also build the uplift rows from logged decisions
}

// armsOf returns the uplift arms of a site: "control", then its interventions in catalogue
// order.
func armsOf(site *config.Site) []string {
	arms := []string{"control"}
	for _, iv := range site.Interventions {
		arms = append(arms, iv.ID)
	}
	return arms
}

// isMacro reports whether ev is a macro conversion of the site.
func isMacro(ev *features.Event, macro string) bool {
	return ev.Type == features.MacroConversion || (macro != "" && ev.Name == macro)
}

// buildExamples scans the log once and builds the propensity (and uplift) datasets.
func buildExamples(ctx context.Context, st *store.Store, site *config.Site, sc *features.Schema,
	r scanRange, progress func(stage string, done, total int)) (*examples, error) {
	if progress == nil {
		progress = func(string, int, int) {}
	}
	macro := sc.Spec().MacroConversion
	arms := armsOf(site)
	armIndex := make(map[string]int, len(arms))
	for k, a := range arms[1:] {
		armIndex[a] = k + 1
	}
	ex := &examples{skipped: map[string]int{}}

	// Logged decisions by session (server session id, or client session id as a fallback).
	decs := map[string][]*store.DecisionRecord{}
	{
		err := st.Decisions(ctx, site.ID, r.from, r.to, func(rec *store.DecisionRecord) error {
			c := *rec
			c.Interventions = slices.Clone(rec.Interventions)
			c.Uplift = nil
			decs[c.Session] = append(decs[c.Session], &c)
			ex.decisions++
			if ex.decisions%10000 == 0 {
				progress("read decisions", ex.decisions, 0)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("pipeline: read decisions: %w", err)
		}
		progress("read decisions", ex.decisions, ex.decisions)
	}

	total := 0
	if stats, err := st.Stats(ctx, site.ID); err == nil {
		total = int(stats.Sessions)
	}
	names := sc.Names
	d := len(names)
	ex.prop = &training.Dataset{Names: names}
	ex.upl = &training.Dataset{Names: names, Arms: arms}
	var propPts, uplPts []pendingPoint
	conv := map[string][]int64{}

	scanTo := int64(math.MaxInt64)
	if r.to > 0 && r.to < math.MaxInt64-r.window {
		scanTo = r.to + r.window
	}
	row := make([]float64, d)
	err := st.ReplayAll(ctx, site.ID, r.from, scanTo, func(info store.SessionInfo, hist features.VisitorHistory, evs []features.Event) error {
		ex.sessions++
		if ex.sessions%2000 == 0 {
			progress("read sessions", ex.sessions, total)
		}
		convTS := int64(math.MaxInt64) // first macro conversion of the session
		for i := range evs {
			ev := &evs[i]
			ex.lastTS = max(ex.lastTS, ev.TS)
			if isMacro(ev, macro) {
				conv[info.AnonymousID] = append(conv[info.AnonymousID], ev.TS)
				convTS = min(convTS, ev.TS)
			}
		}
		if r.to > 0 && info.StartTS >= r.to {
			return nil // read for labels only
		}
		anon := info.AnonymousID
		addProp := func(t int64) error {
			if err := sc.Replay(hist, evs, t, row); err != nil {
				return fmt.Errorf("replay session %s: %w", info.Session, err)
			}
			ex.prop.X = append(ex.prop.X, row...)
			ex.prop.TS = append(ex.prop.TS, t)
			propPts = append(propPts, pendingPoint{anon, t})
			return nil
		}
		prev := int64(math.MinInt64)
		for _, n := range r.afterEvent {
			if n <= 0 || n > len(evs) {
				continue
			}
			t := evs[n-1].TS
			if t == prev {
				continue
			}
			prev = t
			if t >= convTS {
				ex.skipped["point after conversion"]++
				continue
			}
			if err := addProp(t); err != nil {
				return err
			}
		}
		sd := decs[info.Session]
		if info.ClientSessionID != info.Session {
			sd = append(sd, decs[info.ClientSessionID]...)
		}
		for _, rec := range sd {
			if rec.TS < info.StartTS || (info.ClientSessionID != info.Session && rec.Session == info.ClientSessionID && rec.TS > info.LastTS) {
				continue // a decision of another visit of the client session id
			}
			if rec.TS >= convTS {
				ex.skipped["decision after conversion"]++
				continue
			}
			if err := addProp(rec.TS); err != nil {
				return err
			}
			if !r.uplift {
				continue
			}
			arm, ok := 0, true
			if rec.Arm != "" {
				arm, ok = armIndex[rec.Arm]
			}
			if !ok {
				ex.skipped["decision arm not in catalogue"]++
				continue
			}
			if !(rec.Probability > 0 && rec.Probability <= 1) {
				ex.skipped["decision without a logged probability"]++
				continue
			}
			ex.upl.X = append(ex.upl.X, row...)
			ex.upl.TS = append(ex.upl.TS, rec.TS)
			ex.upl.T = append(ex.upl.T, arm)
			ex.upl.P = append(ex.upl.P, rec.Probability)
			el := make([]bool, len(arms))
			el[0] = true
			if len(rec.Interventions) == 0 {
				for k := range el {
					el[k] = true
				}
			} else {
				for _, id := range rec.Interventions {
					if k, ok := armIndex[id]; ok {
						el[k] = true
					}
				}
			}
			el[arm] = true
			ex.eligible = append(ex.eligible, el)
			uplPts = append(uplPts, pendingPoint{anon, rec.TS})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pipeline: scan sessions: %w", err)
	}
	progress("read sessions", ex.sessions, ex.sessions)

	for _, c := range conv {
		slices.Sort(c)
	}
	label := func(p pendingPoint) float64 {
		c := conv[p.anon]
		i := sort.Search(len(c), func(i int) bool { return c[i] > p.ts })
		if i < len(c) && c[i] <= p.ts+r.window {
			return 1
		}
		return 0
	}
	// Keep the points whose window is over (their label is known).
	keep := func(ds *training.Dataset, pts []pendingPoint, extra func(keep []int)) {
		ds.Y = make([]float64, len(pts))
		idx := make([]int, 0, len(pts))
		for i, p := range pts {
			ds.Y[i] = label(p)
			if p.ts+r.window <= ex.lastTS {
				idx = append(idx, i)
			} else {
				ex.skipped["window not over"]++
			}
		}
		if len(idx) < len(pts) {
			sub := ds.Subset(idx)
			*ds = *sub
			if extra != nil {
				extra(idx)
			}
		}
	}
	keep(ex.prop, propPts, nil)
	keep(ex.upl, uplPts, func(idx []int) {
		el := make([][]bool, len(idx))
		for j, i := range idx {
			el[j] = ex.eligible[i]
		}
		ex.eligible = el
	})
	return ex, nil
}

// tsRange returns the earliest and latest decision time of a dataset.
func tsRange(ds *training.Dataset) (lo, hi int64) {
	if len(ds.TS) == 0 {
		return 0, 0
	}
	lo, hi = ds.TS[0], ds.TS[0]
	for _, t := range ds.TS {
		lo, hi = min(lo, t), max(hi, t)
	}
	return lo, hi
}
