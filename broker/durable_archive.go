package broker

import (
	"context"
	"strconv"
	"strings"

	"github.com/zerotask/zerotask/codec"
	"github.com/zerotask/zerotask/internal/rawjson"
	"github.com/zerotask/zerotask/protocol"
	"github.com/zerotask/zerotask/store"
)

// The archive in durable mode: on a store that keeps one (store.Redis), the dead-letter
// archive lives in the store, shared by every broker on it and kept across restarts, instead
// of in memory. A task that ends FAILURE, EXPIRED or REVOKED is written to it by the finisher
// (after its result, before its ack), with its record and what it takes to run it again;
// broker.list reads the archive's part of a listing from the store and broker.requeue revives
// archived tasks there (store.Revive): each waits in its store queue again, under its own id,
// until a broker with idle nodes for it claims it. Both run off the routing loop, as status
// lookups do (bounded by MaxWaiting with them).

// archiveStore is a store that keeps the archive (store.Redis).
type archiveStore interface {
	Archive(ctx context.Context, lim store.ArchiveLimits, dead ...store.Dead) error
	ListDead(ctx context.Context, lim store.ArchiveLimits, from uint64, newest bool, n int, dst []store.Dead) ([]store.Dead, error)
	Revive(ctx context.Context, ids ...string) ([]store.Dead, error)
	DeleteDead(ctx context.Context, ids ...string) (int, error)
	GetDead(ctx context.Context, id string, d *store.Dead) (bool, error)
}

const (
	// deadPage is how many archived tasks one store read takes.
	deadPage = 256
	// deadScan bounds the archived tasks one list or requeue call looks at (a filter that
	// matches few answers a short page with a cursor to go on).
	deadScan = 10_000
	// storeJobTimeouts is how many StoreTimeouts a list or requeue call may take in all.
	storeJobTimeouts = 4
)

// archiveStored queues archived task d (of t, in queue q) for the store's archive.
func (c *core) archiveStored(t *task, q *queue, d *dead) {
	id := c.storeID(t)
	d.alias = id
	o := d.opts
	o.owner = d.owner // read back by a revived task's claim: its results stay its submitter's
	c.dur.deads = append(c.dur.deads, store.Dead{
		ID:      id,
		Queue:   q.name,
		Method:  q.method,
		Params:  d.params,
		Meta:    appendMetaOf(nil, metaSubmitted, d.prio, o, 0),
		Timeout: d.timeout,
		Record:  c.appendDead(nil, d),
	})
	kick(c.dur.fkick)
}

// startStoreJob answers a request with run, off the routing loop (durable mode); after, if
// set, runs under Broker.mu before the answer goes.
func (c *core) startStoreJob(p *peer, tg target, h *codec.Header, run func(ctx context.Context) ([]byte, *codec.Error), after func()) {
	c.askStore(p, tg, h, &lookup{tg: tg, run: run, after: after})
}

// deadMatches reports whether f selects archived task d.
func deadMatches(f *filter, d *store.Dead) bool {
	st := stUnknown
	if raw := rawjson.Param(d.Record, protocol.ParamState, -1); raw != nil {
		if name, ok := rawjson.Unquote(raw); ok {
			st, _ = stateByName(string(name))
		}
	}
	qname := ""
	if i := strings.IndexByte(d.Queue, 0); i >= 0 {
		qname = d.Queue[i+1:] // a named queue: method + "\x00" + name (queueFor)
	}
	return f.matches(st, d.Method, qname)
}

// walkDead calls fn with each archived task in the store that f selects, after position
// from in f's order, until fn returns false, deadScan tasks were looked at, or the archive
// ends. It returns the cursor to go on from, "" once the archive ended.
func walkDead(ctx context.Context, as archiveStore, lim store.ArchiveLimits, f *filter, from uint64, fn func(d *store.Dead) bool) (string, error) {
	var buf []store.Dead
	for looked := 0; looked < deadScan; {
		var err error
		if buf, err = as.ListDead(ctx, lim, from, f.newest, deadPage, buf[:0]); err != nil {
			return "", err
		}
		for i := range buf {
			d := &buf[i]
			looked++
			if deadMatches(f, d) && !fn(d) {
				return cursorAt(srcArchive, from), nil
			}
			from = d.Pos
		}
		if len(buf) < deadPage {
			return "", nil
		}
	}
	return cursorAt(srcArchive, from), nil
}

// listDurable answers a page whose sources reach the archive in the store: the live tasks and
// records of memory first (at once, when they fill the page), then the store's archive.
func (c *core) listDurable(p *peer, tg target, h *codec.Header, f *filter, pg *page) {
	pg.dst = append([]byte(nil), pageHead...) // owned: finished off the routing loop
	var from uint64
	if f.src < srcArchive {
		f.lastSrc = srcDone
		cur := c.walk(f, protocol.DefaultListScan, func(seq uint64, d *dead) bool { return c.pageAdd(pg, seq, d) })
		if cur == "" && pg.n == pg.limit {
			cur = cursorAt(srcArchive, 0) // the archive is next
		}
		if cur != "" {
			c.ok(tg, h.ID, pg.end(cur))
			return
		}
		f.src, f.lastSrc = srcArchive, srcArchive
	} else if f.started {
		from = f.pos
	}
	as, lim, log := c.darch, c.dlim, c.log
	fl := *f
	c.startStoreJob(p, tg, h, func(ctx context.Context) ([]byte, *codec.Error) {
		cur, err := walkDead(ctx, as, lim, &fl, from, func(d *store.Dead) bool { return pg.addRaw(d.Record, d.ID) })
		if err != nil {
			log.Warn("broker: store: listing the archive failed", "err", err)
			return nil, errStoreRead
		}
		return pg.end(cur), nil
	}, nil)
}

// requeueDurable runs archived tasks again through the store (durable mode): given ids, or
// those a filter selects (at most MaxListLimit a call, with a cursor to go on).
func (c *core) requeueDurable(p *peer, tg target, h *codec.Header) {
	as, lim, log := c.darch, c.dlim, c.log
	var ids []string
	var f filter
	byFilter := false
	if raw := rawjson.Param(h.Params, protocol.ParamID, -1); raw != nil {
		var id string
		if codec.Unmarshal(raw, &id) != nil {
			c.badParams(tg, h.ID, "id must be a task id string")
			return
		}
		ids = []string{id}
	} else if raw := rawjson.Param(h.Params, protocol.ParamIDs, -1); raw != nil {
		if codec.Unmarshal(raw, &ids) != nil || len(ids) > protocol.MaxListLimit {
			c.badParams(tg, h.ID, "ids must be an array of at most "+strconv.Itoa(protocol.MaxListLimit)+" task id strings")
			return
		}
	} else {
		if !c.readRequeueFilter(tg, h, &f) {
			return
		}
		byFilter = true
		if f.src != srcArchive || !f.started {
			f.pos = 0
		}
	}
	var revived []store.Dead
	c.startStoreJob(p, tg, h, func(ctx context.Context) ([]byte, *codec.Error) {
		cur := ""
		if byFilter {
			var err error
			cur, err = walkDead(ctx, as, lim, &f, f.pos, func(d *store.Dead) bool {
				if len(ids) == protocol.MaxListLimit {
					return false
				}
				ids = append(ids, d.ID)
				return true
			})
			if err != nil {
				log.Warn("broker: store: listing the archive failed", "err", err)
				return nil, errStoreRead
			}
		}
		var err error
		if revived, err = as.Revive(ctx, ids...); err != nil {
			log.Warn("broker: store: requeueing archived tasks failed", "err", err)
			return nil, errStoreRead
		}
		dst := append([]byte(nil), `{"`+protocol.MemberRequeued+`":`...)
		dst = strconv.AppendInt(dst, int64(len(revived)), 10)
		if cur != "" {
			dst = protocol.AppendMember(dst, protocol.MemberCursor)
			dst = codec.AppendString(dst, cur)
		}
		return append(dst, '}'), nil
	}, func() {
		// A record of the earlier run kept here would answer for the task while it runs again.
		for _, d := range revived {
			if seq, ok := c.parsePublicID(codec.AppendString(c.scratch2[:0], d.ID)); ok {
				c.store.forget(seq)
			}
		}
	})
}

// purgeStored forgets the archived tasks in the store that f selects (broker.purge with
// "archived":true), looking at the whole archive (bounded by Config.ArchiveMax).
func (c *core) purgeStored(p *peer, tg target, h *codec.Header, f *filter) {
	as, lim, log := c.darch, c.dlim, c.log
	fl := *f
	c.startStoreJob(p, tg, h, func(ctx context.Context) ([]byte, *codec.Error) {
		n := 0
		var from uint64
		for {
			var ids []string
			cur, err := walkDead(ctx, as, lim, &fl, from, func(d *store.Dead) bool {
				ids = append(ids, d.ID)
				return true
			})
			if err == nil && len(ids) > 0 {
				var k int
				k, err = as.DeleteDead(ctx, ids...)
				n += k
			}
			if err != nil {
				log.Warn("broker: store: purging the archive failed", "err", err)
				return nil, errStoreRead
			}
			if cur == "" {
				return appendPurged(nil, n), nil
			}
			from, _ = strconv.ParseUint(cur[1:], 10, 64)
		}
	}, nil)
}
