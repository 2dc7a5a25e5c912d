package main

import (
	"bytes"
	"cmp"
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
	json    *bool
}

// addClientFlags adds the shared client flags to fs. timeout is the default of --timeout; 0
// adds no --timeout flag (the command defines its own meaning for it) and bounds the command
// by defaultCommandTimeout.
func addClientFlags(fs *flagSet, timeout time.Duration) *clientFlags {
	cf := &clientFlags{broker: brokerFlag(fs)}
	if timeout > 0 {
		cf.timeout = fs.Duration("timeout", timeout, "give up after this long (connecting included)")
	} else {
		d := defaultCommandTimeout
		cf.timeout = &d
	}
	cf.sec = addPeerSecFlags(fs)
	cf.json = fs.Bool("json", false, "print JSON (one value per line) even on a terminal, where tables are the default")
	return cf
}

// defaultCommandTimeout bounds a client command that has no --timeout of its own.
const defaultCommandTimeout = 10 * time.Second

// newClientCommand is the flag set of a one-shot client command: the shared client flags,
// --timeout defaulting to defaultCommandTimeout, and warnings and errors logged.
func newClientCommand(name, args, summary string) (*flagSet, *clientFlags) {
	fs := newFlagSet(name, args, summary).withLogLevel(slog.LevelWarn)
	return fs, addClientFlags(fs, defaultCommandTimeout)
}

// brokerTrouble is an error reaching the broker, or waiting for it past the command's
// timeout: exit status exitBroker.
type brokerTrouble struct{ err error }

func (e *brokerTrouble) Error() string { return e.err.Error() }
func (e *brokerTrouble) Unwrap() error { return e.err }

// dial connects to the broker with the command's timeout; the returned cancel ends that
// timeout's context and must be called, after the client is closed.
func (f *clientFlags) dial(ctx context.Context, log *slog.Logger, extra time.Duration) (context.Context, context.CancelFunc, *client.Client, error) {
	if *f.timeout <= 0 {
		return nil, nil, nil, usagef("--timeout must be positive, got %v", *f.timeout)
	}
	opts := []client.Option{client.WithLogger(log)}
	sec, err := f.sec.clientOptions()
	if err != nil {
		return nil, nil, nil, err
	}
	opts = append(opts, sec...)
	ctx, cancel := context.WithTimeout(ctx, *f.timeout+extra)
	c, err := client.Dial(ctx, *f.broker, opts...)
	if err != nil {
		cancel()
		return nil, nil, nil, &brokerTrouble{fmt.Errorf("connect to %s: %w", *f.broker, err)}
	}
	return ctx, cancel, c, nil
}

// connect dials the broker as dial does, logging to the command's stderr; hangUp closes the
// client and ends the timeout's context.
func (f *clientFlags) connect(ctx context.Context, io *stdio, fs *flagSet, extra time.Duration) (_ context.Context, _ *client.Client, hangUp func(), _ error) {
	ctx, cancel, c, err := f.dial(ctx, fs.logger(io.err), extra)
	if err != nil {
		return nil, nil, nil, err
	}
	return ctx, c, func() { c.Close(); cancel() }, nil
}

// tables reports whether the command prints human tables: on a terminal, unless --json.
func (f *clientFlags) tables(io *stdio) bool { return io.outTTY && !*f.json }

// callOnce dials the broker with cf, makes one call and hangs up: what every one-shot
// command (status, stats, nodes, pause, resume) does once its flags are parsed.
func callOnce(ctx context.Context, io *stdio, fs *flagSet, cf *clientFlags, method string, params []byte) ([]byte, error) {
	ctx, c, hangUp, err := cf.connect(ctx, io, fs, 0)
	if err != nil {
		return nil, err
	}
	defer hangUp()
	return callRaw(ctx, io, c, method, params)
}

// stringParam returns the params object {"member": value}, the value JSON-escaped.
func stringParam(member, value string) []byte {
	return append(codec.AppendString([]byte(`{"`+member+`":`), value), '}')
}

// callRaw runs one call and returns its raw JSON result. A JSON-RPC error is printed on stderr
// as its JSON error object and ends the command with exit status 1; a lost connection or the
// command's timeout ends it with exit status 4.
func callRaw(ctx context.Context, io *stdio, c *client.Client, method string, params []byte) ([]byte, error) {
	res, err := c.CallRaw(ctx, nil, method, params)
	if err != nil {
		return nil, classify(io, err)
	}
	return res, nil
}

// classify turns a call's error into the command's: a JSON-RPC error is reported (exit 1),
// trouble with the broker becomes a brokerTrouble (exit 4), the rest is returned as is.
func classify(io *stdio, err error) error {
	if errors.Is(err, client.ErrBadOption) {
		return usagef("%v", err)
	}
	if isBrokerTrouble(err) {
		return &brokerTrouble{err}
	}
	return reportErr(io, err)
}

// isBrokerTrouble reports whether err means the broker could not be reached or did not answer
// in time.
func isBrokerTrouble(err error) bool {
	var bt *brokerTrouble
	return errors.As(err, &bt) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, client.ErrConnectionLost) || errors.Is(err, client.ErrClosed)
}

// servingNodes returns how many connected nodes serve method from queue (broker.nodes).
func servingNodes(ctx context.Context, c *client.Client, method, queue string) (int, error) {
	var nodes []nodeEntry
	if err := c.Call(ctx, protocol.MethodNodes, &nodes); err != nil {
		return 0, err
	}
	if queue == "" {
		queue = protocol.DefaultQueue
	}
	n := 0
	for _, nd := range nodes {
		qs := nd.Queues
		if len(qs) == 0 {
			qs = []string{protocol.DefaultQueue}
		}
		if slices.Contains(nd.Methods, method) && slices.Contains(qs, queue) {
			n++
		}
	}
	return n, nil
}

// whyNoResult says why a call of method may have got no result in time: nobody serves it (it
// waits in its queue), or nodes serve it (it waits behind other tasks, or its handler is slow).
func whyNoResult(c *client.Client, method, queue string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	n, err := servingNodes(ctx, c, method, queue)
	switch {
	case err != nil:
		return "`zerotask nodes` lists what is served"
	case n == 0:
		return fmt.Sprintf("no node serves %q: the task waits in its queue; `zerotask nodes` lists what is served", method)
	}
	return fmt.Sprintf("%d node(s) serve %q: the task waits behind others or still runs", n, method)
}

// reportErr prints a remote (JSON-RPC) error as its error object on stderr and returns an
// exitError; other errors are returned for run to print.
func reportErr(io *stdio, err error) error {
	var rpcErr *codec.Error
	if !errors.As(err, &rpcErr) {
		return err
	}
	fmt.Fprintf(io.err, "%s\n", errorJSON(rpcErr))
	return &exitError{code: exitFailure}
}

// errorJSON returns a JSON-RPC error object as JSON.
func errorJSON(e *codec.Error) []byte {
	obj := struct {
		Code    int             `json:"code"`
		Message string          `json:"message"`
		Data    json.RawMessage `json:"data,omitempty"`
	}{e.Code, e.Message, json.RawMessage(e.Data)}
	b, err := json.Marshal(obj)
	if err != nil { // invalid raw data: print it as a string
		obj.Data, _ = json.Marshal(string(e.Data))
		b, _ = json.Marshal(obj)
	}
	return b
}

// printJSON writes raw JSON on stdout followed by a newline.
func printJSON(io *stdio, raw []byte) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		raw = []byte("null")
	}
	fmt.Fprintf(io.out, "%s\n", raw)
}

// taskFlags are the task options of call and submit.
type taskFlags struct {
	queue       *string
	priority    *int
	delay       *time.Duration
	eta         *string
	key         *string
	maxAttempts *int
	backoff     *time.Duration
	maxBackoff  *time.Duration
	timeout     *time.Duration // submit only: the task's deadline (call's is its --timeout)
	meta        *string
}

func addTaskFlags(fs *flagSet, submit bool) *taskFlags {
	tf := &taskFlags{
		queue:       fs.String("queue", "", "the `queue` the task goes to (default \""+protocol.DefaultQueue+"\")"),
		priority:    fs.Int("priority", 0, fmt.Sprintf("the task's priority in its queue, 0 to %d, higher first", protocol.MaxPriority)),
		delay:       fs.Duration("delay", 0, "hold the task back this long before it is queued"),
		eta:         fs.String("eta", "", "hold the task back until this `time` (RFC 3339, e.g. 2026-12-24T18:00:00Z)"),
		key:         fs.String("key", "", "an idempotency `key`: while the broker knows a task of that key, the same key gets that task"),
		maxAttempts: fs.Int("max-attempts", 0, fmt.Sprintf("hand the task to a node at most this many times, 1 to %d (default: the broker's)", protocol.MaxAttemptsCap)),
		backoff:     fs.Duration("backoff", 0, "the first retry delay, doubled per attempt (default: the broker's)"),
		maxBackoff:  fs.Duration("max-backoff", 0, "the longest retry delay, with --backoff (default: the larger of --backoff and "+protocol.DefaultMaxRetryBackoff.String()+")"),
		meta:        fs.String("meta", "", fmt.Sprintf("the task's meta, a JSON `object` of at most %d bytes carried as it is to the handler and into the record (a W3C traceparent, user fields)", protocol.MaxMetaLen)),
	}
	if submit {
		tf.timeout = fs.Duration("timeout", 0, "the task's deadline from now: still queued then, it expires; running then, its handler's context ends (0 = none)")
	}
	return tf
}

// options returns the client options of the flags given; a value out of range is a usage error.
// request reads the ARGs after METHOD (or rawParams) and the task options of a call or submit.
func (tf *taskFlags) request(fs *flagSet, rawParams string) ([]any, []client.TaskOption, error) {
	args, err := argsOf(fs.Args()[1:], rawParams)
	if err != nil {
		return nil, nil, err
	}
	opts, err := tf.options(fs)
	return args, opts, err
}

func (tf *taskFlags) options(fs *flagSet) ([]client.TaskOption, error) {
	var opts []client.TaskOption
	if fs.set("queue") {
		opts = append(opts, client.Queue(*tf.queue))
	}
	if fs.set("priority") {
		opts = append(opts, client.Priority(*tf.priority))
	}
	if fs.set("delay") {
		opts = append(opts, client.Delay(*tf.delay))
	}
	if fs.set("eta") {
		t, err := time.Parse(time.RFC3339, *tf.eta)
		if err != nil {
			return nil, usagef("--eta must be an RFC 3339 time (2026-12-24T18:00:00Z), got %q", *tf.eta)
		}
		opts = append(opts, client.ETA(t))
	}
	if fs.set("max-attempts") {
		opts = append(opts, client.MaxAttempts(*tf.maxAttempts))
	}
	if fs.set("backoff") || fs.set("max-backoff") {
		maxB := *tf.maxBackoff
		if !fs.set("max-backoff") {
			maxB = max(*tf.backoff, protocol.DefaultMaxRetryBackoff)
		}
		base := *tf.backoff
		if !fs.set("backoff") {
			base = min(protocol.DefaultRetryBackoff, maxB)
		}
		opts = append(opts, client.Backoff(base, maxB))
	}
	if tf.timeout != nil && fs.set("timeout") {
		opts = append(opts, client.Timeout(*tf.timeout))
	}
	if fs.set("meta") {
		m := []byte(*tf.meta)
		if len(m) > protocol.MaxMetaLen || !json.Valid(m) || len(m) < 2 || m[0] != '{' {
			return nil, usagef("--meta must be a JSON object of at most %d bytes, got %q", protocol.MaxMetaLen, *tf.meta)
		}
		opts = append(opts, client.Meta(m))
	}
	return opts, nil
}

// submitOptions returns the options of submit (the task options and the key).
func (tf *taskFlags) submitOptions(fs *flagSet, opts []client.TaskOption) []client.SubmitOption {
	so := make([]client.SubmitOption, 0, len(opts)+1)
	for _, o := range opts {
		so = append(so, o)
	}
	if fs.set("key") {
		so = append(so, client.Key(*tf.key))
	}
	return so
}

// argsOf returns the call arguments for the positional ARGs or --params (see paramsOf), as
// the client takes them.
func argsOf(args []string, raw string) ([]any, error) {
	params, err := paramsOf(args, raw)
	if err != nil || params == nil {
		return nil, err
	}
	if params[0] == '{' {
		return []any{client.Named(json.RawMessage(params))}, nil
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(params, &elems); err != nil {
		return nil, usagef("--params: %v", err)
	}
	out := make([]any, len(elems))
	for i, e := range elems {
		out[i] = e
	}
	return out, nil
}

func runCall(ctx context.Context, io *stdio, args []string) error {
	fs := newFlagSet("call", "METHOD [ARG...]", "Call a task and wait for it: its result is printed on stdout as JSON, a JSON-RPC\n"+
		"error on stderr (exit status 1). Each ARG is a JSON value; a bare word that is not valid JSON is\n"+
		"a string. `zerotask call add 5 6` prints 11. Flags may follow the ARGs; after `--` every\n"+
		"word is an ARG. When no node serves METHOD the call is not sent (exit status 4), unless\n"+
		"--wait-for-node is given: then the task waits in its queue for a node, up to --timeout.").withLogLevel(slog.LevelWarn)
	cf := addClientFlags(fs, 30*time.Second)
	tf := addTaskFlags(fs, false)
	rawParams := fs.String("params", "", `raw JSON params (an array or an object, e.g. '{"a":5,"b":6}') instead of ARGs`)
	waitNode := fs.Bool("wait-for-node", false, "send the call even when no node serves METHOD yet, and wait for one")
	if err := parse(fs, io, args, 1, -1); err != nil {
		return err
	}
	method := fs.Arg(0)
	callArgs, opts, err := tf.request(fs, *rawParams)
	if err != nil {
		return err
	}
	task := !protocol.IsBrokerMethod(method) && !codec.IsReservedName(method)
	if !task && (len(opts) > 0 || fs.set("key")) {
		return usagef("task options apply to task methods, not to %s", method)
	}
	ctx, c, hangUp, err := cf.connect(ctx, io, fs, 0)
	if err != nil {
		return err
	}
	defer hangUp()
	if task {
		n, err := servingNodes(ctx, c, method, *tf.queue)
		if err != nil {
			return classify(io, err)
		}
		if n == 0 {
			q := cmp.Or(*tf.queue, protocol.DefaultQueue)
			if !*waitNode {
				return &brokerTrouble{fmt.Errorf("no node serves %q from queue %q: not sent (--wait-for-node sends it and waits for a node; `zerotask nodes` lists what is served)", method, q)}
			}
			fmt.Fprintf(io.err, "zerotask call: no node serves %q from queue %q yet: the task waits in its queue for one (up to --timeout %v)\n", method, q, *cf.timeout)
		}
	}
	var res json.RawMessage
	if fs.set("key") {
		// An idempotency key means a task the broker keeps a record of: submit it and wait.
		var h *client.Handle
		if h, err = c.Submit(ctx, method, callArgs, tf.submitOptions(fs, opts)...); err == nil {
			err = h.Wait(ctx, &res)
		}
	} else {
		err = c.CallWith(ctx, method, &res, callArgs, opts...)
	}
	if err != nil && isBrokerTrouble(err) && errors.Is(err, context.DeadlineExceeded) && task {
		return &brokerTrouble{fmt.Errorf("no result within %v (%s): %w", *cf.timeout, whyNoResult(c, method, *tf.queue), err)}
	}
	if err != nil && task && errors.Is(err, protocol.ErrExpired) {
		// Its deadline (--timeout) passed while it waited: the error, and why it waited.
		err = classify(io, err)
		fmt.Fprintf(io.err, "zerotask call: %s\n", whyNoResult(c, method, *tf.queue))
		return err
	}
	if err != nil {
		return classify(io, err)
	}
	printJSON(io, res)
	return nil
}

func runSubmit(ctx context.Context, io *stdio, args []string) error {
	fs := newFlagSet("submit", "METHOD [ARG...] | --workflow FILE", "Queue a task and print its id at once; follow it with `zerotask status ID` and\n"+
		"`zerotask result ID`. ARGs as for `zerotask call`; flags may follow them. With --workflow,\n"+
		"submit a graph of chains, groups and chords instead (docs/workflows.md).").withLogLevel(slog.LevelWarn)
	cf := addClientFlags(fs, 0)
	tf := addTaskFlags(fs, true)
	rawParams := fs.String("params", "", "raw JSON params (an array or an object) instead of ARGs")
	workflow := fs.String("workflow", "", "submit the workflow graph in `FILE` (- for stdin) instead of METHOD: a graph node, or\n"+
		"the params of a workflow submit ({\"workflow\":...,\"policy\":...,\"key\":...}); --key applies to it")
	if err := parse(fs, io, args, 0, -1); err != nil {
		return err
	}
	if fs.set("workflow") {
		return runSubmitWorkflow(ctx, io, fs, cf, *workflow, *tf.key)
	}
	if fs.NArg() < 1 {
		return usagef("missing arguments: %s", fs.synopsis)
	}
	callArgs, opts, err := tf.request(fs, *rawParams)
	if err != nil {
		return err
	}
	ctx, c, hangUp, err := cf.connect(ctx, io, fs, 0)
	if err != nil {
		return err
	}
	defer hangUp()
	h, err := c.Submit(ctx, fs.Arg(0), callArgs, tf.submitOptions(fs, opts)...)
	if err != nil {
		return classify(io, err)
	}
	fmt.Fprintln(io.out, h.ID())
	return nil
}

func runStatus(ctx context.Context, io *stdio, args []string) error {
	fs, cf := newClientCommand("status", "ID", "Print a task's record: its state (QUEUED, RUNNING, SUCCESS, FAILURE, RETRY, REVOKED,\n"+
		"EXPIRED, or UNKNOWN for an id the broker never saw or has forgotten), attempts, node, and its\n"+
		"result or error once finished. Exit status 1 for FAILURE, REVOKED and EXPIRED, 3 for UNKNOWN.")
	if err := parse(fs, io, args, 1, 1); err != nil {
		return err
	}
	res, err := callOnce(ctx, io, fs, cf, protocol.MethodStatus, stringParam(protocol.ParamID, fs.Arg(0)))
	if err != nil {
		return err
	}
	return printRecords(io, cf, [][]byte{res}, forStatus)
}

func runResult(ctx context.Context, io *stdio, args []string) error {
	fs, cf := newClientCommand("result", "ID", "Print a task's record once it is finished, or when --wait has passed. Exit status\n"+
		"0 for SUCCESS, 1 for FAILURE, REVOKED and EXPIRED, 3 for UNKNOWN, 4 when the task is not\n"+
		"finished by the end of --wait (the record, still QUEUED or RUNNING, is printed).")
	wait := fs.Duration("wait", 0, "how long the broker may hold the answer until the task is finished (0 = answer at once)")
	if err := parse(fs, io, args, 1, 1); err != nil {
		return err
	}
	if *wait < 0 {
		return usagef("--wait must not be negative, got %v", *wait)
	}
	ctx, c, hangUp, err := cf.connect(ctx, io, fs, *wait) // --timeout counts on top of --wait
	if err != nil {
		return err
	}
	defer hangUp()
	req := codec.AppendString([]byte(`{"`+protocol.ParamID+`":`), fs.Arg(0))
	req = strconv.AppendInt(protocol.AppendMember(req, protocol.ParamWaitMS), wait.Milliseconds(), 10)
	res, err := callRaw(ctx, io, c, protocol.MethodResult, append(req, '}'))
	if err != nil {
		return err
	}
	return printRecords(io, cf, [][]byte{res}, forResult)
}
