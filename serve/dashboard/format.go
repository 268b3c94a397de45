package dashboard

import (
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/nudgehq/nudge/training/report"
)

// Number formatting for the pages: thousands separators, percentages, changes.

// fmtInt formats v rounded to an integer with thousands separators: 12,345.
func fmtInt(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "–"
	}
	neg := v < 0
	s := strconv.FormatInt(int64(math.Round(math.Abs(v))), 10)
	var b strings.Builder
	if neg && s != "0" {
		b.WriteString("−")
	}
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// fmtNum formats a count or amount: integers above 100, else up to 2 decimals.
func fmtNum(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "–"
	}
	if math.Abs(v) >= 100 || v == math.Trunc(v) {
		return fmtInt(v)
	}
	s := strconv.FormatFloat(math.Abs(v), 'f', 2, 64)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	if v < 0 {
		return "−" + s
	}
	return s
}

// fmtMoney formats an amount in the site's value unit: 2 decimals below 1,000.
func fmtMoney(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "–"
	}
	if math.Abs(v) >= 1000 {
		return fmtInt(v)
	}
	s := strconv.FormatFloat(math.Abs(v), 'f', 2, 64)
	if v < 0 {
		return "−" + s
	}
	return s
}

// fmtPct formats a share as a percentage: 0.0312 -> 3.1%.
func fmtPct(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "–"
	}
	d := 1
	if a := math.Abs(v * 100); a > 0 && a < 1 {
		d = 2
	}
	return strings.Replace(strconv.FormatFloat(v*100, 'f', d, 64), "-", "−", 1) + "%"
}

// fmtSignedPct formats a relative change or lift with its sign: +12.3%.
func fmtSignedPct(v float64) string {
	s := fmtPct(v)
	if v > 0 {
		return "+" + s
	}
	return s
}

// fmtPP formats a difference of rates in percentage points: +1.4 pp.
func fmtPP(v float64) string {
	s := strings.Replace(strconv.FormatFloat(v*100, 'f', 2, 64), "-", "−", 1)
	if v > 0 {
		s = "+" + s
	}
	return s + " pp"
}

// fmtP formats a p-value.
func fmtP(p float64) string {
	switch {
	case math.IsNaN(p):
		return "–"
	case p < 0.001:
		return "< 0.001"
	}
	return strconv.FormatFloat(p, 'f', 3, 64)
}

// fmtROI formats a return on investment as a multiple: 2.4× (0 cost: –).
func fmtROI(roi, cost float64) string {
	if cost == 0 {
		return "–"
	}
	return strings.Replace(strconv.FormatFloat(roi*100, 'f', 0, 64), "-", "−", 1) + "%"
}

// change describes a metric's change against the previous period.
type change struct {
	Text  string // "+12.3%", "new", "no change"
	Class string // "up", "down" or "flat"
	Prev  string
}

func metricChange(m report.Metric, format func(float64) string) change {
	c := change{Prev: format(m.Previous), Class: "flat"}
	switch {
	case m.Previous == 0 && m.Value != 0:
		c.Text = "new"
	case m.Change > 0.0005:
		c.Text, c.Class = "▲ "+fmtSignedPct(m.Change), "up"
	case m.Change < -0.0005:
		c.Text, c.Class = "▼ "+strings.TrimPrefix(fmtPct(m.Change), "−"), "down"
	default:
		c.Text = "no change"
	}
	return c
}

// bucketLabel names a series bucket for its group, in loc.
func bucketLabel(t time.Time, group string, loc *time.Location) string {
	t = t.In(loc)
	switch group {
	case "hour":
		return t.Format("Jan 2 15:04")
	case "week":
		return "wk " + t.Format("Jan 2")
	}
	return t.Format("Jan 2")
}

// rangeLabel describes [from, to) as days in loc: "Oct 27 – Nov 23, 2026".
func rangeLabel(from, to time.Time, loc *time.Location) string {
	if from.IsZero() || to.IsZero() {
		return "all data"
	}
	f, l := from.In(loc), to.In(loc)
	if l.After(f) && l.Hour() == 0 && l.Minute() == 0 && l.Second() == 0 && l.Nanosecond() == 0 {
		l = l.Add(-time.Nanosecond)
	}
	if f.Year() == l.Year() {
		if f.YearDay() == l.YearDay() {
			return f.Format("Jan 2, 2006")
		}
		return f.Format("Jan 2") + " – " + l.Format("Jan 2, 2006")
	}
	return f.Format("Jan 2, 2006") + " – " + l.Format("Jan 2, 2006")
}

// modelLabels names the attribution models.
var modelLabels = map[string]string{
	"first_touch": "First touch", "last_touch": "Last touch", "linear": "Linear",
	"time_decay": "Time decay", "position_based": "Position based",
}

// AttributionModels are the attribution models, in the selector's order.
var AttributionModels = []string{"first_touch", "last_touch", "linear", "time_decay", "position_based"}

func modelLabel(m string) string {
	if l, ok := modelLabels[m]; ok {
		return l
	}
	return m
}

func humanize(s string) string {
	s = strings.ReplaceAll(s, "_", " ")
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
