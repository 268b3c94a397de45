package pipeline

import (
	"github.com/nudgehq/nudge/data/config"
	"github.com/nudgehq/nudge/features"
)

// eligibleFunc returns the site's static eligibility rules evaluated on a feature vector (as
// model/policy applies them at decision time): arm k >= 1 is intervention k-1, allowed when
// the session's funnel phase (funnel_phase: 0 = none, i = the i-th phase) is one of its
// phases ("none" allows phase 0), it has at least MinPageViews page views, and its device is
// one of its devices. Path prefixes are not in the vector and are not checked. Arm 0 (control)
// is always eligible. nil when the schema lacks the features the rules need.
func eligibleFunc(site *config.Site, sc *features.Schema) func(x []float64, arm int) bool {
	iPhase, ok1 := sc.Index("funnel_phase")
	iPV, ok2 := sc.Index("page_views")
	if !ok1 || !ok2 {
		return nil
	}
	devNames := config.Devices
	devIdx := make([]int, len(devNames))
	for i, d := range devNames {
		j, ok := sc.Index("device_" + d)
		if !ok {
			return nil
		}
		devIdx[i] = j
	}
	phases := sc.Spec().Phases
	type rule struct {
		phase   []bool // nil = any
		devices []bool // nil = any
		minPV   float64
	}
	rules := make([]rule, len(site.Interventions)+1)
	for k, iv := range site.Interventions {
		r := &rules[k+1]
		r.minPV = float64(iv.Eligibility.MinPageViews)
		if len(iv.Eligibility.Phases) > 0 {
			r.phase = make([]bool, len(phases)+1)
			for _, name := range iv.Eligibility.Phases {
				if name == "none" {
					r.phase[0] = true
				}
				for j, ph := range phases {
					if ph.Name == name {
						r.phase[j+1] = true
					}
				}
			}
		}
		if len(iv.Eligibility.Devices) > 0 {
			r.devices = make([]bool, len(devNames))
			for _, d := range iv.Eligibility.Devices {
				for i, name := range devNames {
					if name == d {
						r.devices[i] = true
					}
				}
			}
		}
	}
	return func(x []float64, arm int) bool {
		if arm <= 0 || arm >= len(rules) {
			return arm == 0
		}
		r := &rules[arm]
		if r.phase != nil {
			ph := int(x[iPhase])
			if ph < 0 || ph >= len(r.phase) || !r.phase[ph] {
				return false
			}
		}
		if x[iPV] < r.minPV {
			return false
		}
		if r.devices != nil {
			for i, j := range devIdx {
				if x[j] > 0.5 {
					return r.devices[i]
				}
			}
			return false
		}
		return true
	}
}
