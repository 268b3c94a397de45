package report

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// ErrSection is returned by WriteCSV for a section not in Sections.
var ErrSection = fmt.Errorf("report: unknown section (want one of %s)", strings.Join(Sections, ", "))

// WriteJSON writes the report as one indented JSON document.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("report: write json: %w", err)
	}
	return nil
}

// Header returns the first (comment) line of a CSV section, without the newline.
func (r *Report) Header(section string) string {
	return fmt.Sprintf("# nudge report v%d section=%s site=%s from=%s to=%s", FormatVersion, section, r.Site,
		r.From.Format(time.RFC3339), r.To.Format(time.RFC3339))
}

// Columns returns the CSV column names of a section (nil for an unknown one).
func Columns(section string) []string {
	switch section {
	case "overview":
		return []string{"metric", "value", "previous", "change"}
	case "series":
		return []string{"start", "sessions", "conversions", "revenue", "decisions", "treated"}
	case "funnel":
		return []string{"phase", "kind", "sessions", "of_first", "from_previous", "drop_off"}
	case "micro":
		return []string{"name", "kind", "phase", "sessions", "rate", "conversion_with", "conversion_without"}
	case "lift":
		return []string{"arm", "method", "sessions", "conversions", "rate", "holdout_sessions", "holdout_conversions",
			"holdout_rate", "lift", "ci_low", "ci_high", "ci_level", "relative", "p_value", "incremental_conversions",
			"incremental_ci_low", "incremental_ci_high", "incremental_revenue", "cost", "roi"}
	case "impact":
		return []string{"model_version", "point", "threshold", "budget", "treated", "treated_share",
			"incremental_conversions", "incremental_revenue", "cost", "roi"}
	case "attribution":
		return []string{"model", "kind", "touch", "conversions", "revenue", "share"}
	}
	return nil
}

// Metrics returns the overview's metrics with their snake_case names, in order.
func (o *Overview) Metrics() []struct {
	Name   string
	Metric Metric
} {
	type nm = struct {
		Name   string
		Metric Metric
	}
	return []nm{
		{"sessions", o.Sessions}, {"visitors", o.Visitors}, {"conversions", o.Conversions},
		{"revenue", o.Revenue}, {"conversion_rate", o.ConversionRate}, {"engagement_rate", o.EngagementRate},
		{"return_visit_rate", o.ReturnVisitRate}, {"intervention_ctr", o.InterventionCTR}, {"clv", o.CLV},
		{"decisions", o.Decisions}, {"exposures", o.Exposures},
	}
}

// num formats a float for CSV: shortest representation that round-trips ('g', -1).
func num(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

func inum(v int64) string { return strconv.FormatInt(v, 10) }

// rows returns a section's rows, in Columns order.
func (r *Report) rows(section string) [][]string {
	var out [][]string
	switch section {
	case "overview":
		for _, m := range r.Overview.Metrics() {
			out = append(out, []string{m.Name, num(m.Metric.Value), num(m.Metric.Previous), num(m.Metric.Change)})
		}
	case "series":
		for _, p := range r.Series {
			out = append(out, []string{p.Start.Format(time.RFC3339), inum(p.Sessions), inum(p.Conversions), num(p.Revenue),
				inum(p.Decisions), inum(p.Treated)})
		}
	case "funnel":
		for _, s := range r.Funnel {
			out = append(out, []string{s.Phase, s.Kind, inum(s.Sessions), num(s.OfFirst), num(s.FromPrevious), num(s.DropOff)})
		}
	case "micro":
		for _, m := range r.Micro {
			out = append(out, []string{m.Name, m.Kind, m.Phase, inum(m.Sessions), num(m.Rate), num(m.ConversionWith), num(m.ConversionWithout)})
		}
	case "lift":
		for _, l := range r.Lift {
			out = append(out, []string{l.Arm, l.Method, inum(l.Sessions), inum(l.Conversions), num(l.Rate),
				inum(l.HoldoutSessions), inum(l.HoldoutConverted), num(l.HoldoutRate), num(l.Lift),
				num(l.CI.Low), num(l.CI.High), num(l.CI.Level), num(l.Relative), num(l.PValue), num(l.Incremental),
				num(l.IncrementalCI.Low), num(l.IncrementalCI.High), num(l.IncrementalRevenue), num(l.Cost), num(l.ROI)})
		}
	case "impact":
		add := func(point string, p ImpactPoint) {
			out = append(out, []string{r.Impact.ModelVersion, point, num(p.Threshold), num(p.Budget), inum(p.Treated),
				num(p.TreatedShare), num(p.IncrementalConversions), num(p.IncrementalRevenue), num(p.Cost), num(p.ROI)})
		}
		if r.Impact.ModelVersion != "" || len(r.Impact.ByThreshold) > 0 {
			add("current", r.Impact.Current)
		}
		for _, p := range r.Impact.ByThreshold {
			add("threshold", p)
		}
		for _, p := range r.Impact.ByBudget {
			add("budget", p)
		}
	case "attribution":
		for _, a := range r.Attribution {
			for _, c := range a.Rows {
				out = append(out, []string{a.Model, c.Kind, c.Touch, num(c.Conversions), num(c.Revenue), num(c.Share)})
			}
		}
	}
	return out
}

// WriteCSV writes one section (one of Sections): the comment line of Header, the header row of
// Columns, then one row per item. Numbers use strconv's shortest 'g' form, times RFC 3339 in
// the site's time zone.
func (r *Report) WriteCSV(w io.Writer, section string) error {
	cols := Columns(section)
	if cols == nil {
		return fmt.Errorf("%w: %q", ErrSection, section)
	}
	if _, err := io.WriteString(w, r.Header(section)+"\n"); err != nil {
		return fmt.Errorf("report: write csv: %w", err)
	}
	cw := csv.NewWriter(w)
	if err := cw.Write(cols); err != nil {
		return fmt.Errorf("report: write csv: %w", err)
	}
	if err := cw.WriteAll(r.rows(section)); err != nil {
		return fmt.Errorf("report: write csv: %w", err)
	}
	return nil
}

// WriteText writes the report as human-readable tables for a terminal.
func (r *Report) WriteText(out io.Writer) error {
	w := &errWriter{w: out}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	p := func(format string, a ...any) { fmt.Fprintf(tw, format, a...) }
	pct := func(v float64) string { return strconv.FormatFloat(100*v, 'f', 1, 64) + "%" }
	pp := func(v float64) string { return strconv.FormatFloat(100*v, 'f', 2, 64) + " pp" }
	money := func(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }
	f2 := func(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }
	flush := func() { _ = tw.Flush() }

	fmt.Fprintf(w, "nudge report: site %s, %s to %s (%s, by %s)\n", r.Site, r.From.Format("2006-01-02 15:04"),
		r.To.Format("2006-01-02 15:04"), r.TimeZone, r.Group)
	fmt.Fprintf(w, "macro conversion %q, value %s\n\n", r.MacroName, money(r.Value))

	fmt.Fprintln(w, "Overview (previous period of equal length)")
	p("metric\tvalue\tprevious\tchange\t\n")
	for _, m := range r.Overview.Metrics() {
		v, prev := f2(m.Metric.Value), f2(m.Metric.Previous)
		switch m.Name {
		case "sessions", "visitors", "conversions", "decisions", "exposures":
			v, prev = strconv.FormatFloat(m.Metric.Value, 'f', 0, 64), strconv.FormatFloat(m.Metric.Previous, 'f', 0, 64)
		}
		if strings.HasSuffix(m.Name, "_rate") || m.Name == "intervention_ctr" {
			v, prev = pct(m.Metric.Value), pct(m.Metric.Previous)
		}
		change := "n/a" // no previous figure to compare with
		if m.Metric.Previous != 0 {
			change = fmt.Sprintf("%+.1f%%", 100*m.Metric.Change)
		}
		p("%s\t%s\t%s\t%s\t\n", m.Name, v, prev, change)
	}
	flush()

	fmt.Fprintln(w, "\nFunnel")
	p("step\tsessions\tof first\tfrom previous\tdrop-off\t\n")
	for _, s := range r.Funnel {
		p("%s\t%d\t%s\t%s\t%s\t\n", s.Phase, s.Sessions, pct(s.OfFirst), pct(s.FromPrevious), pct(s.DropOff))
	}
	flush()

	fmt.Fprintln(w, "\nMicro conversions")
	p("action\tkind\tphase\tsessions\trate\tconv. with\tconv. without\t\n")
	for _, m := range r.Micro {
		p("%s\t%s\t%s\t%d\t%s\t%s\t%s\t\n", m.Name, m.Kind, m.Phase, m.Sessions, pct(m.Rate), pct(m.ConversionWith), pct(m.ConversionWithout))
	}
	flush()

	fmt.Fprintln(w, "\nLift against no intervention (95% intervals)")
	if len(r.Lift) == 0 {
		fmt.Fprintln(w, "  (no decisions logged)")
	} else {
		p("arm\tn\trate\tcomparison n\tcomparison rate\tlift\t95%% CI\tp\tincremental conv.\trevenue\tcost\tROI\t\n")
		for _, l := range r.Lift {
			p("%s\t%d\t%s\t%d\t%s\t%s\t[%s, %s]\t%.3g\t%s [%s, %s]\t%s\t%s\t%s\t\n", l.Arm, l.Sessions, pct(l.Rate), l.HoldoutSessions,
				pct(l.HoldoutRate), pp(l.Lift), pp(l.CI.Low), pp(l.CI.High), l.PValue, f2(l.Incremental),
				f2(l.IncrementalCI.Low), f2(l.IncrementalCI.High), money(l.IncrementalRevenue), money(l.Cost), f2(l.ROI))
		}
		flush()
		fmt.Fprintln(w, "  policy: sessions, treatment group against the randomized holdout (Newcombe hybrid score);")
		fmt.Fprintln(w, "  interventions: logged decisions, inverse propensity weighted (Hajek) against no intervention.")
	}

	fmt.Fprintln(w, "\nPredicted impact of the policy on the logged decisions")
	if r.Impact.ModelVersion == "" && len(r.Impact.ByThreshold) == 0 {
		fmt.Fprintln(w, "  (no uplift scores logged)")
	} else {
		fmt.Fprintf(w, "uplift model %s\n", r.Impact.ModelVersion)
		p("point\tthreshold\tbudget\ttreated\tshare\tincr. conv.\tincr. revenue\tcost\tROI\t\n")
		row := func(name string, x ImpactPoint) {
			p("%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t\n", name, f2(x.Threshold), pct(x.Budget), x.Treated, pct(x.TreatedShare),
				f2(x.IncrementalConversions), money(x.IncrementalRevenue), money(x.Cost), f2(x.ROI))
		}
		row("current", r.Impact.Current)
		for _, x := range r.Impact.ByThreshold {
			row("threshold", x)
		}
		for _, x := range r.Impact.ByBudget {
			row("budget", x)
		}
		flush()
	}

	fmt.Fprintln(w, "\nAttribution")
	for _, a := range r.Attribution {
		fmt.Fprintf(w, "%s\n", a.Model)
		p("kind\ttouch\tconversions\trevenue\tshare\t\n")
		for _, c := range a.Rows {
			p("%s\t%s\t%s\t%s\t%s\t\n", c.Kind, c.Touch, f2(c.Conversions), money(c.Revenue), pct(c.Share))
		}
		flush()
	}
	if len(r.Notes) > 0 {
		fmt.Fprintln(w, "\nNotes")
		for _, n := range r.Notes {
			fmt.Fprintf(w, "  - %s\n", n)
		}
	}
	_ = tw.Flush()
	if w.err != nil {
		return fmt.Errorf("report: write text: %w", w.err)
	}
	return nil
}

// errWriter remembers the first write error and drops later writes.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}
