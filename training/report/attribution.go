package report

import (
	"math"
	"sort"
)

// Models lists the attribution models in report order.
var Models = []string{"first_touch", "last_touch", "linear", "time_decay", "position_based"}

// NoIntervention is the intervention touch credited with a conversion that had no exposure in
// its window, so that every conversion is credited once per model and kind.
const NoIntervention = "none"

// touch is one touch of a journey.
type touch struct {
	kind, name string
	ts         int64
}

// weights returns the credit of each of n touches (in time order, the last at or before the
// conversion at tc) under model: they sum to 1.
func weights(model string, ts []int64, tc int64, halfLife float64, out []float64) []float64 {
	n := len(ts)
	out = out[:0]
	for range n {
		out = append(out, 0)
	}
	if n == 0 {
		return out
	}
	switch model {
	case "first_touch":
		out[0] = 1
	case "last_touch":
		out[n-1] = 1
	case "linear":
		for i := range out {
			out[i] = 1 / float64(n)
		}
	case "time_decay":
		sum := 0.0
		for i, t := range ts {
			out[i] = math.Exp2(-float64(tc-t) / halfLife)
			sum += out[i]
		}
		for i := range out {
			out[i] /= sum
		}
	case "position_based":
		switch n {
		case 1:
			out[0] = 1
		case 2:
			out[0], out[1] = 0.5, 0.5
		default:
			out[0], out[n-1] = 0.4, 0.4
			for i := 1; i < n-1; i++ {
				out[i] = 0.2 / float64(n-2)
			}
		}
	}
	return out
}

func (b *builder) attribution(r *Report) {
	byVisitor := map[string][]*sess{}
	for _, s := range b.sessions {
		byVisitor[s.anon] = append(byVisitor[s.anon], s)
	}
	window := b.q.AttributionWindow.Milliseconds()
	halfLife := float64(b.q.HalfLife.Milliseconds())
	type key struct{ kind, touch string }
	credits := make([]map[key]*Credit, len(Models))
	for i := range credits {
		credits[i] = map[key]*Credit{}
	}
	var total float64
	var channels, ivs []touch
	var ts []int64
	var w []float64
	credit := func(tt []touch, tc int64, value float64) {
		ts = ts[:0]
		for _, t := range tt {
			ts = append(ts, t.ts)
		}
		for m, model := range Models {
			w = weights(model, ts, tc, halfLife, w)
			for i, t := range tt {
				if w[i] == 0 {
					continue // no row for a touch a model gives nothing
				}
				k := key{t.kind, t.name}
				c := credits[m][k]
				if c == nil {
					c = &Credit{Kind: t.kind, Touch: t.name}
					credits[m][k] = c
				}
				c.Conversions += w[i]
				c.Revenue += w[i] * value
			}
		}
	}
	for _, s := range b.sessions {
		if !s.inRange {
			continue
		}
		for _, cv := range s.convs {
			total++
			channels, ivs = channels[:0], ivs[:0]
			for _, o := range byVisitor[s.anon] {
				if o.start > cv.ts {
					break
				}
				if o.start >= cv.ts-window {
					channels = append(channels, touch{"channel", o.channel, o.start})
				}
				for _, e := range o.exposures {
					if e.ts <= cv.ts && e.ts >= cv.ts-window {
						ivs = append(ivs, touch{"intervention", e.intervention, e.ts})
					}
				}
			}
			if len(channels) == 0 { // a late event before its session's start: the session itself
				channels = append(channels, touch{"channel", s.channel, min(s.start, cv.ts)})
			}
			if len(ivs) == 0 {
				ivs = append(ivs, touch{"intervention", NoIntervention, cv.ts})
			}
			sort.SliceStable(ivs, func(i, j int) bool { return ivs[i].ts < ivs[j].ts })
			credit(channels, cv.ts, cv.value)
			credit(ivs, cv.ts, cv.value)
		}
	}
	for m, model := range Models {
		a := Attribution{Model: model, Rows: []Credit{}}
		for _, c := range credits[m] {
			c.Share = ratio(c.Conversions, total)
			a.Rows = append(a.Rows, *c)
		}
		sort.Slice(a.Rows, func(i, j int) bool {
			x, y := a.Rows[i], a.Rows[j]
			if x.Conversions != y.Conversions {
				return x.Conversions > y.Conversions
			}
			if x.Kind != y.Kind {
				return x.Kind < y.Kind
			}
			return x.Touch < y.Touch
		})
		r.Attribution = append(r.Attribution, a)
	}
}
