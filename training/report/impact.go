package report

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"

	"github.com/nudgehq/nudge/data/store"
)

// impactSteps is the number of steps of the threshold and budget grids.
const impactSteps = 10

// scoredDecision is a logged decision's best eligible intervention by predicted expected value.
type scoredDecision struct {
	ev, uplift, cost float64
	treatable        bool // not in the holdout group and an eligible arm with positive EV
}

func (b *builder) impact(ctx context.Context, st *store.Store, r *Report) error {
	value := b.site.Macro.Value
	versions := map[int]int{}
	var scored []scoredDecision
	maxEV := 0.0
	for _, d := range b.decs {
		if d.rec.Uplift == nil {
			continue
		}
		versions[d.rec.UpliftVersion]++
		sd := scoredDecision{ev: math.Inf(-1)}
		for j, id := range d.rec.Interventions {
			k, ok := b.ivIndex[id]
			if !ok || j >= len(d.rec.Uplift) || !d.eligible[k-1] {
				continue
			}
			u := d.rec.Uplift[j]
			if math.IsNaN(u) || math.IsInf(u, 0) {
				continue
			}
			cost := b.site.Interventions[k-1].Cost
			if ev := u*value - cost; ev > sd.ev {
				sd.ev, sd.uplift, sd.cost = ev, u, cost
			}
		}
		sd.treatable = d.rec.Group != "holdout" && sd.ev > 0
		if sd.treatable {
			maxEV = max(maxEV, sd.ev)
		}
		scored = append(scored, sd)
	}
	promoted, err := st.Promoted(ctx, b.site.ID, "uplift")
	switch {
	case errors.Is(err, store.ErrNotFound):
		r.Notes = append(r.Notes, "no uplift model is promoted: the live policy treats only by exploration")
	case err != nil:
		return fmt.Errorf("report: promoted uplift model: %w", err)
	}
	if len(scored) == 0 {
		if len(b.decs) > 0 {
			r.Notes = append(r.Notes, "no decision in the range was scored by an uplift model: no predicted impact")
		}
		if promoted != nil {
			r.Impact.ModelVersion = fmt.Sprintf("v%d", promoted.Version)
		}
		return nil
	}
	// The model version that scored most decisions.
	best, bestN := 0, -1
	for v, n := range versions {
		if n > bestN || (n == bestN && v > best) {
			best, bestN = v, n
		}
	}
	r.Impact.ModelVersion = fmt.Sprintf("v%d", best)
	if len(versions) > 1 {
		r.Impact.ModelVersion += fmt.Sprintf(" (%d of %d decisions; %d versions in the range)", bestN, len(scored), len(versions))
	}
	sort.SliceStable(scored, func(i, j int) bool { return scored[i].ev > scored[j].ev })

	threshold := b.site.Policy.Threshold
	if b.q.Threshold != nil {
		threshold = *b.q.Threshold
	}
	budget := b.site.Policy.Budget.MaxShare
	if budget <= 0 {
		budget = 1
	}
	if b.q.Budget != nil {
		budget = *b.q.Budget
	}
	point := func(th, bu float64) ImpactPoint {
		p := ImpactPoint{Threshold: th, Budget: bu}
		limit := int64(math.Ceil(bu*float64(len(scored)) - 1e-9)) // as model/policy: a share lets the first decision treat
		for _, s := range scored {
			if p.Treated >= limit || s.ev < th {
				break // sorted by EV: nothing later qualifies
			}
			if !s.treatable {
				continue
			}
			p.Treated++
			p.IncrementalConversions += s.uplift
			p.IncrementalRevenue += s.uplift * value
			p.Cost += s.cost
		}
		p.TreatedShare = ratio(float64(p.Treated), float64(len(scored)))
		if p.Cost > 0 {
			p.ROI = (p.IncrementalRevenue - p.Cost) / p.Cost
		}
		return p
	}
	r.Impact.Current = point(threshold, budget)
	for i := 0; i <= impactSteps; i++ {
		r.Impact.ByThreshold = append(r.Impact.ByThreshold, point(maxEV*float64(i)/impactSteps, budget))
	}
	for i := 1; i <= impactSteps; i++ {
		r.Impact.ByBudget = append(r.Impact.ByBudget, point(threshold, float64(i)/impactSteps))
	}
	return nil
}
