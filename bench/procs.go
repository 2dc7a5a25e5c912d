package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/zerotask/zerotask/internal/procs"
	"github.com/zerotask/zerotask/protocol"
)

// Roles of the processes a benchmark measures.
const (
	RoleBroker = "broker"
	RoleNode   = "node"
	RoleClient = "client" // this process: the client and the load generator
	RoleAll    = "all"    // this process, running broker, nodes and client (in-process topology)
)

// Topologies a Report names.
const (
	TopologyProcesses = "processes"  // broker and nodes as child processes of the bench
	TopologyInProcess = "in-process" // broker, nodes and client in one process
	TopologyExternal  = "external"   // a broker (and nodes) the bench did not start
)

// childStopWait bounds how long a child may take to stop after SIGTERM before it is killed.
const childStopWait = 10 * time.Second

// maxChildStderr bounds the stderr kept from a child (for error messages).
const maxChildStderr = 16 << 10

var (
	brokerReady = regexp.MustCompile(`^broker listening on (tcp://\S+) \(PUB (tcp://\S+|none)\)`)
	nodeReady   = regexp.MustCompile(`^node serving `)
)

// child is a process the bench started (a broker or a node of the same binary). It is stopped
// by PID with SIGTERM, then SIGKILL after childStopWait.
type child struct {
	role string
	cmd  *exec.Cmd

	mu     sync.Mutex
	lines  chan string // stdout lines until the ready line is seen
	stderr bytes.Buffer
	done   chan struct{} // closed when the process has exited and been waited for
	err    error         // what Wait returned
}

// startChild starts bin with args and waits (bounded by ctx) for a stdout line matching ready;
// it returns the line's submatches.
func startChild(ctx context.Context, role, bin string, ready *regexp.Regexp, args ...string) (*child, []string, error) {
	cmd := exec.Command(bin, args...)
	setChildAttrs(cmd)
	c := &child{role: role, cmd: cmd, lines: make(chan string, 16), done: make(chan struct{})}
	cmd.Stderr = stderrSink{c}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, fmt.Errorf("bench: %s: %w", role, err)
	}
	if err := procs.StartProcess(cmd.Start); err != nil {
		return nil, nil, fmt.Errorf("bench: start %s (%s): %w", role, bin, err)
	}
	go c.read(out)
	for {
		select {
		case line, ok := <-c.lines:
			if !ok {
				<-c.done
				return c, nil, fmt.Errorf("bench: %s exited before it was ready (%v): %s", role, c.err, c.stderrText())
			}
			if m := ready.FindStringSubmatch(line); m != nil {
				return c, m, nil
			}
		case <-ctx.Done():
			return c, nil, fmt.Errorf("bench: %s not ready: %w: %s", role, ctx.Err(), c.stderrText())
		}
	}
}

// read passes stdout lines to lines until it is full (after the ready line nobody reads it),
// then drains the rest, and waits for the process.
func (c *child) read(out io.Reader) {
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		select {
		case c.lines <- sc.Text():
		default: // nobody waits for lines any more
		}
	}
	close(c.lines)
	err := c.cmd.Wait()
	c.mu.Lock()
	c.err = err
	c.mu.Unlock()
	close(c.done)
}

type stderrSink struct{ c *child }

func (s stderrSink) Write(b []byte) (int, error) {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	if room := maxChildStderr - s.c.stderr.Len(); room > 0 {
		s.c.stderr.Write(b[:min(len(b), room)])
	}
	return len(b), nil
}

func (c *child) stderrText() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.TrimSpace(c.stderr.String())
}

// pid returns the child's process id.
func (c *child) pid() int { return c.cmd.Process.Pid }

// exited reports whether the child has ended.
func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// stop asks the child to stop (SIGTERM, by PID), waits up to childStopWait, then kills it. It
// returns an error if the child had to be killed or exited with a failure.
func (c *child) stop() error {
	if c.exited() {
		return c.exitErr("had exited")
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(childStopWait)
	defer t.Stop()
	select {
	case <-c.done:
		return c.exitErr("stopped")
	case <-t.C:
		_ = c.cmd.Process.Kill()
		<-c.done
		return fmt.Errorf("bench: %s (pid %d) did not stop within %v of SIGTERM: killed", c.role, c.pid(), childStopWait)
	}
}

func (c *child) exitErr(how string) error {
	c.mu.Lock()
	err := c.err
	c.mu.Unlock()
	if err == nil {
		return nil
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.Exited() && ee.ExitCode() == 0 {
		return nil
	}
	return fmt.Errorf("bench: %s (pid %d) %s: %w: %s", c.role, c.pid(), how, err, c.stderrText())
}

// startProcesses starts cfg.Binary's broker and nodes as child processes, with their default
// flags unless cfg says otherwise, and sets e.Endpoint.
func (e *Env) startProcesses(ctx context.Context, cfg EnvConfig) error {
	nodes := cfg.Nodes
	if nodes <= 0 {
		nodes = DefaultNodes
	}
	wait := cfg.StartupTimeout
	if wait <= 0 {
		wait = DefaultStartupMax
	}
	sctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	bargs := []string{"broker", "--listen", "tcp://127.0.0.1:0", "--pub", "tcp://127.0.0.1:0", "--log-level", "warn"}
	if cfg.Store != "" && cfg.Store != "memory://" {
		bargs = append(bargs, "--store", cfg.Store)
	}
	if e.curve != nil {
		if err := e.curve.writeFiles(); err != nil {
			return err
		}
		bargs = append(bargs, e.curve.brokerArgs()...)
	}
	b, m, err := startChild(sctx, RoleBroker, cfg.Binary, brokerReady, append(bargs, cfg.BrokerArgs...)...)
	if b != nil {
		e.children = append(e.children, b)
	}
	if err != nil {
		return err
	}
	e.Endpoint = m[1]
	nargs := []string{"node", "--broker", m[1], "--sub", m[2], "--log-level", "warn"}
	if cfg.NodeConcurrency > 0 {
		nargs = append(nargs, "--concurrency", strconv.Itoa(cfg.NodeConcurrency))
	}
	if cfg.NodePrefetch > 0 {
		nargs = append(nargs, "--prefetch", strconv.Itoa(cfg.NodePrefetch))
	}
	if cfg.NodeFixedCredit {
		nargs = append(nargs, "--fixed-credit")
	}
	if e.curve != nil {
		nargs = append(nargs, e.curve.nodeArgs()...)
	}
	nargs = append(nargs, cfg.NodeArgs...)
	for i := range nodes {
		n, _, err := startChild(sctx, RoleNode, cfg.Binary, nodeReady, append(nargs, "--name", fmt.Sprintf("bench-node-%d", i+1))...)
		if n != nil {
			e.children = append(e.children, n)
		}
		if err != nil {
			return err
		}
	}
	e.NodeConcurrency, e.NodePrefetch = cfg.NodeConcurrency, max(cfg.NodePrefetch, 0)
	e.wantNodes = nodes
	return nil
}

// waitProcessNodes polls the broker (broker.nodes) until n nodes are connected.
func (e *Env) waitProcessNodes(ctx context.Context, n int, wait time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for {
		raw, err := e.Client.CallRaw(ctx, nil, protocol.MethodNodes, nil)
		if err == nil && bytes.Count(raw, []byte(`"methods"`)) >= n {
			return nil
		}
		t := time.NewTimer(5 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("bench: %d node process(es) not connected to the broker after %v: %w", n, wait, ctx.Err())
		case <-t.C:
		}
	}
}

// stopChildren stops the nodes first (they hand their tasks back), then the broker.
func (e *Env) stopChildren() error {
	var errs []error
	for i := len(e.children) - 1; i >= 0; i-- {
		if err := e.children[i].stop(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Proc is one process of the measured system.
type Proc struct {
	Role string // RoleBroker, RoleNode, RoleClient or RoleAll
	PID  int
	// PeakRSS is the most resident memory the process used, in bytes (0: unknown).
	PeakRSS int64
}

// Procs returns the processes of the system under load: the broker and node children, and this
// process (the client; everything for the in-process topology). An external broker's processes
// are not known.
func (e *Env) Procs() []Proc {
	self := RoleClient
	if e.Broker != nil {
		self = RoleAll
	}
	ps := make([]Proc, 0, len(e.children)+1)
	for _, c := range e.children {
		ps = append(ps, Proc{Role: c.role, PID: c.pid(), PeakRSS: peakRSS(c.pid())})
	}
	return append(ps, Proc{Role: self, PID: os.Getpid(), PeakRSS: peakRSS(os.Getpid())})
}

// cpuSample is the CPU time used so far by each process of the system, by role.
type cpuSample map[string]time.Duration

// sampleCPU reads the CPU time (user + system) of the children and of this process, summed by
// role. Processes whose figures cannot be read are left out.
func (e *Env) sampleCPU() cpuSample {
	s := cpuSample{}
	self := RoleClient
	if e.Broker != nil {
		self = RoleAll
	}
	if d, err := cpuTime(os.Getpid()); err == nil {
		s[self] += d
	}
	for _, c := range e.children {
		if d, err := cpuTime(c.pid()); err == nil {
			s[c.role] += d
		}
	}
	return s
}

// RoleCPU is the CPU time one role (all its processes) used during a phase.
type RoleCPU struct {
	Role string
	CPU  time.Duration
}

// cpuSince returns the CPU each role used since before, in a fixed role order.
func (s cpuSample) since(before cpuSample) []RoleCPU {
	var out []RoleCPU
	for _, r := range []string{RoleBroker, RoleNode, RoleClient, RoleAll} {
		a, ok := s[r]
		b, okb := before[r]
		if ok && okb {
			out = append(out, RoleCPU{Role: r, CPU: a - b})
		}
	}
	return out
}
