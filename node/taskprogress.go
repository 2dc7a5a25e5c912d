package node

import (
	"sync"
	"time"

	"github.com/zerotask/zerotask/dispatch"
	"github.com/zerotask/zerotask/protocol"
)

// Progress of long tasks. A handler's dispatch.Progress lands in its taskCtx's progress: the
// last report only, under a lock of its own, so a report costs a lock and a copy whatever the
// rate. The first report of a tick puts the context on the outbox's list and arms the progress
// timer; when it fires (one heartbeat interval later) every listed task's last report goes out
// as one broker.progress notice each, in the outbox's next message. So a task sends at most
// one report per heartbeat interval, however often it reports, and a report never waits for
// the network. A task that finishes drops what it had not sent: its result supersedes it.
//
// Lock order: taskProgress.mu and outbox.mu are never held together.

// taskProgress is the progress part of a taskCtx.
type taskProgress struct {
	mu       sync.Mutex
	id       []byte // the hand-out id, copied at the first report (the task's is reused)
	raw      []byte // the last report as JSON
	pending  bool   // raw has not been sent
	listed   bool   // on the outbox's list
	finished bool   // the run is over: reports are ignored
	out      *outbox
	src      *task // the task while it runs (for its id)
}

var _ dispatch.ProgressReporter = (*taskCtx)(nil)

// ReportProgress implements dispatch.ProgressReporter.
func (c *taskCtx) ReportProgress(done, total int64, note string) {
	p := &c.prog
	p.mu.Lock()
	if p.finished || p.out == nil {
		p.mu.Unlock()
		return
	}
	p.raw = dispatch.AppendProgress(p.raw[:0], done, total, note)
	c.noteReport()
}

// ReportProgressRaw implements dispatch.ProgressReporter.
func (c *taskCtx) ReportProgressRaw(raw []byte) {
	p := &c.prog
	p.mu.Lock()
	if p.finished || p.out == nil {
		p.mu.Unlock()
		return
	}
	p.raw = append(p.raw[:0], raw...)
	c.noteReport()
}

// noteReport marks the report pending and lists the context once (p.mu held; released here).
func (c *taskCtx) noteReport() {
	p := &c.prog
	if p.id == nil {
		p.id = append([]byte(nil), p.src.id...)
	}
	p.pending = true
	list := !p.listed
	p.listed = true
	out := p.out
	p.mu.Unlock()
	if list {
		out.listProgress(c)
	}
}

// endProgress closes a run's progress: later reports (a goroutine the handler left) are
// ignored and what was not sent is dropped.
func (c *taskCtx) endProgress() {
	p := &c.prog
	p.mu.Lock()
	p.finished, p.pending, p.src = true, false, nil
	p.mu.Unlock()
}

// progressBook is the outbox's list of tasks with a report to send, and its timer.
type progressBook struct {
	list  []*taskCtx
	armed bool
	timer *time.Timer
	tick  time.Duration
	sent  uint64 // broker.progress notices appended (for tests and stats)
}

func (b *progressBook) init(tick time.Duration) {
	if tick <= 0 {
		tick = protocol.DefaultHeartbeatInterval
	}
	b.tick = tick
	b.timer = time.NewTimer(time.Hour)
	b.timer.Stop()
}

// listProgress puts c on the list and arms the timer unless it runs.
func (o *outbox) listProgress(c *taskCtx) {
	o.mu.Lock()
	o.prog.list = append(o.prog.list, c)
	if !o.prog.armed {
		o.prog.armed = true
		o.prog.timer.Reset(o.prog.tick)
	}
	o.mu.Unlock()
}

// packProgress appends a broker.progress notice for every listed task's last report; the
// caller flushes.
func (o *outbox) packProgress() {
	o.mu.Lock()
	list := o.prog.list
	o.prog.list = nil
	o.prog.armed = false
	o.mu.Unlock()
	var buf []byte
	for _, c := range list {
		p := &c.prog
		p.mu.Lock()
		p.listed = false
		if !p.pending {
			p.mu.Unlock()
			continue
		}
		p.pending = false
		buf = protocol.AppendProgress(buf[:0], p.id, p.raw)
		p.mu.Unlock()
		o.mu.Lock()
		if o.ready && !o.abandon {
			b := &o.out
			start := b.Begin()
			b.Cur = append(b.Cur, buf...)
			b.End(start, 0)
			o.prog.sent++
		}
		o.mu.Unlock()
	}
}
