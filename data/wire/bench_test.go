package wire

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	gojson "github.com/goccy/go-json"
)

// benchBody is a realistic batch of n events (page views, clicks, conversions with props).
func benchBody(n int) []byte {
	var parts []string
	types := []string{`"page_view"`, `"click"`, `"micro_conversion"`, `"page_view"`}
	for i := range n {
		parts = append(parts, ev(map[string]string{
			"event_id":     fmt.Sprintf(`"01J9ZK3%08d"`, i),
			"session_id":   `"sess-8f2c1d9a"`,
			"anonymous_id": `"anon-5b7e0c3f2a91"`,
			"type":         types[i%len(types)],
			"name":         `"add_to_cart"`,
			"timestamp":    fmt.Sprint(now.UnixMilli() - int64(n-i)*1000),
			"props":        fmt.Sprintf(`{"path":"/product/%d?utm_source=news","title":"Blue shoes, size %d","device":"mobile","engaged_ms":%d,"scroll_pct":45}`, i, i%12, i*37),
		}))
	}
	return []byte(`{"events":[` + strings.Join(parts, ",") + `]}`)
}

// BenchmarkDecodeBatch decodes a 100-event batch with each JSON library.
//
//	go test ./data/wire -run '^$' -bench DecodeBatch -benchmem
func BenchmarkDecodeBatch(b *testing.B) {
	body := benchBody(100)
	libs := []struct {
		name string
		fn   func([]byte, any) error
	}{
		{"goccy", gojson.Unmarshal},
		{"std", json.Unmarshal},
	}
	for _, lib := range libs {
		b.Run(lib.name, func(b *testing.B) {
			saved := unmarshal
			unmarshal = lib.fn
			defer func() { unmarshal = saved }()
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				bt, err := DecodeBatch(body, now, DefaultLimits(), true)
				if err != nil || len(bt.Events) != 100 {
					b.Fatalf("%v %d %v", err, len(bt.Events), bt.Errors)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*100), "ns/event")
		})
	}
}
