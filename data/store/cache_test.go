package store

import (
	"fmt"
	"testing"
)

// TestLruishGetBytes checks that getBytes finds what get finds, in both generations, and
// promotes an old-generation hit as get does.
func TestLruishGetBytes(t *testing.T) {
	// Two caches fed the same puts and lookups, one through get, one through getBytes,
	// must answer alike and keep the same generations (promotion included).
	a, b := newLruish[int](8), newLruish[int](8) // 4 per generation
	for i := range 40 {
		k := fmt.Sprint("k", i%11)
		if i%3 == 0 {
			a.put(k, i)
			b.put(k, i)
			continue
		}
		va, oka := a.get(k)
		vb, okb := b.getBytes([]byte(k))
		if va != vb || oka != okb {
			t.Fatalf("step %d: get(%s) = %d, %v; getBytes = %d, %v", i, k, va, oka, vb, okb)
		}
		if fmt.Sprint(a.cur, a.old) != fmt.Sprint(b.cur, b.old) {
			t.Fatalf("step %d: generations differ: %v %v / %v %v", i, a.cur, a.old, b.cur, b.old)
		}
	}
	sc := newShardedCache(256)
	sc.put("a", []byte("x"))
	if v, ok := sc.getBytes([]byte("a")); !ok || string(v) != "x" {
		t.Fatalf("shardedCache.getBytes(a) = %q, %v", v, ok)
	}
	if _, ok := sc.getBytes([]byte("b")); ok {
		t.Fatal("shardedCache.getBytes found an absent key")
	}
}

// TestLruishRotation: a generation that rotates out reuses the dropped one's map; the keys
// of the dropped generation must not come back with it.
func TestLruishRotation(t *testing.T) {
	c := newLruish[int](8) // 4 per generation
	for i := range 20 {
		c.put(fmt.Sprint("k", i), i)
	}
	for i := range 20 {
		k := fmt.Sprint("k", i)
		_, inCur := c.cur[k]
		_, inOld := c.old[k]
		switch {
		case i >= 16 && !inCur, i >= 12 && i < 16 && !inOld:
			t.Errorf("%s: in cur %v, in old %v", k, inCur, inOld)
		case i < 12 && (inCur || inOld):
			t.Errorf("%s of a dropped generation is still cached", k)
		}
	}
	if len(c.cur) != 4 || len(c.old) != 4 {
		t.Fatalf("generations of %d and %d keys, want 4 and 4", len(c.cur), len(c.old))
	}
	// A full generation takes a new value for a key it holds without rotating.
	c.put("k19", -19)
	if v, _ := c.cur["k19"]; v != -19 || len(c.cur) != 4 || len(c.old) != 4 || c.old["k12"] != 12 {
		t.Fatalf("update of a held key in a full generation: cur %v, old %v", c.cur, c.old)
	}
}
