package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/zerotask/zerotask/client"
	"github.com/zerotask/zerotask/protocol"
)

// `zerotask top`: a live terminal view of the broker's nodes, queues and rates. It asks the
// broker for broker.stats, broker.nodes and broker.queues every --interval, and redraws the
// screen in place (the terminal's alternate screen, so the shell's screen comes back on exit).
// It exits on q or Ctrl-C.

// topStats are the members of broker.stats that top shows.
type topStats struct {
	Broker    string `json:"broker"`
	Queued    uint64 `json:"queued"`
	Running   uint64 `json:"running"`
	Succeeded uint64 `json:"succeeded"`
	Failed    uint64 `json:"failed"`
	Retried   uint64 `json:"retried"`
	Revoked   uint64 `json:"revoked"`
	Expired   uint64 `json:"expired"`
	Nodes     uint64 `json:"nodes"`
	Clients   uint64 `json:"clients"`
}

type topQueue struct {
	Method    string `json:"method"`
	Queue     string `json:"queue"`
	Depth     int64  `json:"depth"`
	OldestMS  int64  `json:"oldest_ms"`
	Succeeded uint64 `json:"succeeded"`
	Failed    uint64 `json:"failed"`
	Done      uint64 `json:"done"`
}

// topFrame is what one refresh learned.
type topFrame struct {
	at     time.Time
	stats  topStats
	nodes  []nodeEntry
	queues []topQueue
	err    error
}

func runTop(ctx context.Context, io *stdio, args []string) error {
	fs := newFlagSet("top", "", "Show the broker's nodes, queues and rates in the terminal, redrawn in place every\n"+
		"--interval. Exits on q or Ctrl-C.").withLogLevel(slog.LevelError)
	cf := addClientFlags(fs, 5*time.Second)
	interval := fs.Duration("interval", time.Second, "time between refreshes")
	if err := parse(fs, io, args, 0, 0); err != nil {
		return err
	}
	if *interval < 10*time.Millisecond {
		return usagef("--interval must be at least 10ms, got %v", *interval)
	}
	_, cancel, c, err := cf.dial(ctx, fs.logger(io.err), 0)
	if err != nil {
		return err
	}
	cancel()
	defer c.Close()

	restore := rawTerminal(os.Stdin)
	defer restore()
	quit := make(chan struct{})
	go readQuit(os.Stdin, quit)

	out := bufio.NewWriter(io.out)
	fmt.Fprint(out, "\x1b[?1049h\x1b[?25l") // alternate screen, cursor hidden
	defer func() {
		fmt.Fprint(out, "\x1b[?25h\x1b[?1049l")
		_ = out.Flush()
	}()
	t := time.NewTicker(*interval)
	defer t.Stop()
	var prev *topFrame
	for {
		f := topFetch(ctx, c, *cf.timeout)
		cols, rows := terminalSize(os.Stdout)
		topDraw(out, *cf.broker, f, prev, cols, rows)
		if err := out.Flush(); err != nil {
			return err
		}
		if f.err == nil {
			prev = f
		}
		select {
		case <-ctx.Done():
			return nil
		case <-quit:
			return nil
		case <-t.C:
		}
	}
}

// readQuit closes quit when q, Q, Ctrl-C or Ctrl-D is typed, or the input ends.
func readQuit(in *os.File, quit chan<- struct{}) {
	defer close(quit)
	buf := make([]byte, 64)
	for {
		n, err := in.Read(buf)
		for _, b := range buf[:n] {
			switch b {
			case 'q', 'Q', 0x03, 0x04:
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// topFetch asks the broker for its counters, nodes and queues.
func topFetch(ctx context.Context, c *client.Client, timeout time.Duration) *topFrame {
	f := &topFrame{at: time.Now()}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for _, q := range []struct {
		method string
		into   any
	}{
		{protocol.MethodStats, &f.stats},
		{protocol.MethodNodes, &f.nodes},
		{protocol.MethodQueues, &f.queues},
	} {
		raw, err := c.CallRaw(ctx, nil, q.method, nil)
		if err == nil {
			err = json.Unmarshal(raw, q.into)
		}
		if err != nil {
			f.err = fmt.Errorf("%s: %w", q.method, err)
			return f
		}
	}
	sort.Slice(f.nodes, func(i, j int) bool { return f.nodes[i].Name < f.nodes[j].Name })
	return f
}

// topDraw writes one screen: a frame that failed keeps the last good figures below its error.
func topDraw(w *bufio.Writer, endpoint string, f, prev *topFrame, cols, rows int) {
	var lines []string
	add := func(format string, args ...any) { lines = append(lines, fmt.Sprintf(format, args...)) }
	show := f
	if f.err != nil && prev != nil {
		show = prev
	}
	add("zerotask top: broker %s at %s   %s   (q to quit)", show.stats.Broker, endpoint, f.at.Format("15:04:05"))
	if f.err != nil {
		add("! %v", f.err)
	}
	rate := func(now, before uint64) string {
		if prev == nil || f.err != nil || show.at.Sub(prev.at) <= 0 || now < before {
			return "-"
		}
		return strconv.FormatFloat(float64(now-before)/show.at.Sub(prev.at).Seconds(), 'f', 1, 64)
	}
	s := show.stats
	var ps topStats
	if prev != nil {
		ps = prev.stats
	}
	add("tasks   queued %d   running %d   succeeded %d (%s/s)   failed %d (%s/s)   retried %d   revoked %d   expired %d",
		s.Queued, s.Running, s.Succeeded, rate(s.Succeeded, ps.Succeeded), s.Failed, rate(s.Failed, ps.Failed), s.Retried, s.Revoked, s.Expired)
	add("peers   nodes %d   clients %d", s.Nodes, s.Clients)
	add("")
	add("NODES")
	add("%-24s %9s %7s  %-30s %s", "NAME", "RUN/CONC", "CREDIT", "METHODS", "QUEUES")
	for _, n := range show.nodes {
		add("%-24s %9s %7d  %-30s %s", n.Name, fmt.Sprintf("%d/%d", n.Running, n.Concurrency), n.Credit,
			strings.Join(n.Methods, ","), strings.Join(n.Queues, ","))
	}
	if len(show.nodes) == 0 {
		add("(no node connected)")
	}
	add("")
	add("QUEUES")
	add("%-20s %-12s %8s %9s %8s %8s %10s %8s", "METHOD", "QUEUE", "DEPTH", "OLDEST", "IN/s", "OUT/s", "SUCCEEDED", "FAILED")
	before := map[string]topQueue{}
	if prev != nil {
		for _, q := range prev.queues {
			before[q.Method+"\x00"+q.Queue] = q
		}
	}
	for _, q := range show.queues {
		in, out := "-", "-"
		if p, ok := before[q.Method+"\x00"+q.Queue]; ok && f.err == nil && show != prev {
			if dt := show.at.Sub(prev.at).Seconds(); dt > 0 && q.Done >= p.Done {
				done := float64(q.Done - p.Done)
				out = strconv.FormatFloat(done/dt, 'f', 1, 64)
				in = strconv.FormatFloat(max(0, done+float64(q.Depth-p.Depth))/dt, 'f', 1, 64)
			}
		}
		oldest := "-"
		if q.OldestMS > 0 {
			oldest = (time.Duration(q.OldestMS) * time.Millisecond).Round(time.Millisecond).String()
		}
		add("%-20s %-12s %8d %9s %8s %8s %10d %8d", q.Method, q.Queue, q.Depth, oldest, in, out, q.Succeeded, q.Failed)
	}
	w.WriteString("\x1b[H")
	for i, l := range lines {
		if i >= rows {
			break
		}
		if len(l) > cols {
			l = l[:cols]
		}
		w.WriteString(l)
		w.WriteString("\x1b[K\r\n")
	}
	w.WriteString("\x1b[J")
}
