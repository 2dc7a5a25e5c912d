package broker

import (
	"context"
	"time"

	"github.com/zerotask/zerotask/store"
)

// scheduleSync is how often a durable broker reads the schedules its store keeps (a schedule
// set on another broker runs here from then on) and writes the last ticks it submitted.
const scheduleSync = time.Second

// scheduleSyncer is the loop that keeps a durable broker's schedules those of its store.
type scheduleSyncer struct {
	b  *Broker
	st store.ScheduleStore
}

// run writes Config.Schedules to the store, then syncs every scheduleSync until ctx ends.
func (s scheduleSyncer) run(ctx context.Context) {
	b := s.b
	for _, sp := range b.cfg.Schedules {
		p, e := b.c.parseSchedule(sp) // checked by New already
		if e != nil {
			continue
		}
		if err := s.call(ctx, func(ctx context.Context) error { return s.st.PutSchedule(ctx, sp.Name, p.raw) }); err != nil {
			b.cfg.Logger.Warn("broker: store: schedule from the configuration", "schedule", sp.Name, "err", err)
		}
	}
	t := time.NewTicker(scheduleSync)
	defer t.Stop()
	for {
		s.once(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// once writes the last ticks submitted since the last sync, then reads the store's schedules.
func (s scheduleSyncer) once(ctx context.Context) {
	b := s.b
	b.mu.Lock()
	dirty := b.c.schedDirty
	b.c.schedDirty = make(map[string]int64, len(dirty))
	b.mu.Unlock()
	for name, tick := range dirty {
		if err := s.call(ctx, func(ctx context.Context) error {
			return s.st.SetScheduleLast(ctx, name, tick/int64(time.Millisecond))
		}); err != nil && ctx.Err() == nil {
			b.cfg.Logger.Warn("broker: store: a schedule's last tick", "schedule", name, "err", err)
		}
	}
	var specs map[string][]byte
	var last map[string]int64
	err := s.call(ctx, func(ctx context.Context) (err error) {
		specs, last, err = s.st.Schedules(ctx)
		return err
	})
	if err != nil {
		if ctx.Err() == nil {
			b.cfg.Logger.Warn("broker: store: read schedules", "err", err)
		}
		return
	}
	b.mu.Lock()
	b.c.syncSchedules(specs, last)
	b.mu.Unlock()
}

// call runs one store call bounded by Config.StoreTimeout.
func (s scheduleSyncer) call(ctx context.Context, f func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, s.b.cfg.StoreTimeout)
	defer cancel()
	return f(ctx)
}
