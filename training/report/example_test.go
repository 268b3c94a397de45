package report_test

import (
	"os"
	"time"

	"github.com/nudgehq/nudge/training/report"
)

// A report's funnel section as CSV: the versioned comment line, the header, one row per step.
func ExampleReport_WriteCSV() {
	r := &report.Report{Site: "demo",
		From: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 3, 8, 0, 0, 0, 0, time.UTC),
		Funnel: []report.FunnelStep{
			{Phase: "browse", Kind: "phase", Sessions: 800, OfFirst: 1, FromPrevious: 0.8, DropOff: 0.2},
			{Phase: "cart", Kind: "phase", Sessions: 200, OfFirst: 0.25, FromPrevious: 0.25, DropOff: 0.75},
			{Phase: "purchase", Kind: "macro", Sessions: 50, OfFirst: 0.0625, FromPrevious: 0.25, DropOff: 0.75},
		}}
	if err := r.WriteCSV(os.Stdout, "funnel"); err != nil {
		panic(err)
	}
	// Output:
	// # nudge report v1 section=funnel site=demo from=2026-03-01T00:00:00Z to=2026-03-08T00:00:00Z
	// phase,kind,sessions,of_first,from_previous,drop_off
	// browse,phase,800,1,0.8,0.2
	// cart,phase,200,0.25,0.25,0.75
	// purchase,macro,50,0.0625,0.25,0.75
}
