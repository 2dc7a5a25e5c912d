package bench

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// progressTick is how often the bar is redrawn: often enough to look alive, rarely enough to cost
// nothing measurable (one small write per tick).
const progressTick = 100 * time.Millisecond

// Progress draws a one-line progress bar (for a terminal: it rewrites its line with a carriage
// return) while a phase runs. A nil *Progress draws nothing, so the harness calls it
// unconditionally. Begin and End must alternate; Begin starts one ticker goroutine and End stops
// it and clears the line.
type Progress struct {
	w     io.Writer
	width int // bar cells between the brackets

	mu    sync.Mutex // guards the fields below and every write to w
	phase string
	start time.Time
	dur   time.Duration // the phase's time budget, 0 if bounded by count only
	total int64         // the phase's task budget, 0 if bounded by time only
	done  func() int64  // reads the phase's completed count; must be safe to call concurrently
	stop  chan struct{}
	wg    sync.WaitGroup
}

// NewProgress returns a progress bar drawing on w.
func NewProgress(w io.Writer) *Progress { return &Progress{w: w, width: 30} }

// IsTerminal reports whether f is a character device (a terminal): the bar is only worth drawing
// there, never into a file or a pipe.
func IsTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// Begin starts drawing the bar of a phase bounded by total tasks and/or the duration d (either
// may be 0). done reports how many tasks have completed so far.
func (p *Progress) Begin(phase string, total int64, d time.Duration, done func() int64) {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.phase, p.start, p.dur, p.total, p.done = phase, time.Now(), d, total, done
	p.stop = make(chan struct{})
	p.mu.Unlock()
	p.wg.Add(1)
	go p.loop(p.stop)
}

func (p *Progress) loop(stop chan struct{}) {
	defer p.wg.Done()
	t := time.NewTicker(progressTick)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			p.draw()
		}
	}
}

func (p *Progress) draw() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done == nil {
		return
	}
	n := p.done()
	el := time.Since(p.start)
	frac := 0.0
	if p.total > 0 {
		frac = float64(n) / float64(p.total)
	}
	if p.dur > 0 {
		frac = max(frac, float64(el)/float64(p.dur))
	}
	rate := 0.0
	if el > 0 {
		rate = float64(n) / el.Seconds()
	}
	fmt.Fprint(p.w, "\r\x1b[K"+renderBar(p.phase, frac, n, rate, p.width))
}

// End stops the bar of the current phase and clears its line.
func (p *Progress) End() {
	if p == nil {
		return
	}
	p.mu.Lock()
	stop := p.stop
	p.stop = nil
	p.mu.Unlock()
	if stop == nil {
		return
	}
	close(stop)
	p.wg.Wait()
	p.mu.Lock()
	p.done = nil
	fmt.Fprint(p.w, "\r\x1b[K")
	p.mu.Unlock()
}

// renderBar returns one line of the bar: the phase, the bar, the percentage, the count and the
// rate, e.g. "sync   [=========>          ]  33%  12,345 tasks  41,150/s". frac is clamped to [0,1].
func renderBar(phase string, frac float64, done int64, rate float64, width int) string {
	frac = min(max(frac, 0), 1)
	filled := int(frac * float64(width))
	var b strings.Builder
	fmt.Fprintf(&b, "%-6s [", phase)
	b.WriteString(strings.Repeat("=", filled))
	if filled < width {
		b.WriteByte('>')
		b.WriteString(strings.Repeat(" ", width-filled-1))
	}
	fmt.Fprintf(&b, "] %3d%%  %s tasks  %s/s", int(frac*100), fmtInt(done), fmtInt(int64(rate)))
	return b.String()
}
