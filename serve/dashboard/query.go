package dashboard

import (
	"fmt"
	"math"
	"net/url"
	"strconv"
	"time"

	"github.com/nudgehq/nudge/training/report"
)

// ParamError is a bad query parameter: Param names it.
type ParamError struct {
	Param, Value, Reason string
}

func (e *ParamError) Error() string {
	return fmt.Sprintf("parameter %s=%q: %s", e.Param, e.Value, e.Reason)
}

// Presets are the date ranges the dashboard offers besides a custom one.
var Presets = []string{"7d", "28d", "all"}

// DefaultPreset is the range of a dashboard page that names none.
const DefaultPreset = "28d"

// Groups are the accepted time-series buckets ("" picks one from the range length).
var Groups = []string{"hour", "day", "week"}

const dateLayout = "2006-01-02"

// Selection is a parsed report query with what the dashboard's form shows.
type Selection struct {
	Query report.Query
	// Preset is "7d", "28d", "all" or "" for a custom range.
	Preset string
	// FromDate and ToDate are the date picker's values: the first and the last day covered
	// (YYYY-MM-DD in the site's time zone), empty for "all".
	FromDate, ToDate string
}

// ParseQuery reads a report query from URL parameters, in the site's time zone loc:
//
//	from, to    YYYY-MM-DD (midnight in loc) or RFC 3339 times; the range is [from, to)
//	            by session start, as report.Query and `nudge report` have it. With
//	            toInclusive (the dashboard's date picker), a day given as to is included:
//	            to=2026-11-23 ends at midnight after that day.
//	range       7d, 28d (the last n days up to today in loc) or all; from/to win over it
//	group       hour, day, week, auto or empty
//	threshold   a number: the expected-value threshold of the impact section's policy point
//	budget      a share in (0, 1]: the budget of that point
//
// defPreset is the range used when neither from, to nor range is given ("" or "all": the
// whole log). Errors are *ParamError.
func ParseQuery(v url.Values, site string, loc *time.Location, now time.Time, defPreset string, toInclusive bool) (Selection, error) {
	sel := Selection{Query: report.Query{Site: site}}
	if loc == nil {
		loc = time.UTC
	}
	from, to := v.Get("from"), v.Get("to")
	preset := v.Get("range")
	if preset != "" && !validPreset(preset) {
		return sel, &ParamError{"range", preset, "want 7d, 28d or all"}
	}
	if from == "" && to == "" {
		if preset == "" {
			preset = defPreset
		}
		sel.Preset = preset
		if preset != "" && preset != "all" {
			days, _ := strconv.Atoi(preset[:len(preset)-1])
			y, m, d := now.In(loc).Date()
			end := time.Date(y, m, d+1, 0, 0, 0, 0, loc)
			sel.Query.From, sel.Query.To = end.AddDate(0, 0, -days), end
		}
	} else {
		var err error
		if sel.Query.From, err = parseTime(from, loc, false); err != nil {
			return sel, &ParamError{"from", from, err.Error()}
		}
		if sel.Query.To, err = parseTime(to, loc, toInclusive); err != nil {
			return sel, &ParamError{"to", to, err.Error()}
		}
		if !sel.Query.From.IsZero() && !sel.Query.To.IsZero() && !sel.Query.From.Before(sel.Query.To) {
			return sel, &ParamError{"to", to, "must be after from"}
		}
	}
	if !sel.Query.From.IsZero() {
		sel.FromDate = sel.Query.From.In(loc).Format(dateLayout)
	}
	if !sel.Query.To.IsZero() {
		sel.ToDate = sel.Query.To.Add(-time.Nanosecond).In(loc).Format(dateLayout)
	}

	switch g := v.Get("group"); g {
	case "", "auto":
	case "hour", "day", "week":
		sel.Query.Group = g
	default:
		return sel, &ParamError{"group", g, "want hour, day, week or auto"}
	}
	if s := v.Get("threshold"); s != "" {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return sel, &ParamError{"threshold", s, "want a number"}
		}
		sel.Query.Threshold = &f
	}
	if s := v.Get("budget"); s != "" {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || !(f > 0 && f <= 1) {
			return sel, &ParamError{"budget", s, "want a share in (0, 1]"}
		}
		sel.Query.Budget = &f
	}
	return sel, nil
}

func validPreset(p string) bool {
	for _, q := range Presets {
		if p == q {
			return true
		}
	}
	return false
}

// parseTime reads a day in loc (its midnight, or with next the following midnight) or an
// RFC 3339 time. Empty is the zero time.
func parseTime(s string, loc *time.Location, next bool) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseInLocation(dateLayout, s, loc); err == nil {
		if next {
			d = d.AddDate(0, 0, 1)
		}
		return d, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("want a date YYYY-MM-DD or an RFC 3339 time")
	}
	return t, nil
}

// Values returns the dashboard URL parameters that select the same report (range, or
// from/to as the first and last day), for the page's own links.
func (s Selection) Values() url.Values {
	v := url.Values{}
	if s.Query.Site != "" {
		v.Set("site", s.Query.Site)
	}
	switch {
	case s.Preset != "":
		v.Set("range", s.Preset)
	default:
		if s.FromDate != "" {
			v.Set("from", s.FromDate)
		}
		if s.ToDate != "" {
			v.Set("to", s.ToDate)
		}
	}
	if s.Query.Group != "" {
		v.Set("group", s.Query.Group)
	}
	if s.Query.Threshold != nil {
		v.Set("threshold", strconv.FormatFloat(*s.Query.Threshold, 'g', -1, 64))
	}
	if s.Query.Budget != nil {
		v.Set("budget", strconv.FormatFloat(*s.Query.Budget, 'g', -1, 64))
	}
	return v
}

// Filename is the download name of a section of report r:
// nudge-<site>-<section>-<first day>-<last day>.<ext>, the days covered in loc.
func Filename(r *report.Report, section, ext string, loc *time.Location) string {
	if loc == nil {
		loc = time.UTC
	}
	from, to := "start", "end"
	if !r.From.IsZero() {
		from = r.From.In(loc).Format(dateLayout)
	}
	if !r.To.IsZero() {
		last := r.To
		if last.After(r.From) {
			last = last.Add(-time.Nanosecond)
		}
		to = last.In(loc).Format(dateLayout)
	}
	return fmt.Sprintf("nudge-%s-%s-%s-%s.%s", safeName(r.Site), section, from, to, ext)
}

// safeName keeps a file name to letters, digits, '-', '_' and '.'.
func safeName(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			b[i] = '_'
		}
	}
	return string(b)
}
