package policy

import (
	"math"
	"sync"
	"sync/atomic"
)

// counters hold the per-day state the policy needs: per-session and per-visitor intervention
// counts for the caps (sharded by visitor, so requests of different visitors rarely share a
// lock), and the day's budget (atomics). Counts are in memory: a restart forgets them, so caps
// and budgets restart from zero (the decision log keeps the history; see the package doc).
type counters struct {
	n      int
	shards [64]shard
	mu     sync.Mutex // guards day switches of the budget only
	cur    atomic.Pointer[budget]
}

type shard struct {
	mu  sync.Mutex
	day int32
	ses map[string][]int32
	vis map[string][]int32
}

type budget struct {
	day        int32
	decisions  atomic.Int64
	treated    atomic.Int64
	spendMicro atomic.Int64
}

func newCounters(n int) *counters {
	c := &counters{n: n}
	c.cur.Store(&budget{day: -1})
	return c
}

func (c *counters) lock(visitor string, day int32) *shard {
	h := uint32(2166136261)
	for i := 0; i < len(visitor); i++ {
		h = (h ^ uint32(visitor[i])) * 16777619
	}
	sh := &c.shards[h%uint32(len(c.shards))]
	sh.mu.Lock()
	if sh.day != day || sh.ses == nil {
		sh.day, sh.ses, sh.vis = day, map[string][]int32{}, map[string][]int32{}
	}
	return sh
}

// get returns the session's and the visitor's per-intervention counts for today, creating
// them (caller holds sh.mu; the slices stay owned by the shard).
func (sh *shard) get(n int, session, visitor string) (ses, vis []int32) {
	ses, ok := sh.ses[session]
	if !ok {
		ses = make([]int32, n)
		sh.ses[session] = ses
	}
	vis, ok = sh.vis[visitor]
	if !ok {
		vis = make([]int32, n)
		sh.vis[visitor] = vis
	}
	return ses, vis
}

func (c *counters) budget(day int32) *budget {
	b := c.cur.Load()
	if b.day == day {
		return b
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if b = c.cur.Load(); b.day != day {
		b = &budget{day: day}
		c.cur.Store(b)
	}
	return b
}

// allows reports whether one more treatment of the given cost fits today's budget. Concurrent
// decisions may overshoot by at most one treatment each (the check and the count are not one
// atomic step), which is documented as a soft limit.
func (b *budget) allows(cost, maxShare, maxSpend float64) bool {
	// Treat while the treated count is below the share of the decisions including this one:
	// the first decision of a day may treat, and the running share converges to maxShare.
	if maxShare > 0 && float64(b.treated.Load()) >= maxShare*float64(b.decisions.Load()+1) {
		return false
	}
	if maxSpend > 0 && float64(b.spendMicro.Load())/1e6+cost > maxSpend {
		return false
	}
	return true
}

func (b *budget) count(treated bool, cost float64) {
	b.decisions.Add(1)
	if treated {
		b.treated.Add(1)
		b.spendMicro.Add(int64(math.Round(cost * 1e6)))
	}
}
