package wire_test

import (
	"fmt"
	"time"

	"github.com/nudgehq/nudge/data/wire"
)

func ExampleDecodeBatch() {
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	body := []byte(`{"events":[
	  {"event_id":"e1","session_id":"s1","anonymous_id":"a1","type":"page_view",
	   "timestamp":"2026-11-23T11:59:00Z","props":{"path":"/cart?token=abc","scroll_pct":40}},
	  {"event_id":"e2","session_id":"s1","anonymous_id":"a1","type":"purchase",
	   "timestamp":1795435140000}
	]}`)
	b, err := wire.DecodeBatch(body, now, wire.DefaultLimits(), true)
	if err != nil {
		fmt.Println(err)
		return
	}
	for i, ev := range b.Events {
		fmt.Println(b.Index[i], ev.EventID, ev.Type, ev.Props["path"], ev.Props["scroll_pct"])
	}
	for _, e := range b.Errors {
		fmt.Println(e.Index, e.EventID, e.Field+":", e.Reason)
	}
	// Output:
	// 0 e1 page_view /cart?token=REDACTED 40
	// 1 e2 type: unknown event type "purchase" (valid: page_view, click, error, micro_conversion, macro_conversion, exposure, identify, custom)
}
