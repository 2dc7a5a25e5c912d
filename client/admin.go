package client

import (
	"context"

	"github.com/zerotask/zerotask/protocol"
)

// Pause pauses the named queue (protocol.DefaultQueue for the default one) on the broker
// (broker.pause): it keeps accepting tasks, and none is handed to a node until Resume.
func (c *Client) Pause(ctx context.Context, queue string) error {
	return c.Call(ctx, protocol.MethodPause, nil, Named(map[string]string{protocol.ParamQueue: queue}))
}

// Resume hands a paused queue's tasks out again (broker.resume).
func (c *Client) Resume(ctx context.Context, queue string) error {
	return c.Call(ctx, protocol.MethodResume, nil, Named(map[string]string{protocol.ParamQueue: queue}))
}

// Purge drops the tasks waiting in a queue, of a method, or of a method in a queue (an empty
// queue or method matches any; not both empty) and returns how many (broker.purge). Each ends
// REVOKED; delayed tasks and tasks at nodes are not touched.
func (c *Client) Purge(ctx context.Context, queue, method string) (int, error) {
	return c.purge(ctx, map[string]any{}, queue, method)
}

// PurgeArchived forgets the archived tasks (FAILURE, EXPIRED, REVOKED) of a queue, a method,
// or a method in a queue (at least one given) and returns how many there were; in durable mode
// from the archive in the store, for every broker on it.
func (c *Client) PurgeArchived(ctx context.Context, queue, method string) (int, error) {
	return c.purge(ctx, map[string]any{protocol.ParamArchived: true}, queue, method)
}

// purge calls broker.purge with params p and the queue and method that are not empty, and
// returns how many tasks it dropped.
func (c *Client) purge(ctx context.Context, p map[string]any, queue, method string) (int, error) {
	if queue != "" {
		p[protocol.ParamQueue] = queue
	}
	if method != "" {
		p[protocol.ParamMethod] = method
	}
	var res map[string]int
	if err := c.Call(ctx, protocol.MethodPurge, &res, Named(p)); err != nil {
		return 0, err
	}
	return res[protocol.MemberPurged], nil
}

// ListOptions selects the tasks of List and RequeueMatching; the zero value lists every task
// the broker knows, oldest first, DefaultListLimit a page.
type ListOptions struct {
	State  State  // only tasks in this state ("" for any)
	Queue  string // only tasks of this queue ("" for any; protocol.DefaultQueue for the default one)
	Method string // only tasks of this method ("" for any)
	Newest bool   // newest first
	Limit  int    // tasks per page, 1 to protocol.MaxListLimit (0: protocol.DefaultListLimit)
	Cursor string // the Cursor of the page before ("" for the first page)
}

// ListPage is one page of List.
type ListPage struct {
	Tasks []TaskInfo
	// Raw holds each task's record as the broker sent it: archived tasks (FAILURE, EXPIRED,
	// REVOKED) carry their params, options and every failed attempt (docs/protocol.md).
	Raw [][]byte
	// Cursor is where the next page starts; "" when the listing is done. A page may hold
	// fewer tasks than the limit (even none) and still have a cursor: the broker bounds the
	// work of one page.
	Cursor string
}

func (o *ListOptions) params(withOrder bool) map[string]any {
	p := map[string]any{}
	if o.State != "" {
		p[protocol.ParamState] = string(o.State)
	}
	if o.Queue != "" {
		p[protocol.ParamQueue] = o.Queue
	}
	if o.Method != "" {
		p[protocol.ParamMethod] = o.Method
	}
	if withOrder && o.Newest {
		p[protocol.ParamOrder] = protocol.OrderNewest
	}
	if withOrder && o.Limit > 0 {
		p[protocol.ParamLimit] = o.Limit
	}
	if o.Cursor != "" {
		p[protocol.ParamCursor] = o.Cursor
	}
	return p
}

// List returns one page of the tasks the broker knows (broker.list): live ones (QUEUED,
// RUNNING, RETRY), finished ones still in its result store (SUCCESS) and archived ones
// (FAILURE, EXPIRED, REVOKED).
func (c *Client) List(ctx context.Context, o ListOptions) (ListPage, error) {
	var res struct {
		Tasks  []rawJSONField `json:"tasks"`
		Cursor string         `json:"cursor"`
	}
	if err := c.Call(ctx, protocol.MethodList, &res, Named(o.params(true))); err != nil {
		return ListPage{}, err
	}
	pg := ListPage{Cursor: res.Cursor, Tasks: make([]TaskInfo, len(res.Tasks)), Raw: make([][]byte, len(res.Tasks))}
	for i, raw := range res.Tasks {
		ti, err := decodeTaskInfo(raw)
		if err != nil {
			return ListPage{}, err
		}
		pg.Tasks[i], pg.Raw[i] = ti, []byte(raw)
	}
	return pg, nil
}

// Requeue runs archived tasks (FAILURE, EXPIRED, REVOKED) again under their ids, with their
// params and options, as new attempts (broker.requeue), and returns how many it requeued (ids
// not in the archive are skipped).
func (c *Client) Requeue(ctx context.Context, ids ...string) (int, error) {
	var res map[string]int
	if err := c.Call(ctx, protocol.MethodRequeue, &res, Named(map[string]any{protocol.ParamIDs: ids})); err != nil {
		return 0, err
	}
	return res[protocol.MemberRequeued], nil
}

// RequeueMatching requeues the archived tasks o selects (a state, queue or method; Limit and
// Newest are not used), a bounded number per call: it returns how many, and the cursor to call
// again with while more may match ("" when done).
func (c *Client) RequeueMatching(ctx context.Context, o ListOptions) (int, string, error) {
	var res struct {
		Requeued int    `json:"requeued"`
		Cursor   string `json:"cursor"`
	}
	if err := c.Call(ctx, protocol.MethodRequeue, &res, Named(o.params(false))); err != nil {
		return 0, "", err
	}
	return res.Requeued, res.Cursor, nil
}
