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
	p := map[string]string{}
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
