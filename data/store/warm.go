package store

import (
	"github.com/dgraph-io/badger/v4"
)

// warmUpCheckEvery is how many keys the warm-up pass walks between checks for Close.
const warmUpCheckEvery = 1024

// warmUp walks the keys of every stored session record once, in key order, in the
// background after Open, and stops at Close. Badger reads its tables through mmap: until the
// process has touched a page of a table, the first read of it takes a page fault, which
// costs 15–40 µs on the 2-core VM (measured: first touch per 64 KB p50 17 µs, the kernel
// maps 16 pages at a time), several times a whole read, and most reads of a random old
// session in a freshly started server would take one. The walk takes those faults in order,
// one per 64 KB, about 40 ms of faults and 0.5 s of CPU for a million sessions (seen.go's
// filter load walks the client-session keys at Open the same way, for LiveSession's first
// lookup). Nothing is cached in the process: reads still go through Badger; only the kernel's
// page tables are filled, and the data stays where it was (the page cache).
func (s *Store) warmUp() {
	defer close(s.warmDone)
	s.life.RLock()
	defer s.life.RUnlock()
	if s.dbShut {
		return
	}
	txn := s.db.NewTransaction(false)
	defer txn.Discard()
	prefix := []byte{nsSession}
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: false})
	defer it.Close()
	for it.Seek(prefix); it.ValidForPrefix(prefix); it.Next() {
		if s.warmedKeys++; s.warmedKeys%warmUpCheckEvery == 0 {
			select {
			case <-s.warmStop:
				return
			default:
			}
		}
	}
}
