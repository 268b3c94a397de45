package serve_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/nudgehq/nudge/data/config"
	"github.com/nudgehq/nudge/serve"
)

// Example runs the API on a free loopback port with an in-process store and sends one batch
// with the demo site's write key.
func Example() {
	srv, err := serve.New(serve.Options{
		Config: config.Demo(),
		Events: newFakeStore(),  // cmd/nudge passes the Badger store here
		Decode: fakeDecode(500), // and data/wire's decoder here
	})
	if err != nil {
		panic(err)
	}
	if err := srv.Open("127.0.0.1:0"); err != nil {
		panic(err)
	}
	defer srv.Close(context.Background())

	body := `{"events":[{"event_id":"e1","session_id":"s1","anonymous_id":"v1","type":"page_view"},
	                     {"event_id":"e2","session_id":"s1","type":"teleport"}]}`
	req, _ := http.NewRequest("POST", "http://"+srv.Addr()+"/v1/events", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer wk_demo_0123456789abcdef")
	req.Header.Set("Content-Type", "text/plain") // as navigator.sendBeacon sends it
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, strings.TrimSpace(string(b)))
	// Output:
	// 200 {"received":2,"accepted":1,"stored":1,"duplicates":0,"unlogged":0,"rejected":[{"index":1,"event_id":"e2","field":"type","reason":"unknown event type"}]}
}
