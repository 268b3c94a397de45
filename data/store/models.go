package store

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"sync"

	"github.com/dgraph-io/badger/v4"
)

// The model registry: versioned model records (namespace 0x10) and each site's promotion
// history per model kind (namespace 0x11).
//
//	0x10 site|version(u64 BE)|0x00             -> record metadata (codec v1, no artifact)
//	0x10 site|version(u64 BE)|0x01|chunk(u32)  -> artifact bytes, in chunks of 512 KiB
//	0x11 site|kind|seq(u64 BE)                 -> promotion (codec v1): version, ts, rollback flag
//
// Registry writes are rare: they are Badger transactions written directly (not through the
// event writer, whose keys they never touch), logged in the redo log before their commit and
// synced, so they are durable when the call returns (registryUpdate). An artifact is
// chunked (Badger refuses values above 1 MiB in memory mode and caps a transaction's size); PutModel writes the chunks first, a few MiB per transaction,
// and the metadata last, so a record is visible only once complete (a crash in between
// leaves invisible chunks whose version number is not reused). A package mutex serialises them, which makes version and history sequence
// numbers unique within the process (the Badger directory lock keeps other processes out).

// ModelRecord is one registered model version.
type ModelRecord struct {
	Site               string
	Version            int               // assigned by PutModel: per-site sequence 1, 2, 3...
	Kind               string            // "propensity" | "uplift"
	Learner            string            // "logistic", "gbdt", "t-learner/gbdt", ...
	Params             map[string]string // hyperparameters
	Fingerprint        string            // features.Schema.Fingerprint the model was trained on
	Features           []string
	Arms               []string // uplift: arm names, Arms[0] = "control"; intervention ids after
	TrainFrom, TrainTo int64    // Unix ms range of the training data
	Rows               int
	Metrics            map[string]float64
	CreatedAt          int64 // Unix ms
	Note               string
	Artifact           []byte // model.Write / uplift.Write output
}

// Promotion is one entry of a site's promotion history for a model kind. A rollback entry
// undoes the latest promotion still in force and restores Version.
type Promotion struct {
	Version  int
	TS       int64
	Rollback bool
}

const (
	modelCodecV1     byte = 1
	promotionCodecV1 byte = 1

	modelPartMeta     byte = 0
	modelPartArtifact byte = 1

	artifactChunk   = 512 << 10
	chunksPerUpdate = 4
)

// registryMu serialises registry writes (version and promotion sequences).
var registryMu sync.Mutex

func modelKey(site string, version int, part byte) []byte {
	b := key(nsModelArtifact, site)
	b = binary.BigEndian.AppendUint64(b, uint64(version))
	return append(b, part)
}

func promotionPrefix(site, kind string) []byte { return key(nsModelPromotion, site, kind) }

// PutModel registers rec as the site's next version: it sets rec.Version (and rec.CreatedAt
// to the store's clock when 0) and returns once the record is on disk.
func (s *Store) PutModel(ctx context.Context, rec *ModelRecord) error {
	if rec == nil || rec.Site == "" {
		return fmt.Errorf("store: put model: site is required")
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("store: put model: %w", err)
	}
	registryMu.Lock()
	defer registryMu.Unlock()
	var version int
	err := s.registryView(func(txn *badger.Txn) error {
		last, err := lastModelVersion(txn, rec.Site)
		version = last + 1
		return err
	})
	if err != nil {
		return fmt.Errorf("store: put model: %w", err)
	}
	created := rec.CreatedAt
	if created == 0 {
		created = s.opts.Now().UnixMilli()
	}
	r := *rec
	r.Version, r.CreatedAt = version, created
	art := r.Artifact
	for chunk := 0; chunk == 0 || chunk*artifactChunk < len(art); {
		err := s.registryUpdate(func(_ *badger.Txn, set setFunc) error {
			for n := 0; n < chunksPerUpdate && (chunk == 0 || chunk*artifactChunk < len(art)); n++ {
				lo := chunk * artifactChunk
				hi := min(lo+artifactChunk, len(art))
				if err := set(artifactKey(r.Site, version, chunk), slices.Clone(art[lo:hi])); err != nil {
					return err
				}
				chunk++
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("store: put model artifact: %w", err)
		}
	}
	err = s.registryUpdate(func(_ *badger.Txn, set setFunc) error {
		return set(modelKey(r.Site, version, modelPartMeta), appendModelRecord(nil, &r))
	})
	if err != nil {
		return fmt.Errorf("store: put model: %w", err)
	}
	rec.Version, rec.CreatedAt = version, created
	return nil
}

func artifactKey(site string, version, chunk int) []byte {
	return binary.BigEndian.AppendUint32(modelKey(site, version, modelPartArtifact), uint32(chunk))
}

// registryView runs fn in a read-only transaction unless the store is closed.
func (s *Store) registryView(fn func(txn *badger.Txn) error) error {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return ErrClosed
	}
	return s.view(fn)
}

// setFunc writes a key in a registry update (registryUpdate).
type setFunc func(k, v []byte) error

// registryUpdate runs fn in a read-write transaction and makes its writes durable, unless
// the store is closed. fn reads through txn and writes through set: like the writer's
// chunks, the writes go to a redo log record written before the commit, and the update
// returns once that record is synced (in memory: DB.Sync, a no-op).
func (s *Store) registryUpdate(fn func(txn *badger.Txn, set setFunc) error) error {
	s.life.RLock()
	defer s.life.RUnlock()
	if s.dbShut {
		return ErrClosed
	}
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return ErrClosed
	}
	txn := s.db.NewTransaction(true)
	defer txn.Discard()
	var rec []byte
	big := false
	set := func(k, v []byte) error {
		if err := txn.Set(k, v); err != nil {
			return err
		}
		if s.redo != nil {
			rec = redoEntry(rec, k, v)
			big = big || int64(len(v)) >= s.vlogThreshold
		}
		return nil
	}
	if err := fn(txn, set); err != nil {
		return err
	}
	var seq uint64
	if len(rec) > 0 {
		var err error
		if seq, err = s.redo.beginCommit(rec); err != nil {
			return err
		}
	}
	err := txn.Commit()
	if seq != 0 {
		s.redo.endCommit()
		if err != nil {
			if cerr := s.redo.cancel(seq); cerr != nil {
				s.log.Error("store: redo log: cancel a failed commit", "seq", seq, "err", cerr)
			}
		}
	}
	if err != nil {
		return err
	}
	if big || s.redo == nil { // the value log, or in memory (a no-op)
		if err := s.db.Sync(); err != nil {
			return fmt.Errorf("store: registry sync: %w", err)
		}
	}
	if s.redo != nil {
		if err := s.redo.sync(); err != nil {
			return fmt.Errorf("store: registry sync: %w", err)
		}
	}
	return nil
}

func lastModelVersion(txn *badger.Txn, site string) (int, error) {
	prefix := key(nsModelArtifact, site)
	it := txn.NewIterator(badger.IteratorOptions{Reverse: true, Prefix: prefix})
	defer it.Close()
	it.Seek(prefixEnd(prefix))
	if !it.ValidForPrefix(prefix) {
		return 0, nil
	}
	k := it.Item().Key()
	if len(k) < len(prefix)+9 {
		return 0, fmt.Errorf("%w: model key", ErrCorrupt)
	}
	return int(binary.BigEndian.Uint64(k[len(prefix):])), nil
}

// Models lists a site's model records, newest first, without their artifacts.
func (s *Store) Models(ctx context.Context, site string) ([]ModelRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("store: models: %w", err)
	}
	var out []ModelRecord
	err := s.view(func(txn *badger.Txn) error {
		prefix := key(nsModelArtifact, site)
		it := txn.NewIterator(badger.IteratorOptions{Reverse: true, Prefix: prefix, PrefetchValues: false})
		defer it.Close()
		for it.Seek(prefixEnd(prefix)); it.ValidForPrefix(prefix); it.Next() {
			item := it.Item()
			k := item.Key()
			if len(k) < len(prefix)+9 {
				return fmt.Errorf("%w: model key", ErrCorrupt)
			}
			if len(k) != len(prefix)+9 || k[len(k)-1] != modelPartMeta {
				continue // artifact chunk
			}
			var rec ModelRecord
			if err := item.Value(func(v []byte) error { return decodeModelRecord(v, &rec) }); err != nil {
				return err
			}
			rec.Site = site
			out = append(out, rec)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: models of site %q: %w", site, err)
	}
	return out, nil
}

// Model returns one model record with its artifact; ErrNotFound when there is no such
// version.
func (s *Store) Model(ctx context.Context, site string, version int) (*ModelRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("store: model: %w", err)
	}
	var rec ModelRecord
	err := s.view(func(txn *badger.Txn) error { return readModel(txn, site, version, &rec) })
	if err != nil {
		return nil, fmt.Errorf("store: model %d of site %q: %w", version, site, err)
	}
	return &rec, nil
}

func readModel(txn *badger.Txn, site string, version int, rec *ModelRecord) error {
	if err := readModelMeta(txn, site, version, rec); err != nil {
		return err
	}
	rec.Site = site
	prefix := modelKey(site, version, modelPartArtifact)
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: false})
	defer it.Close()
	rec.Artifact = nil
	n := 0
	for it.Seek(prefix); it.ValidForPrefix(prefix); it.Next() {
		k := it.Item().Key()
		if len(k) != len(prefix)+4 || int(binary.BigEndian.Uint32(k[len(prefix):])) != n {
			return fmt.Errorf("%w: model artifact chunk", ErrCorrupt)
		}
		n++
		if err := it.Item().Value(func(v []byte) error { rec.Artifact = append(rec.Artifact, v...); return nil }); err != nil {
			return err
		}
	}
	if n == 0 {
		return fmt.Errorf("%w: model artifact missing", ErrCorrupt)
	}
	if rec.Artifact == nil {
		rec.Artifact = []byte{}
	}
	return nil
}

// Promote makes version the site's promoted model of kind, appending to the promotion
// history; durable when it returns. The version must exist and be of that kind.
func (s *Store) Promote(ctx context.Context, site, kind string, version int, ts int64) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("store: promote: %w", err)
	}
	registryMu.Lock()
	defer registryMu.Unlock()
	err := s.registryUpdate(func(txn *badger.Txn, set setFunc) error {
		var rec ModelRecord
		if err := readModelMeta(txn, site, version, &rec); err != nil {
			return err
		}
		if rec.Kind != kind {
			return fmt.Errorf("model %d is a %q model, not %q", version, rec.Kind, kind)
		}
		return appendPromotion(txn, set, site, kind, Promotion{Version: version, TS: ts})
	})
	if err != nil {
		return fmt.Errorf("store: promote %s model %d of site %q: %w", kind, version, site, err)
	}
	return nil
}

// RollbackModel undoes the latest promotion of kind still in force and restores the one
// before it, recording a rollback entry; it returns the restored version. ErrNotFound when
// there is no earlier promotion to go back to.
func (s *Store) RollbackModel(ctx context.Context, site, kind string, ts int64) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("store: rollback: %w", err)
	}
	registryMu.Lock()
	defer registryMu.Unlock()
	var restored int
	err := s.registryUpdate(func(txn *badger.Txn, set setFunc) error {
		hist, _, err := readPromotions(txn, site, kind)
		if err != nil {
			return err
		}
		stack := promotionStack(hist)
		if len(stack) < 2 {
			return fmt.Errorf("no earlier promotion: %w", ErrNotFound)
		}
		restored = stack[len(stack)-2]
		return appendPromotion(txn, set, site, kind, Promotion{Version: restored, TS: ts, Rollback: true})
	})
	if err != nil {
		return 0, fmt.Errorf("store: rollback %s model of site %q: %w", kind, site, err)
	}
	return restored, nil
}

// Promoted returns the model of kind in force for the site (with its artifact); ErrNotFound
// when none.
func (s *Store) Promoted(ctx context.Context, site, kind string) (*ModelRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("store: promoted: %w", err)
	}
	var rec ModelRecord
	err := s.view(func(txn *badger.Txn) error {
		hist, _, err := readPromotions(txn, site, kind)
		if err != nil {
			return err
		}
		stack := promotionStack(hist)
		if len(stack) == 0 {
			return ErrNotFound
		}
		return readModel(txn, site, stack[len(stack)-1], &rec)
	})
	if err != nil {
		return nil, fmt.Errorf("store: promoted %s model of site %q: %w", kind, site, err)
	}
	return &rec, nil
}

// Promotions returns a site's promotion history for kind, oldest first.
func (s *Store) Promotions(ctx context.Context, site, kind string) ([]Promotion, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("store: promotions: %w", err)
	}
	var hist []Promotion
	err := s.view(func(txn *badger.Txn) error {
		var err error
		hist, _, err = readPromotions(txn, site, kind)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: promotions of site %q: %w", site, err)
	}
	return hist, nil
}

// promotionStack replays a history: a promotion pushes its version, a rollback pops the
// latest one. The top is the version in force.
func promotionStack(hist []Promotion) []int {
	var stack []int
	for _, p := range hist {
		if p.Rollback {
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
			continue
		}
		stack = append(stack, p.Version)
	}
	return stack
}

func readModelMeta(txn *badger.Txn, site string, version int, rec *ModelRecord) error {
	if version <= 0 {
		return ErrNotFound
	}
	item, err := txn.Get(modelKey(site, version, modelPartMeta))
	if err == badger.ErrKeyNotFound {
		return ErrNotFound
	}
	if err != nil {
		return err
	}
	return item.Value(func(v []byte) error { return decodeModelRecord(v, rec) })
}

func readPromotions(txn *badger.Txn, site, kind string) ([]Promotion, uint64, error) {
	prefix := promotionPrefix(site, kind)
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: false})
	defer it.Close()
	var hist []Promotion
	var next uint64
	for it.Seek(prefix); it.ValidForPrefix(prefix); it.Next() {
		item := it.Item()
		k := item.Key()
		if len(k) != len(prefix)+8 {
			return nil, 0, fmt.Errorf("%w: promotion key", ErrCorrupt)
		}
		next = binary.BigEndian.Uint64(k[len(prefix):]) + 1
		var p Promotion
		err := item.Value(func(v []byte) error {
			if len(v) < 2 || v[0] != promotionCodecV1 {
				return fmt.Errorf("%w: promotion codec version", ErrCorrupt)
			}
			p.Rollback = v[1] == 1
			d := decoder{b: v[2:]}
			p.Version = int(d.uvarint())
			p.TS = d.varint()
			if d.bad {
				return fmt.Errorf("%w: promotion", ErrCorrupt)
			}
			return nil
		})
		if err != nil {
			return nil, 0, err
		}
		hist = append(hist, p)
	}
	return hist, next, nil
}

func appendPromotion(txn *badger.Txn, set setFunc, site, kind string, p Promotion) error {
	_, next, err := readPromotions(txn, site, kind)
	if err != nil {
		return err
	}
	k := binary.BigEndian.AppendUint64(promotionPrefix(site, kind), next)
	var flag byte
	if p.Rollback {
		flag = 1
	}
	v := []byte{promotionCodecV1, flag}
	v = binary.AppendUvarint(v, uint64(p.Version))
	v = binary.AppendVarint(v, p.TS)
	return set(k, v)
}

// appendModelRecord encodes everything but Site (in the key) and Artifact (its own key):
//
//	version | strings: kind, learner, fingerprint, note | varints: version, train_from,
//	train_to, rows, created_at | params count + sorted key/value pairs | features count +
//	names | arms count + names | metrics count + sorted (name, float64 bits LE) pairs.
func appendModelRecord(b []byte, r *ModelRecord) []byte {
	b = append(b, modelCodecV1)
	for _, s := range []string{r.Kind, r.Learner, r.Fingerprint, r.Note} {
		b = appendStr(b, s)
	}
	for _, v := range []int64{int64(r.Version), r.TrainFrom, r.TrainTo, int64(r.Rows), r.CreatedAt} {
		b = binary.AppendVarint(b, v)
	}
	pk := make([]string, 0, len(r.Params))
	for k := range r.Params {
		pk = append(pk, k)
	}
	slices.Sort(pk)
	b = binary.AppendUvarint(b, uint64(len(pk)))
	for _, k := range pk {
		b = appendStr(b, k)
		b = appendStr(b, r.Params[k])
	}
	for _, list := range [][]string{r.Features, r.Arms} {
		b = binary.AppendUvarint(b, uint64(len(list)))
		for _, s := range list {
			b = appendStr(b, s)
		}
	}
	mk := make([]string, 0, len(r.Metrics))
	for k := range r.Metrics {
		mk = append(mk, k)
	}
	slices.Sort(mk)
	b = binary.AppendUvarint(b, uint64(len(mk)))
	for _, k := range mk {
		b = appendStr(b, k)
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(r.Metrics[k]))
	}
	return b
}

func decodeModelRecord(b []byte, r *ModelRecord) error {
	if len(b) < 1 || b[0] != modelCodecV1 {
		return fmt.Errorf("%w: model codec version", ErrCorrupt)
	}
	d := decoder{b: b[1:]}
	str := func() string {
		if d.bad {
			return ""
		}
		s, rest, err := readStr(d.b)
		if err != nil {
			d.bad = true
			return ""
		}
		d.b = rest
		return s
	}
	r.Kind, r.Learner, r.Fingerprint, r.Note = str(), str(), str(), str()
	r.Version = int(d.varint())
	r.TrainFrom = d.varint()
	r.TrainTo = d.varint()
	r.Rows = int(d.varint())
	r.CreatedAt = d.varint()
	count := func() int {
		n := d.uvarint()
		if n > uint64(len(d.b)) {
			d.bad = true
			return 0
		}
		return int(n)
	}
	r.Params = nil
	if n := count(); n > 0 {
		r.Params = make(map[string]string, n)
		for range n {
			k := str()
			r.Params[k] = str()
		}
	}
	r.Features, r.Arms = nil, nil
	for _, dst := range []*[]string{&r.Features, &r.Arms} {
		if n := count(); n > 0 {
			*dst = make([]string, n)
			for i := range n {
				(*dst)[i] = str()
			}
		}
	}
	r.Metrics = nil
	if n := count(); n > 0 {
		r.Metrics = make(map[string]float64, n)
		for range n {
			k := str()
			r.Metrics[k] = math.Float64frombits(d.u64())
		}
	}
	if d.bad {
		return fmt.Errorf("%w: model record", ErrCorrupt)
	}
	return nil
}
