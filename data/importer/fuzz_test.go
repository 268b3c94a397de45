package importer

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"unicode/utf8"

	"github.com/nudgehq/nudge/data/wire"
	"github.com/nudgehq/nudge/features"
)

// FuzzImport feeds arbitrary files to Import (format detected from the content) and checks
// that it never panics, that every row is either handed to the sink or rejected, that every
// event handed over is valid, and that rejections point at real lines.
//
//	go test ./data/importer -run '^$' -fuzz FuzzImport -fuzztime 1m
func FuzzImport(f *testing.F) {
	f.Add([]byte(`{"event_id":"e1","session_id":"s","anonymous_id":"a","type":"click","timestamp":1704164645000}` + "\n\nbad\n"))
	f.Add([]byte("event_id,session_id,anonymous_id,type,timestamp,value,consent,props.path\ne,s,a,click,1704164645000,1.5,true,/x?token=1\n,,,,,\n"))
	f.Add([]byte("session,aid,ts,type\n1,2,1659304800025,clicks\n1,2,1659304800025,orders\n1,x,1,carts\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		var got int64
		sink := func(ctx context.Context, evs []features.Event) (int, int, int, error) {
			for i := range evs {
				if errs := wire.Validate(&evs[i], now, wire.Limits{MaxPast: ImportMaxPast}); errs != nil {
					t.Fatalf("invalid event handed to sink: %+v: %v", evs[i], errs)
				}
				if !utf8.ValidString(evs[i].EventID) {
					t.Fatalf("invalid UTF-8 id %q", evs[i].EventID)
				}
			}
			got += int64(len(evs))
			return len(evs), 0, 0, nil
		}
		o := opts("")
		rep, err := Import(context.Background(), bytes.NewReader(in), o, sink)
		if err != nil {
			if !errors.Is(err, ErrHeader) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if rep.Imported != got || rep.Rows != got+rep.Rejected {
			t.Fatalf("rows %d = imported %d (sink saw %d) + rejected %d does not add up", rep.Rows, rep.Imported, got, rep.Rejected)
		}
		lines := bytes.Count(in, []byte("\n")) + 1
		for _, r := range rep.Rejections {
			if r.Line < 1 || r.Line > lines || r.Reason == "" {
				t.Fatalf("rejection %+v outside the %d lines of the input", r, lines)
			}
		}
	})
}
