package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"github.com/zerotask/zerotask/client"
	"github.com/zerotask/zerotask/codec"
	"github.com/zerotask/zerotask/protocol"
)

// clientFlags are the flags every client command shares.
type clientFlags struct {
	broker  *string
	timeout *time.Duration
	sec     *peerSecFlags
}

func addClientFlags(fs *flagSet, timeout time.Duration) *clientFlags {
	return &clientFlags{
		broker:  brokerFlag(fs),
		timeout: fs.Duration("timeout", timeout, "give up after this long (connecting included)"),
		sec:     addPeerSecFlags(fs),
	}
}

// dial connects to the broker with the command's timeout; the returned cancel ends that
// timeout's context and must be called, after the client is closed.
func (f *clientFlags) dial(ctx context.Context, log *slog.Logger, extra time.Duration) (context.Context, context.CancelFunc, *client.Client, error) {
	if *f.timeout <= 0 {
		return nil, nil, nil, usagef("--timeout must be positive, got %v", *f.timeout)
	}
	opts := []client.Option{client.WithLogger(log)}
	server, own, ok, err := f.sec.keys()
	if err != nil {
		return nil, nil, nil, err
	}
	if ok {
		opts = append(opts, client.WithCurve(server, own))
	}
	ctx, cancel := context.WithTimeout(ctx, *f.timeout+extra)
	c, err := client.Dial(ctx, *f.broker, opts...)
	if err != nil {
		cancel()
		return nil, nil, nil, fmt.Errorf("connect to %s: %w", *f.broker, err)
	}
	return ctx, cancel, c, nil
}

// callRaw runs one call and prints its raw JSON result on stdout. A JSON-RPC error is printed on
// stderr as its JSON error object and ends the command with exit status 1.
func callRaw(ctx context.Context, io *stdio, c *client.Client, method string, params []byte) ([]byte, error) {
	res, err := c.CallRaw(ctx, nil, method, params)
	if err != nil {
		return nil, reportErr(io, err)
	}
	return res, nil
}

// whyNoResult says why a call of method may have got no result in time, from what broker.nodes
// says: nobody serves it (it waits in its queue), or nodes serve it (it waits behind other
// tasks, or its handler is slow).
func whyNoResult(c *client.Client, method string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var nodes []struct {
		Methods []string `json:"methods"`
	}
	if err := c.Call(ctx, protocol.MethodNodes, &nodes); err != nil {
		return "`zerotask call broker.nodes` lists what is served"
	}
	serving := 0
	for _, n := range nodes {
		if slices.Contains(n.Methods, method) {
			serving++
		}
	}
	if serving == 0 {
		return fmt.Sprintf("no node serves %q: the task waits in its queue; `zerotask call broker.nodes` lists what is served", method)
	}
	return fmt.Sprintf("%d node(s) serve %q: the task waits behind others or still runs", serving, method)
}

// reportErr prints a remote (JSON-RPC) error as its error object on stderr and returns an
// exitError; other errors are returned for run to print.
func reportErr(io *stdio, err error) error {
	var rpcErr *codec.Error
	if !errors.As(err, &rpcErr) {
		return err
	}
	obj := struct {
		Code    int             `json:"code"`
		Message string          `json:"message"`
		Data    json.RawMessage `json:"data,omitempty"`
	}{rpcErr.Code, rpcErr.Message, json.RawMessage(rpcErr.Data)}
	b, merr := json.Marshal(obj)
	if merr != nil { // invalid raw data: print it as a string
		obj.Data, _ = json.Marshal(string(rpcErr.Data))
		b, _ = json.Marshal(obj)
	}
	fmt.Fprintf(io.err, "%s\n", b)
	return &exitError{code: exitFailure}
}

// printJSON writes raw JSON on stdout followed by a newline.
func printJSON(io *stdio, raw []byte) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		raw = []byte("null")
	}
	fmt.Fprintf(io.out, "%s\n", raw)
}

func runCall(ctx context.Context, io *stdio, args []string) error {
	fs := newFlagSet("call", "METHOD [ARG...]", "Call a task and wait for it: its result is printed on stdout as JSON, a JSON-RPC\n"+
		"error on stderr (exit status 1). Each ARG is a JSON value; a bare word that is not valid JSON is\n"+
		"a string. `zerotask call add 5 6` prints 11.").withLogLevel(slog.LevelWarn)
	cf := addClientFlags(fs, 30*time.Second)
	rawParams := fs.String("params", "", `raw JSON params (an array or an object, e.g. '{"a":5,"b":6}') instead of ARGs`)
	if err := parse(fs, io, args, 1, -1); err != nil {
		return err
	}
	params, err := paramsOf(fs.Args()[1:], *rawParams)
	if err != nil {
		return err
	}
	ctx, cancel, c, err := cf.dial(ctx, fs.logger(io.err), 0)
	if err != nil {
		return err
	}
	defer cancel()
	defer c.Close()
	res, err := callRaw(ctx, io, c, fs.Arg(0), params)
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("no result within %v (%s): %w", *cf.timeout, whyNoResult(c, fs.Arg(0)), err)
	}
	if err != nil {
		return err
	}
	printJSON(io, res)
	return nil
}

func runSubmit(ctx context.Context, io *stdio, args []string) error {
	fs := newFlagSet("submit", "METHOD [ARG...]", "Queue a task and print its id at once; follow it with `zerotask status ID` and\n"+
		"`zerotask result ID`. ARGs as for `zerotask call`.").withLogLevel(slog.LevelWarn)
	cf := addClientFlags(fs, 10*time.Second)
	rawParams := fs.String("params", "", "raw JSON params (an array or an object) instead of ARGs")
	if err := parse(fs, io, args, 1, -1); err != nil {
		return err
	}
	params, err := paramsOf(fs.Args()[1:], *rawParams)
	if err != nil {
		return err
	}
	// broker.submit takes the params raw, so objects and arrays pass through as given.
	req := []byte(`{"method":`)
	req = codec.AppendString(req, fs.Arg(0))
	if params != nil {
		req = append(append(req, `,"params":`...), params...)
	}
	req = append(req, '}')
	ctx, cancel, c, err := cf.dial(ctx, fs.logger(io.err), 0)
	if err != nil {
		return err
	}
	defer cancel()
	defer c.Close()
	res, err := callRaw(ctx, io, c, protocol.MethodSubmit, req)
	if err != nil {
		return err
	}
	var ack struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(res, &ack); err != nil || ack.ID == "" {
		return fmt.Errorf("unexpected broker.submit answer %s", res)
	}
	fmt.Fprintln(io.out, ack.ID)
	return nil
}

func runStatus(ctx context.Context, io *stdio, args []string) error {
	fs := newFlagSet("status", "ID", "Print a task's record as JSON: its state (QUEUED, RUNNING, SUCCESS, FAILURE, RETRY,\n"+
		"REVOKED, EXPIRED, or UNKNOWN for an id the broker never saw or has forgotten), attempts, node,\n"+
		"and its result or error once finished.").withLogLevel(slog.LevelWarn)
	cf := addClientFlags(fs, 10*time.Second)
	if err := parse(fs, io, args, 1, 1); err != nil {
		return err
	}
	ctx, cancel, c, err := cf.dial(ctx, fs.logger(io.err), 0)
	if err != nil {
		return err
	}
	defer cancel()
	defer c.Close()
	req := codec.AppendString([]byte(`{"`+protocol.ParamID+`":`), fs.Arg(0))
	res, err := callRaw(ctx, io, c, protocol.MethodStatus, append(req, '}'))
	if err != nil {
		return err
	}
	printJSON(io, res)
	return nil
}

func runResult(ctx context.Context, io *stdio, args []string) error {
	fs := newFlagSet("result", "ID", "Print a task's record as JSON once it is finished, or when --wait has passed (then\n"+
		"the record shows the task still QUEUED or RUNNING). The exit status is 0 whenever a record is\nprinted, whatever its state.").
		withLogLevel(slog.LevelWarn)
	cf := addClientFlags(fs, 10*time.Second)
	wait := fs.Duration("wait", 0, "how long the broker may hold the answer until the task is finished (0 = answer at once)")
	if err := parse(fs, io, args, 1, 1); err != nil {
		return err
	}
	if *wait < 0 {
		return usagef("--wait must not be negative, got %v", *wait)
	}
	ctx, cancel, c, err := cf.dial(ctx, fs.logger(io.err), *wait) // --timeout counts on top of --wait
	if err != nil {
		return err
	}
	defer cancel()
	defer c.Close()
	req := codec.AppendString([]byte(`{"`+protocol.ParamID+`":`), fs.Arg(0))
	req = strconv.AppendInt(protocol.AppendMember(req, protocol.ParamWaitMS), wait.Milliseconds(), 10)
	res, err := callRaw(ctx, io, c, protocol.MethodResult, append(req, '}'))
	if err != nil {
		return err
	}
	printJSON(io, res)
	return nil
}
