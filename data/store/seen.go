package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/maphash"

	"github.com/dgraph-io/badger/v4"
)

// seenFilter is the writer's in-memory approximate set of the keys it has committed to the
// dedupe (0x02), client session (0x04) and visitors-seen (0x0A) namespaces, and of the
// per-visitor prefixes ns|site|anonymous_id that have at least one conversion (0x07) or
// identity link (0x08): a chain of blocked Bloom filters (one
// 64-bit word per key, seenBitsPerKey bits of memory per key, each new filter twice the
// capacity of the previous). It has no false negatives for keys added, so "not in the
// filter" means "not in Badger" and the writer skips the Badger Get (or, for a prefix, the
// history iterator); a hit (true or false
// positive, about 0.1%–0.5% of absent keys) is checked in Badger, so answers stay exact.
//
// It is rebuilt at Open from a keys-only iteration of those namespaces and updated after each
// successful commit. Only the writer writes those namespaces (see the package doc); a key
// written behind its back (a restore through DB()) would be missed until the next Open.
// Writer-only: not safe for concurrent use.
type seenFilter struct {
	seed   maphash.Seed
	blocks []bloomBlock // the last one takes new keys
	gen    uint64       // keys added: a lookup's answer holds while it is unchanged
}

const (
	seenBitsPerKey  = 16      // ≈0.1–0.5% false positives with one-word blocks and 8 bits per key
	seenBitsSet     = 8       // bits set per key within its word
	seenMinCapacity = 1 << 16 // keys of the first block (128 KiB)
)

type bloomBlock struct {
	words []uint64
	n     int // keys added
	limit int // capacity: keys before the next block starts
}

func newBloomBlock(capacity int) bloomBlock {
	nw := 1
	for nw*64 < capacity*seenBitsPerKey {
		nw <<= 1
	}
	return bloomBlock{words: make([]uint64, nw), limit: nw * 64 / seenBitsPerKey}
}

func newSeenFilter(capacity int) *seenFilter {
	return &seenFilter{
		seed:   maphash.MakeSeed(),
		blocks: []bloomBlock{newBloomBlock(max(capacity, seenMinCapacity))},
	}
}

// hash returns the filter hash of a key.
func (f *seenFilter) hash(k []byte) uint64 { return maphash.Bytes(f.seed, k) }

// wordAndMask returns the word index (from the high bits of h) and the bits to set or test
// within it (from a remix of h) for a block of nw words (a power of two).
func wordAndMask(h uint64, nw int) (int, uint64) {
	return wordIndex(h, nw), wordMask(h)
}

// wordIndex is the word of h in a block of nw words (a power of two).
func wordIndex(h uint64, nw int) int { return int((h >> 32) & uint64(nw-1)) }

// wordMask is the bits of h within its word, the same in every block.
func wordMask(h uint64) uint64 {
	// splitmix64 finalizer: the bit positions do not depend on the word index bits alone.
	x := h + 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	x ^= x >> 31
	var m uint64
	for range seenBitsSet {
		m |= 1 << (x & 63)
		x >>= 6
	}
	return m
}

// add records a key hash.
func (f *seenFilter) add(h uint64) {
	b := &f.blocks[len(f.blocks)-1]
	if b.n >= b.limit {
		f.blocks = append(f.blocks, newBloomBlock(2*b.limit))
		b = &f.blocks[len(f.blocks)-1]
	}
	i, m := wordAndMask(h, len(b.words))
	b.words[i] |= m
	b.n++
	f.gen++
}

// mayContain reports false only for a hash never added. The usual answer is false, which
// reads one word of every block: the loop loads them all without a branch on the words, so
// that their cache misses overlap.
func (f *seenFilter) mayContain(h uint64) bool {
	m := wordMask(h)
	hit := false
	for j := range f.blocks {
		b := &f.blocks[j]
		w := b.words[wordIndex(h, len(b.words))]
		hit = hit || w&m == m
	}
	return hit
}

// keys returns the number of keys added.
func (f *seenFilter) keys() int {
	n := 0
	for _, b := range f.blocks {
		n += b.n
	}
	return n
}

// seenPrefixNS reports whether the filter holds the ns|site|anonymous_id prefixes of ns.
func seenPrefixNS(ns byte) bool { return ns == nsConversion || ns == nsLinkByAnon }

// strsPrefixLen returns the length of the namespace byte and the n length-prefixed strings
// that start k, or -1.
func strsPrefixLen(k []byte, n int) int {
	p := 1
	for range n {
		l, w := binary.Uvarint(k[min(p, len(k)):])
		if w <= 0 || uint64(len(k)-p-w) < l {
			return -1
		}
		p += w + int(l)
	}
	return p
}

// loadSeenFilter builds the filter from every key of the namespaces it covers, sized in one
// block for them (and as many again before it grows).
func loadSeenFilter(db *badger.DB) (*seenFilter, error) {
	f := newSeenFilter(0)
	var hs []uint64
	err := db.View(func(txn *badger.Txn) error {
		for _, ns := range []byte{nsDedupe, nsClient, nsVisitor, nsConversion, nsLinkByAnon} {
			prefix := []byte{ns}
			it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: false})
			var last []byte
			for it.Rewind(); it.ValidForPrefix(prefix); it.Next() {
				k := it.Item().Key()
				if seenPrefixNS(ns) {
					n := strsPrefixLen(k, 2)
					if n < 0 {
						it.Close()
						return fmt.Errorf("%w: index key", ErrCorrupt)
					}
					if k = k[:n]; bytes.Equal(k, last) {
						continue // keys of one prefix are adjacent
					}
					last = append(last[:0], k...)
				}
				hs = append(hs, f.hash(k))
			}
			it.Close()
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: load seen filter: %w", err)
	}
	f.blocks[0] = newBloomBlock(max(2*len(hs), seenMinCapacity))
	for _, h := range hs {
		f.add(h)
	}
	return f, nil
}
