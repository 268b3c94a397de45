package config

import "time"

// Demo returns the documented demo site (the same shop as nudge.example.yaml): what
// `nudge serve` runs without a configuration file. Each call returns a fresh copy.
func Demo() *Config {
	consent := true
	return &Config{
		SessionTimeout: Duration{Duration: 30 * time.Minute},
		Path:           "demo",
		Sites: []Site{{
			ID:             "demo",
			Name:           "Demo shop",
			WriteKey:       "wk_demo_0123456789abcdef",
			AdminKey:       "ak_demo_0123456789abcdef",
			AllowedOrigins: []string{"http://localhost:8080", "http://127.0.0.1:8080"},
			TimeZone:       "UTC",
			Macro:          Macro{Name: "purchase", Value: 60},
			Phases: []Phase{
				{Name: "browse", Milestones: []string{"view_product"}},
				{Name: "cart", Milestones: []string{"add_to_cart"}},
				{Name: "checkout", Milestones: []string{"begin_checkout"}},
			},
			SecondaryActions: []string{"newsletter_signup", "share", "download", "watch_video"},
			Interventions: []Intervention{
				{
					ID: "discount10", Kind: "discount_popup", Cost: 3,
					Eligibility: Eligibility{Phases: []string{"cart", "checkout"}},
					Caps:        Caps{PerSession: 1, PerVisitorPerDay: 2},
				},
				{
					ID: "chat_offer", Kind: "chat", Cost: 1,
					Eligibility: Eligibility{MinPageViews: 3},
					Caps:        Caps{PerSession: 1},
				},
				{
					ID: "help_tip", Kind: "help_tip", Cost: 0.1,
					Caps: Caps{PerSession: 2},
				},
			},
			Policy: Policy{
				HoldoutShare:     0.1,
				ExplorationShare: 0.05,
				Threshold:        0,
				Budget:           Budget{MaxShare: 0.5, MaxSpendPerDay: 1000},
				Seed:             42,
			},
			ConsentDefault: &consent,
		}},
	}
}
