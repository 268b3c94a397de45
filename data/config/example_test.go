package config_test

import (
	"fmt"

	"github.com/nudgehq/nudge/data/config"
)

func ExampleParse() {
	_, err := config.Parse("nudge.yaml", []byte(`sites:
  - id: shop
    write_key: wk_shop_0123456789abcdef
    admin_key: ak_shop_0123456789abcdef
    macro_conversion: {name: purchase, value: 50}
    policy:
      holdout_share: 1.5
`))
	fmt.Println(err)
	// Output:
	// nudge.yaml:7:22: sites[0].policy.holdout_share: must be between 0 and 1, got 1.5
}

func ExampleConfig_SiteByWriteKey() {
	c := config.Demo()
	s, ok := c.SiteByWriteKey("wk_demo_0123456789abcdef")
	fmt.Println(s.ID, ok, s.Macro.Name, s.Macro.Value, len(s.Interventions))
	// Output:
	// demo true purchase 60 3
}
