package store

import (
	"context"
	"fmt"
	"slices"
)

// Paused queues. A broker that pauses a queue (broker.pause) records it in the store, so that
// the pause holds across its restart and for brokers that start later on the same store: the
// set <prefix>paused holds the paused queue names.

// pausedKey is the set of paused queue names.
func (r *Redis) pausedKey() string { return r.o.Prefix + "paused" }

// SetPaused records queue as paused (paused true) or not.
func (r *Redis) SetPaused(ctx context.Context, queue string, paused bool) error {
	if err := r.closedErr(); err != nil {
		return err
	}
	if queue == "" {
		return fmt.Errorf("%w: empty queue name", ErrInvalid)
	}
	cmd := r.c.B().Srem().Key(r.pausedKey()).Member(queue).Build()
	if paused {
		cmd = r.c.B().Sadd().Key(r.pausedKey()).Member(queue).Build()
	}
	if err := r.c.Do(ctx, cmd).Error(); err != nil {
		return fmt.Errorf("store: set paused %q: %w", queue, err)
	}
	return nil
}

// Paused returns the paused queue names, sorted.
func (r *Redis) Paused(ctx context.Context) ([]string, error) {
	if err := r.closedErr(); err != nil {
		return nil, err
	}
	names, err := r.c.Do(ctx, r.c.B().Smembers().Key(r.pausedKey()).Build()).AsStrSlice()
	if err != nil {
		return nil, fmt.Errorf("store: paused queues: %w", err)
	}
	slices.Sort(names)
	return names, nil
}
