package store

import (
	"context"
	"strconv"
)

// ScheduleStore keeps periodic tasks for brokers that share a store: each schedule's spec
// (opaque bytes, the broker's JSON) by name, and the last tick any broker enqueued for it.
// A Store that implements it keeps a durable broker's schedules; brokers read the whole set
// again now and then, so a schedule set on one broker reaches the others.
type ScheduleStore interface {
	// PutSchedule stores (or replaces) the spec of schedule name.
	PutSchedule(ctx context.Context, name string, spec []byte) error
	// DeleteSchedule forgets schedule name and its last tick; it reports whether it existed.
	DeleteSchedule(ctx context.Context, name string) (bool, error)
	// Schedules returns every schedule's spec, and the last tick (unix ms) of those that
	// have one.
	Schedules(ctx context.Context) (specs map[string][]byte, last map[string]int64, err error)
	// SetScheduleLast records tick (unix ms) as schedule name's last one, unless a later one
	// is recorded already.
	SetScheduleLast(ctx context.Context, name string, tick int64) error
}

// The Redis keys of schedules (see the package doc's key layout).
func (r *Redis) keySchedules() string    { return r.o.Prefix + "schedules" }
func (r *Redis) keyScheduleLast() string { return r.o.Prefix + "schedule_last" }

// PutSchedule implements ScheduleStore (HSET <p>schedules).
func (r *Redis) PutSchedule(ctx context.Context, name string, spec []byte) error {
	if err := r.closedErr(); err != nil {
		return err
	}
	return r.c.Do(ctx, r.c.B().Hset().Key(r.keySchedules()).FieldValue().FieldValue(name, string(spec)).Build()).Error()
}

// DeleteSchedule implements ScheduleStore (HDEL of both hashes).
func (r *Redis) DeleteSchedule(ctx context.Context, name string) (bool, error) {
	if err := r.closedErr(); err != nil {
		return false, err
	}
	n, err := r.c.Do(ctx, r.c.B().Hdel().Key(r.keySchedules()).Field(name).Build()).AsInt64()
	if err != nil {
		return false, err
	}
	if err := r.c.Do(ctx, r.c.B().Hdel().Key(r.keyScheduleLast()).Field(name).Build()).Error(); err != nil {
		return n > 0, err
	}
	return n > 0, nil
}

// Schedules implements ScheduleStore (HGETALL of both hashes).
func (r *Redis) Schedules(ctx context.Context) (map[string][]byte, map[string]int64, error) {
	if err := r.closedErr(); err != nil {
		return nil, nil, err
	}
	m, err := r.c.Do(ctx, r.c.B().Hgetall().Key(r.keySchedules()).Build()).AsStrMap()
	if err != nil {
		return nil, nil, err
	}
	lm, err := r.c.Do(ctx, r.c.B().Hgetall().Key(r.keyScheduleLast()).Build()).AsStrMap()
	if err != nil {
		return nil, nil, err
	}
	specs := make(map[string][]byte, len(m))
	for k, v := range m {
		specs[k] = []byte(v)
	}
	last := make(map[string]int64, len(lm))
	for k, v := range lm {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			last[k] = n
		}
	}
	return specs, last, nil
}

// setLastScript sets a schedule's last tick when it is later than the one recorded.
const setLastScript = `local v = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if tonumber(ARGV[2]) > v then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
return 0`

// SetScheduleLast implements ScheduleStore (one script: the later tick wins).
func (r *Redis) SetScheduleLast(ctx context.Context, name string, tick int64) error {
	if err := r.closedErr(); err != nil {
		return err
	}
	return r.c.Do(ctx, r.c.B().Eval().Script(setLastScript).Numkeys(1).Key(r.keyScheduleLast()).Arg(name, strconv.FormatInt(tick, 10)).Build()).Error()
}
