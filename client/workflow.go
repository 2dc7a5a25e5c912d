package client

import (
	"context"
	"fmt"

	"github.com/zerotask/zerotask/codec"
	"github.com/zerotask/zerotask/protocol"
)

// Workflows (docs/workflows.md): a graph of tasks the broker runs as a whole, submitted at
// once and answered with one id. Build it from Task, Chain, Group and Chord, then submit it
// with SubmitWorkflow:
//
//	g := client.Chord([]*client.Flow{client.Task("add", []any{1, 2}), client.Task("add", []any{3, 4})},
//		client.Task("sum", nil))
//	h, err := c.SubmitWorkflow(ctx, g)
//	var total int
//	err = h.Wait(ctx, &total) // sum([[3, 7]]) = 10
//
// The result-passing rule: a task that receives a result (a chain's next step, a chord's
// callback) gets it appended as the last of its params. A group's result is the array of its
// members' results, in member order.

// Flow is a node of a workflow graph: a task, a chain, a group or a chord. A Flow is a value
// to build with: it is never changed once made, and may appear in several graphs.
type Flow struct {
	raw []byte // the node's JSON
	err error  // the first encoding error below it
}

// Task is a graph step that runs method with args as its params (encoded as Call encodes
// them). Options (Queue, Priority, Timeout, MaxAttempts, Backoff, Delay, ETA) apply to the
// step; the idempotency Key applies to a whole graph (SubmitWorkflow).
func Task(method string, args []any, opts ...TaskOption) *Flow {
	params, err := encodeArgs(nil, args)
	if err != nil {
		return &Flow{err: err}
	}
	return taskFlow(method, params, opts)
}

// taskFlow builds a task node from raw params.
func taskFlow(method string, params []byte, opts []TaskOption) *Flow {
	o, err := callOptions(opts)
	if err != nil {
		return &Flow{err: err}
	}
	b := append([]byte(`{"method":`), codec.AppendString(nil, method)...)
	if len(params) > 0 {
		b = append(append(b, `,"params":`...), params...)
	}
	b = o.appendMembers(b, context.Background(), true)
	return &Flow{raw: append(b, '}')}
}

// Chain is a graph node that runs steps one after the other, each given the result of the one
// before; its result is the last step's. A failing step fails the chain.
func Chain(steps ...*Flow) *Flow { return listFlow(protocol.MemberChain, steps, nil) }

// Group is a graph node that runs members in parallel; its result is the array of their
// results, in member order.
func Group(members ...*Flow) *Flow { return listFlow(protocol.MemberGroup, members, nil) }

// Chord is a group whose results array is given to callback once every member is done (a
// map-reduce); its result is the callback's.
func Chord(members []*Flow, callback *Flow) *Flow {
	if callback == nil {
		return &Flow{err: fmt.Errorf("client: Chord without a callback")}
	}
	return listFlow(protocol.MemberGroup, members, callback)
}

func listFlow(kind string, list []*Flow, callback *Flow) *Flow {
	if len(list) == 0 {
		return &Flow{err: fmt.Errorf("client: empty %s", kind)}
	}
	n := 16
	for _, f := range list {
		if f == nil {
			return &Flow{err: fmt.Errorf("client: nil step in a %s", kind)}
		}
		if f.err != nil {
			return &Flow{err: f.err}
		}
		n += len(f.raw) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, `{"`...)
	b = append(b, kind...)
	b = append(b, `":[`...)
	for i, f := range list {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, f.raw...)
	}
	b = append(b, ']')
	if callback != nil {
		if callback.err != nil {
			return &Flow{err: callback.err}
		}
		b = protocol.AppendMember(b, protocol.MemberCallback)
		b = append(b, callback.raw...)
	}
	return &Flow{raw: append(b, '}')}
}

// MarshalJSON returns the graph node's wire form (docs/workflows.md).
func (f *Flow) MarshalJSON() ([]byte, error) {
	if f.err != nil {
		return nil, f.err
	}
	return f.raw, nil
}

// ContinueOnError makes a submitted graph run its groups to the end when members fail: a failed
// member's place in its group's results array holds {"error": <its error object>}, and a
// chord's callback runs with the errors in place. Without it a graph fails fast: its first
// failing step fails the whole graph and every step not finished is revoked. A failing step
// always fails its chain.
func ContinueOnError() SubmitOption {
	return submitOption(func(o *taskOptions) { o.continueOnError = true })
}

// SubmitWorkflow submits graph f as one workflow and returns at once with a Handle on it: the
// graph's id, its state (RUNNING until it ends) and, once done, its result (the root node's).
// Options: Key (an idempotency key for the whole graph) and ContinueOnError; task options
// belong to the graph's steps (Task). A graph is accepted whole or refused whole.
func (c *Client) SubmitWorkflow(ctx context.Context, f *Flow, opts ...SubmitOption) (*Handle, error) {
	if f == nil {
		return nil, fmt.Errorf("client: nil workflow")
	}
	if f.err != nil {
		return nil, f.err
	}
	o, err := submitOptions(opts)
	if err != nil {
		return nil, err
	}
	if o != nil && (o.delay > 0 || !o.eta.IsZero() || o.hasPriority || o.queue != "" || o.maxAttempts > 0 || o.backoff > 0 || o.timeout > 0) {
		return nil, fmt.Errorf("%w: only Key and ContinueOnError apply to a workflow; give task options to its steps", ErrBadOption)
	}
	p := make([]byte, 0, len(f.raw)+64)
	p = append(p, `{"`+protocol.ParamWorkflow+`":`...)
	p = append(p, f.raw...)
	if o != nil {
		if o.key != "" {
			p = protocol.AppendMember(p, protocol.MemberKey)
			p = codec.AppendString(p, o.key)
		}
		if o.continueOnError {
			p = protocol.AppendMember(p, protocol.ParamPolicy)
			p = codec.AppendString(p, protocol.PolicyContinue)
		}
	}
	p = append(p, '}')
	return c.submitRaw(ctx, protocol.WorkflowMethod, p)
}

// StepInfo is the state of one task step of a workflow, as its record lists it.
type StepInfo struct {
	ID     string `json:"id"` // the step's task id, "" while it has not started
	Method string `json:"method"`
	State  State  `json:"state"` // PENDING (StatePending) before it starts
}

// StatePending is the state of a workflow's step that has not started yet.
const StatePending State = protocol.StatePending

// WorkflowInfo is the broker's record of a workflow: the graph's own state and result (as a
// task's) and its steps in graph order.
type WorkflowInfo struct {
	TaskInfo
	Policy string
	Counts map[State]int // steps per state
	Steps  []StepInfo    // nil when the record was too large to list them (Counts stays)
}

// WorkflowStatus returns the broker's record of the workflow with this id (broker.status).
func (c *Client) WorkflowStatus(ctx context.Context, id string) (WorkflowInfo, error) {
	p, err := idParams(id, 0)
	if err != nil {
		return WorkflowInfo{}, err
	}
	raw, err := c.CallRaw(ctx, nil, protocol.MethodStatus, p)
	if err != nil {
		return WorkflowInfo{}, err
	}
	ti, err := decodeTaskInfo(raw)
	if err != nil {
		return WorkflowInfo{}, err
	}
	var r struct {
		Policy string        `json:"policy"`
		Counts map[State]int `json:"counts"`
		Steps  []StepInfo    `json:"steps"`
	}
	if err := codec.Unmarshal(raw, &r); err != nil {
		return WorkflowInfo{}, fmt.Errorf("client: decode workflow record: %w", err)
	}
	return WorkflowInfo{TaskInfo: ti, Policy: r.Policy, Counts: r.Counts, Steps: r.Steps}, nil
}

// MapReduce runs mapMethod once per input in the broker, as the members of one chord, and
// reduceMethod once over the array of their results (in input order, appended as its last
// param), and decodes reduceMethod's result as Out. Inputs become params as Map's do. The
// whole fan-out is one submit: the broker starts the reduce when the last map answer arrives,
// and the client waits on one handle; opts are SubmitWorkflow's.
//
//	total, err := client.MapReduce[int](ctx, c, "add", [][2]int{{1, 2}, {3, 4}}, "sum")
func MapReduce[Out, In any](ctx context.Context, c *Client, mapMethod string, inputs []In, reduceMethod string, opts ...SubmitOption) (Out, error) {
	var out Out
	members := make([]*Flow, len(inputs))
	for i, in := range inputs {
		params, err := inputParams(in)
		if err != nil {
			return out, &MapError{Index: i, Err: err}
		}
		members[i] = taskFlow(mapMethod, params, nil)
	}
	h, err := c.SubmitWorkflow(ctx, Chord(members, Task(reduceMethod, nil)), opts...)
	if err != nil {
		return out, err
	}
	err = h.Wait(ctx, &out)
	return out, err
}
