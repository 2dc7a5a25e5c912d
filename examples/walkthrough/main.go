// Command walkthrough is the README's walkthrough as a Go program: a broker, a node and a
// client in one process, over tcp loopback.
//
//	go run ./examples/walkthrough
//
// It registers add and sleep, starts a broker on free ports and a node serving them, calls
// add(5, 6) and prints 11, then submits a sleep task and prints the states its handle goes
// through until the task is done: QUEUED, RUNNING, SUCCESS (or FAILURE, when it fails).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/zerotask/zerotask/broker"
	"github.com/zerotask/zerotask/client"
	"github.com/zerotask/zerotask/dispatch"
	"github.com/zerotask/zerotask/node"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := run(ctx, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "walkthrough:", err)
		os.Exit(1)
	}
}

// run is the whole walkthrough; it writes what it sees to out.
func run(ctx context.Context, out io.Writer) error { return walk(ctx, out, 300) }

// walk is the walkthrough with a sleep of sleepMS milliseconds (a negative one fails).
func walk(ctx context.Context, out io.Writer, sleepMS int) (err error) {
	quiet := slog.New(slog.DiscardHandler)

	// Register the tasks on a dispatcher (the node's task table).
	tasks := dispatch.New()
	if err := tasks.Register("add", dispatch.Pure2(func(a, b int) int { return a + b })); err != nil {
		return err
	}
	if err := tasks.Register("sleep", dispatch.Func1(func(ctx context.Context, ms int) (int, error) {
		if ms < 0 {
			return 0, fmt.Errorf("cannot sleep %d ms: %w", ms, dispatch.ErrSkipRetry)
		}
		select {
		case <-time.After(time.Duration(ms) * time.Millisecond):
			return ms, nil
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	})); err != nil {
		return err
	}

	// A broker on free loopback ports (the defaults are :5555 and :5556).
	b, err := broker.New(broker.Config{Listen: "tcp://127.0.0.1:0", Pub: "tcp://127.0.0.1:0", Logger: quiet})
	if err != nil {
		return err
	}
	serveCtx, stopBroker := context.WithCancel(context.WithoutCancel(ctx))
	served := make(chan error, 1)
	go func() { served <- b.Serve(serveCtx) }()
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if serr := b.Shutdown(sctx); serr != nil && !errors.Is(serr, broker.ErrServerClosed) {
			err = errors.Join(err, serr)
		}
		stopBroker()
		if serr := <-served; serr != nil && !errors.Is(serr, broker.ErrServerClosed) && !errors.Is(serr, context.Canceled) {
			err = errors.Join(err, serr)
		}
	}()

	// A node serving the tasks. It connects to the broker (it binds nothing).
	n, err := node.New(node.Config{Broker: b.Addr(), Sub: b.PubAddr(), Dispatcher: tasks, Concurrency: 2, Logger: quiet})
	if err != nil {
		return err
	}
	nodeCtx, stopNode := context.WithCancel(context.WithoutCancel(ctx))
	ran := make(chan error, 1)
	go func() { ran <- n.Serve(nodeCtx) }()
	defer func() { // runs before the broker's shutdown: the node leaves first
		stopNode()
		if nerr := <-ran; !errors.Is(nerr, node.ErrServerClosed) {
			err = errors.Join(err, nerr)
		}
	}()

	// A client: the blocking call.
	c, err := client.Dial(ctx, b.Addr(), client.WithLogger(quiet))
	if err != nil {
		return err
	}
	defer c.Close()
	var sum int
	if err := c.Call(ctx, "add", &sum, 5, 6); err != nil {
		return fmt.Errorf("add: %w", err)
	}
	fmt.Fprintln(out, "add(5, 6) =", sum)

	// The async handle: print its state as it changes, until the task is done, however it
	// ends (SUCCESS, or FAILURE, REVOKED, EXPIRED).
	h, err := c.Submit(ctx, "sleep", []any{sleepMS})
	if err != nil {
		return fmt.Errorf("submit: %w", err)
	}
	done := h.Done() // closed once the task is finished
	last := client.State("")
	for !last.Done() {
		st, err := h.Status(ctx)
		if err != nil {
			return fmt.Errorf("status: %w", err)
		}
		if st != last {
			fmt.Fprintln(out, "sleep task:", st)
			last = st
		}
		select { // a demo's polling interval, to show the states; Wait alone would just block
		case <-done:
		case <-time.After(5 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	var slept int
	if err := h.Wait(ctx, &slept); err != nil {
		return fmt.Errorf("sleep task: %w", err)
	}
	fmt.Fprintln(out, "sleep returned", slept)
	return nil
}
