package store

import (
	"hash/maphash"
	"sync"
)

// lruish is a bounded map with two generations: when the current generation is full it
// becomes the old one and the previous old one is dropped. Hits in the old generation are
// promoted. It is not safe for concurrent use; see shardedCache.
type lruish[V any] struct {
	cur, old map[string]V
	max      int
}

func newLruish[V any](max int) *lruish[V] {
	if max < 2 {
		max = 2
	}
	return &lruish[V]{cur: make(map[string]V), max: max / 2}
}

func (c *lruish[V]) get(k string) (V, bool) {
	if v, ok := c.cur[k]; ok {
		return v, true
	}
	if v, ok := c.old[k]; ok {
		delete(c.old, k)
		c.put(k, v)
		return v, true
	}
	var zero V
	return zero, false
}

// getBytes is get for a key held as bytes: a hit in the current generation, or a miss,
// allocates nothing (get(string(k)) copies k).
func (c *lruish[V]) getBytes(k []byte) (V, bool) {
	if v, ok := c.cur[string(k)]; ok {
		return v, true
	}
	if v, ok := c.old[string(k)]; ok {
		ks := string(k)
		delete(c.old, ks)
		c.put(ks, v)
		return v, true
	}
	var zero V
	return zero, false
}

func (c *lruish[V]) put(k string, v V) {
	if len(c.cur) >= c.max && !c.has(k) { // the length first: one lookup less per put
		// The dropped generation's map, emptied, is the new one: it already has room for
		// max keys (a fresh map's memory costs its allocation, page faults and GC).
		drop := c.old
		c.old = c.cur
		if drop != nil {
			clear(drop)
			c.cur = drop
		} else {
			c.cur = make(map[string]V, c.max)
		}
	}
	c.cur[k] = v
}

// has reports whether the current generation holds k.
func (c *lruish[V]) has(k string) bool {
	_, ok := c.cur[k]
	return ok
}

func (c *lruish[V]) delete(k string) {
	delete(c.cur, k)
	delete(c.old, k)
}

// shardedCache is a concurrent bounded cache of immutable byte slices (encoded session
// records). Only the writer puts; readers only get, so a cached value is always the latest
// committed one.
type shardedCache struct {
	seed   maphash.Seed
	shards [64]struct {
		mu sync.Mutex
		m  *lruish[[]byte]
		_  [40]byte // keep shards on separate cache lines
	}
}

func newShardedCache(max int) *shardedCache {
	c := &shardedCache{seed: maphash.MakeSeed()}
	for i := range c.shards {
		c.shards[i].m = newLruish[[]byte](max / len(c.shards))
	}
	return c
}

func (c *shardedCache) shard(k string) int {
	return int(maphash.String(c.seed, k) % uint64(len(c.shards)))
}

func (c *shardedCache) get(k string) ([]byte, bool) {
	s := &c.shards[c.shard(k)]
	s.mu.Lock()
	v, ok := s.m.get(k)
	s.mu.Unlock()
	return v, ok
}

// getBytes is get for a key held as bytes, without copying it (maphash.Bytes and
// maphash.String agree on the same bytes).
func (c *shardedCache) getBytes(k []byte) ([]byte, bool) {
	s := &c.shards[int(maphash.Bytes(c.seed, k)%uint64(len(c.shards)))]
	s.mu.Lock()
	v, ok := s.m.getBytes(k)
	s.mu.Unlock()
	return v, ok
}

func (c *shardedCache) put(k string, v []byte) {
	s := &c.shards[c.shard(k)]
	s.mu.Lock()
	s.m.put(k, v)
	s.mu.Unlock()
}
