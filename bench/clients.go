package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/zerotask/zerotask/internal/procs"
)

// runClients runs the phases from cfg.Clients client processes at once (`zerotask bench
// --broker EP --json`, started from cfg.Binary) against env's broker, and merges their reports
// into rep, phase by phase:
//
//   - sync and async: tasks and errors summed, in flight summed, elapsed the longest, latency
//     percentiles the worst client's (each client times its own calls);
//   - notify: every client counts the completions at the broker over its own window, which all
//     share, so the merged figure is the highest client's, not a sum;
//   - CPU: the clients' own CPU summed (role client); the broker's and nodes' over the whole run
//     (all phases), apportioned to no phase, are in rep.RunCPU.
func runClients(ctx context.Context, cfg Config, env *Env, rep *Report, phases []string, l Load) error {
	if cfg.Binary == "" {
		return errors.New("bench: several clients need the zerotask binary to start them from (EnvConfig.Binary)")
	}
	args := []string{"bench", "--broker", env.Endpoint, "--json", "--log-level", "error",
		"--phases", strings.Join(phases, ","), "--method", l.Method, "--params", string(l.Params),
		"--duration", l.Duration.String(), "--tasks", strconv.FormatInt(l.Tasks, 10),
		"--timeout", l.Timeout.String(), "--pipeline", l.Pipeline, "--senders", strconv.Itoa(l.Senders),
		"--notify-share", strconv.Itoa(cfg.Clients)}
	levels := cfg.InFlight
	if len(levels) == 0 {
		levels = []int{l.Concurrency}
	}
	conc := make([]string, len(levels))
	for i, c := range levels {
		conc[i] = strconv.Itoa(c)
	}
	args = append(args, "--concurrency", strings.Join(conc, ","))
	args = append(args, cfg.ClientArgs...)
	if cfg.Warmup < 0 {
		args = append(args, "--warmup", "0")
	} else if cfg.Warmup > 0 {
		args = append(args, "--warmup", strconv.Itoa(cfg.Warmup))
	}

	before := env.sampleCPU()
	outs := make([][]byte, cfg.Clients)
	errs := make([]error, cfg.Clients)
	var wg sync.WaitGroup
	for i := range cfg.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.CommandContext(ctx, cfg.Binary, args...)
			setChildAttrs(cmd)
			cmd.WaitDelay = childStopWait
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			// Started as the broker and nodes are: from a thread with every CPU (procs), or
			// they would take this process's one CPU as all they may use.
			err := procs.StartProcess(cmd.Start)
			if err == nil {
				err = cmd.Wait()
			}
			if err != nil {
				errs[i] = fmt.Errorf("bench: client %d: %w: %s", i+1, err, strings.TrimSpace(stderr.String()))
				return
			}
			outs[i] = stdout.Bytes()
		}()
	}
	wg.Wait()
	for _, c := range env.sampleCPU().since(before) {
		if c.Role != RoleClient { // this process only waited for the clients
			rep.RunCPU = append(rep.RunCPU, c)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	var reps []jsonReport
	for i, out := range outs {
		var r jsonReport
		if err := json.Unmarshal(out, &r); err != nil {
			return fmt.Errorf("bench: client %d's report: %w", i+1, err)
		}
		if len(reps) > 0 && len(r.Phases) != len(reps[0].Phases) {
			return fmt.Errorf("bench: client %d ran %d phases, client 1 %d", i+1, len(r.Phases), len(reps[0].Phases))
		}
		reps = append(reps, r)
	}
	rep.Clients = cfg.Clients
	for k := range reps[0].Phases {
		var m PhaseResult
		var clientCPU time.Duration
		for _, r := range reps {
			p := r.Phases[k]
			m.Name, m.Pipeline, m.Senders = p.Name, p.Pipeline, p.Senders
			el := time.Duration(p.ElapsedS * float64(time.Second))
			if p.Name == PhaseNotify {
				if p.Tasks > m.Tasks {
					m.Tasks, m.Elapsed = p.Tasks, el
				}
			} else {
				m.Tasks += p.Tasks
				m.Elapsed = max(m.Elapsed, el)
			}
			m.Errors += p.Errors
			m.Concurrency += p.Concurrency
			worst(&m.Latency.P50, p.P50us)
			worst(&m.Latency.P90, p.P90us)
			worst(&m.Latency.P99, p.P99us)
			worst(&m.Latency.P999, p.P999us)
			worst(&m.Latency.Max, p.MaxUs)
			worst(&m.Latency.Mean, p.MeanUs)
			clientCPU += time.Duration(p.CPUPerTaskUs[RoleClient] * float64(p.Tasks) * float64(time.Microsecond))
		}
		if clientCPU > 0 {
			m.CPU = []RoleCPU{{Role: RoleClient, CPU: clientCPU}}
		}
		rep.Phases = append(rep.Phases, m)
	}
	return nil
}

// worst raises *d to us microseconds if that is more.
func worst(d *time.Duration, us float64) {
	if v := time.Duration(us * float64(time.Microsecond)); v > *d {
		*d = v
	}
}
