package report

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestJSONRoundTrip(t *testing.T) {
	r := handReport(t)
	var buf bytes.Buffer
	if err := r.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&back, r) {
		t.Fatalf("decoded report differs:\n got %+v\nwant %+v", back, *r)
	}
	if back.Version != FormatVersion || len(back.Lift) == 0 || len(back.Attribution) != len(Models) {
		t.Fatalf("round trip lost content: %+v", back)
	}
}

func TestCSVSections(t *testing.T) {
	r := handReport(t)
	items := map[string]int{
		"overview": 11, "series": len(r.Series), "funnel": len(r.Funnel), "micro": len(r.Micro), "lift": len(r.Lift),
		"impact": 1 + len(r.Impact.ByThreshold) + len(r.Impact.ByBudget),
	}
	for _, a := range r.Attribution {
		items["attribution"] += len(a.Rows)
	}
	for _, section := range Sections {
		t.Run(section, func(t *testing.T) {
			var buf bytes.Buffer
			if err := r.WriteCSV(&buf, section); err != nil {
				t.Fatal(err)
			}
			first, rest, _ := strings.Cut(buf.String(), "\n")
			want := "# nudge report v1 section=" + section + " site=demo from=2026-03-10T00:00:00Z to=2026-03-11T00:00:00Z"
			if first != want {
				t.Fatalf("first line %q, want %q", first, want)
			}
			recs, err := csv.NewReader(strings.NewReader(rest)).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(recs[0], Columns(section)) {
				t.Fatalf("header %v", recs[0])
			}
			if got := len(recs) - 1; got != items[section] || got == 0 {
				t.Fatalf("%d rows, want %d", got, items[section])
			}
		})
	}
	if err := r.WriteCSV(&bytes.Buffer{}, "nope"); !errors.Is(err, ErrSection) {
		t.Errorf("unknown section: %v", err)
	}
	var buf bytes.Buffer
	_ = r.WriteCSV(&buf, "funnel")
	if !strings.Contains(buf.String(), "cart,phase,2,0.6666666666666666,0.6666666666666666,0.33333333333333337\n") {
		t.Errorf("funnel csv:\n%s", buf.String())
	}
}

func TestWriteText(t *testing.T) {
	r := handReport(t)
	var buf bytes.Buffer
	if err := r.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"nudge report: site demo", "Overview", "conversion_rate", "Funnel", "checkout",
		"Micro conversions", "newsletter_signup", "Lift", "discount10", "Predicted impact", "uplift model v2",
		"Attribution", "position_based", "facebook.com / social", "Notes", "no holdout sessions"} {
		if !strings.Contains(out, want) {
			t.Errorf("text output lacks %q:\n%s", want, out)
		}
	}
	if err := r.WriteText(failWriter{}); err == nil {
		t.Error("WriteText to a failing writer: no error")
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }
