package store

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"github.com/nudgehq/nudge/features"
)

// TestChunkKeysMatchKeys: the keys the writer cuts from its chunk blocks are byte for byte
// the keys of keys.go, for short and long (multi-byte uvarint) parts, and the blocks never
// hand out overlapping memory.
func TestChunkKeysMatchKeys(t *testing.T) {
	c := &chunk{}
	long := strings.Repeat("x", 300)
	var got [][]byte
	for _, p := range []struct{ a, b string }{{"site", "e1"}, {"", ""}, {long, "e2"}, {"s", long}, {long, strings.Repeat("y", 40000)}} {
		k := c.key2(nsDedupe, p.a, p.b)
		if want := key(nsDedupe, p.a, p.b); !bytes.Equal(k, want) {
			t.Errorf("key2(%q, %q) = %x, want %x", p.a, p.b, k, want)
		}
		ek := c.eventKey(p.a, p.b, -12345, "ev")
		if want := eventKey(p.a, p.b, -12345, "ev"); !bytes.Equal(ek, want) {
			t.Errorf("eventKey(%q, %q) = %x, want %x", p.a, p.b, ek, want)
		}
		sk := c.sessionByTimeKey(p.a, -12345, p.b)
		if want := sessionByTimeKey(p.a, -12345, p.b); !bytes.Equal(sk, want) {
			t.Errorf("sessionByTimeKey(%q, %q) = %x, want %x", p.a, p.b, sk, want)
		}
		if b := c.strBytes(p.b); string(b) != p.b {
			t.Errorf("strBytes(%q) = %q", p.b, b)
		}
		got = append(got, k, ek, sk)
	}
	// Writing one slice to its capacity must not change another.
	saved := make([][]byte, len(got))
	for i, k := range got {
		saved[i] = bytes.Clone(k)
	}
	for i := range got {
		full := got[i][:cap(got[i])]
		for j := range full {
			full[j] ^= 0xFF
		}
		for j := range got {
			if j != i && !bytes.Equal(got[j], saved[j]) {
				t.Fatalf("slice %d overlaps slice %d", i, j)
			}
		}
		for j := range full {
			full[j] ^= 0xFF
		}
	}
	for _, n := range []int{0, 1, 127, 128, 16383, 16384, 1 << 21} {
		if got, want := uvarintLen(n), len(appendStr(nil, strings.Repeat("z", n)))-n; got != want {
			t.Errorf("uvarintLen(%d) = %d, want %d", n, got, want)
		}
	}
}

// TestSessionRecordSize: sessionRecordSize bounds appendSession's encoding, so prepare
// allocates each record once, for records with the longest varints too.
func TestSessionRecordSize(t *testing.T) {
	long := strings.Repeat("x", 200)
	for _, r := range []sessionRecord{
		{},
		{Client: "c", Anon: "a", Fingerprint: "fp", Visit: 1, StartTS: t0, LastTS: t0, HistTS: t0, Events: 3, State: []byte{1, 2, 3}},
		{Client: long, Anon: long, User: long, Fingerprint: long, Visit: math.MaxInt, StartTS: math.MinInt64,
			LastTS: math.MaxInt64, HistTS: math.MinInt64, Events: math.MaxInt, LoggedEvents: math.MaxInt,
			Hist:  features.VisitorHistory{Sessions7d: math.MaxInt, Sessions30d: math.MaxInt, LastSessionTS: math.MinInt64, Conversions: math.MaxInt, LastConversionTS: math.MaxInt64, Monetary: 1e300},
			State: make([]byte, 1000)},
	} {
		n := sessionRecordSize(&r)
		v := appendSession(make([]byte, 0, n), &r)
		if len(v) > n || cap(v) != n {
			t.Errorf("record of %d bytes, size bound %d (cap %d)", len(v), n, cap(v))
		}
		var back sessionRecord
		if err := decodeSession(v, &back); err != nil || back.Visit != r.Visit || back.LastTS != r.LastTS || len(back.State) != len(r.State) {
			t.Errorf("round trip: %+v, %v", back, err)
		}
	}
}
