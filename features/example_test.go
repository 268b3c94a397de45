package features_test

import (
	"fmt"
	"time"

	"github.com/nudgehq/nudge/features"
)

func Example() {
	schema, err := features.NewSchema(features.Spec{
		MacroConversion: "purchase",
		Phases: []features.Phase{
			{Name: "browse", Milestones: []string{"view_product"}},
			{Name: "cart", Milestones: []string{"add_to_cart"}},
		},
		SecondaryActions: []string{"newsletter_signup"},
		TimeZone:         "Europe/Paris",
	})
	if err != nil {
		panic(err)
	}
	start := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC).UnixMilli()
	events := []features.Event{
		{Type: features.PageView, TS: start, Props: map[string]string{"path": "/products/42", "referrer": "https://www.google.com/", "device": "mobile"}},
		{Type: features.MicroConversion, TS: start + 20_000, Name: "view_product"},
		{Type: features.MicroConversion, TS: start + 45_000, Name: "add_to_cart", Value: 39.90},
		{Type: features.PageView, TS: start + 50_000, Props: map[string]string{"path": "/cart"}},
	}

	st := schema.NewState(features.VisitorHistory{Sessions30d: 2, LastSessionTS: start - 3*24*3600*1000})
	for i := range events {
		schema.Fold(&st, &events[i])
	}
	vec := make([]float64, schema.Len())
	if err := schema.Vector(&st, start+60_000, vec); err != nil {
		panic(err)
	}
	for _, name := range []string{"page_views", "unique_pages", "time_on_site_s", "time_since_start_s", "cart_value",
		"funnel_phase", "phase_cart", "ms_add_to_cart_reached", "device_mobile", "channel_organic", "days_since_prev_visit", "hour_cos"} {
		i, _ := schema.Index(name)
		fmt.Printf("%-22s %.4g\n", name, vec[i])
	}
	// Output:
	// page_views             2
	// unique_pages           2
	// time_on_site_s         50
	// time_since_start_s     60
	// cart_value             39.9
	// funnel_phase           2
	// phase_cart             1
	// ms_add_to_cart_reached 1
	// device_mobile          1
	// channel_organic        1
	// days_since_prev_visit  3
	// hour_cos               -0.866
}
