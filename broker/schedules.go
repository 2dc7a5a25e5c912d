package broker

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/zerotask/zerotask/codec"
	"github.com/zerotask/zerotask/internal/rawjson"
	"github.com/zerotask/zerotask/protocol"
	"github.com/zerotask/zerotask/store"
)

// Periodic tasks (docs/workflows.md, "Periodic tasks"). A schedule is a cron expression or an
// interval, a task template and a misfire policy. The tick (Config.Tick) submits each tick
// that is due as a broker.submit of the template with the idempotency key
// "schedule:<name>:<tick unix ms>" (protocol.ScheduleKey): with several brokers on one store
// every broker submits every tick, and the store's key binding lets one of them in. No broker
// leads; a broker that stops takes nothing with it.
//
// Cron expressions are read by github.com/robfig/cron/v3 (5 fields, or 6 with seconds first,
// descriptors such as @hourly, and CRON_TZ=Zone), whose parser is the one most Go schedulers
// use; only its parser and Schedule.Next are used, never its runner: the broker's own tick
// and clock (Config.Clock) decide when.
//
// In durable mode, with a store that keeps schedules (store.ScheduleStore), the store is where
// schedules live: broker.schedule.set and remove write to it before they answer, and every
// broker reads the whole set again every scheduleSync (schedule_sync.go), so a schedule set on
// one broker runs on all. The last tick enqueued is written back too, so a broker that starts
// after all were down knows which ticks it missed (MisfireOnce).

// periodic is one schedule and its state.
type periodic struct {
	spec   protocol.Schedule // as set (NextMS and LastMS zero)
	raw    []byte            // spec as JSON: what the store keeps
	cron   cron.Schedule     // nil for an interval
	every  int64             // the interval in ns
	next   int64             // unix ns of the next tick
	last   int64             // unix ns of the last tick submitted (0: none known)
	submit []byte            // broker.submit params, open: {"method":..,"params":..,options
}

// cronParser reads 5 or 6 fields (seconds optional, first) and descriptors.
var cronParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// parseCron reads a cron expression. robfig/cron v3.0.1's parser panics on some input (a
// "TZ=" with nothing after it slices out of range: FuzzScheduleSpec found it), and its input
// comes from the wire: a panic is an invalid expression.
func parseCron(expr string) (s cron.Schedule, err error) {
	defer func() {
		if r := recover(); r != nil {
			s, err = nil, fmt.Errorf("invalid expression %q", expr)
		}
	}()
	return cronParser.Parse(expr)
}

// after returns the first tick after t (unix ns), math.MaxInt64 when there is none.
func (s *periodic) after(t int64) int64 {
	if s.cron == nil {
		return (t/s.every + 1) * s.every
	}
	n := s.cron.Next(time.Unix(0, t))
	if n.IsZero() {
		return math.MaxInt64
	}
	return n.UnixNano()
}

// parseSchedule checks a schedule and builds its state; the error is the answer's.
func (c *core) parseSchedule(sp protocol.Schedule) (*periodic, *codec.Error) {
	sp.NextMS, sp.LastMS = 0, 0
	if sp.Name == "" || len(sp.Name) > protocol.MaxScheduleName || strings.ContainsAny(sp.Name, `"\`) || !protocol.ValidName(sp.Name) {
		return nil, invalidParams("name must be 1 to " + strconv.Itoa(protocol.MaxScheduleName) + ` bytes without control characters, '"' or '\'`)
	}
	if sp.Method == "" || len(sp.Method) > c.cfg.MaxMethodLen || !protocol.ValidName(sp.Method) || codec.IsReservedName(sp.Method) || protocol.IsBrokerMethod(sp.Method) {
		return nil, invalidParams("method must name a task: 1 to " + strconv.Itoa(c.cfg.MaxMethodLen) + " bytes, not " + protocol.MethodPrefix + "* or rpc.*")
	}
	s := &periodic{}
	switch {
	case sp.Cron != "" && sp.EveryMS != 0, sp.Cron == "" && sp.EveryMS == 0:
		return nil, invalidParams("a schedule has either cron or every_ms")
	case sp.Cron != "":
		expr := sp.Cron
		if !strings.HasPrefix(expr, "CRON_TZ=") && !strings.HasPrefix(expr, "TZ=") {
			expr = "CRON_TZ=" + cmpOr(sp.TZ, "UTC") + " " + expr
		} else if sp.TZ != "" {
			return nil, invalidParams("tz and a CRON_TZ= in cron: give one")
		}
		cs, err := parseCron(expr)
		if err != nil {
			return nil, invalidParams("cron: " + err.Error())
		}
		s.cron = cs
	default:
		if sp.EveryMS < protocol.MinEvery.Milliseconds() || sp.EveryMS > protocol.DefaultMaxDelay.Milliseconds() {
			return nil, invalidParams(fmt.Sprintf("every_ms must be from %d to %d", protocol.MinEvery.Milliseconds(), protocol.DefaultMaxDelay.Milliseconds()))
		}
		if sp.TZ != "" {
			return nil, invalidParams("tz goes with cron")
		}
		s.every = sp.EveryMS * int64(time.Millisecond)
	}
	switch sp.Misfire {
	case "", protocol.MisfireSkip, protocol.MisfireOnce:
	default:
		return nil, invalidParams("misfire must be " + protocol.MisfireSkip + " or " + protocol.MisfireOnce)
	}
	params := rawjson.TrimSpace(sp.Params)
	if len(params) > 0 && params[0] != '[' && params[0] != '{' {
		return nil, invalidParams("params must be an array or an object")
	}
	b := append([]byte(`{"`+protocol.ParamMethod+`":`), codec.AppendString(nil, sp.Method)...)
	if len(params) > 0 {
		b = append(append(b, `,"params":`...), params...)
	}
	if opts := rawjson.TrimSpace(sp.Options); len(opts) > 0 && string(opts) != "null" {
		var m map[string]json.RawMessage
		if opts[0] != '{' || codec.Unmarshal(opts, &m) != nil {
			return nil, invalidParams("options must be an object")
		}
		for _, k := range []string{protocol.MemberKey, protocol.ParamMethod, "params"} {
			if _, ok := m[k]; ok {
				return nil, invalidParams("options must not hold " + k)
			}
		}
		if inner := bytes.TrimSpace(opts[1 : len(opts)-1]); len(inner) > 0 {
			b = append(append(b, ','), inner...)
		}
	}
	s.submit = b
	if len(s.submit)+protocol.MaxScheduleName+64 > c.maxMsg/2 {
		return nil, invalidParams("the task template is too large")
	}
	raw, err := codec.Marshal(sp)
	if err != nil {
		return nil, invalidParams(err.Error())
	}
	s.spec, s.raw = sp, raw
	return s, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// setSchedule adds s, or replaces the schedule of its name (keeping what it knows of its last
// tick); last is the last tick the store knows (unix ms, 0: none).
func (c *core) setSchedule(s *periodic, lastMS int64) {
	now := c.limitNow()
	if old := c.periodics[s.spec.Name]; old != nil {
		s.last = old.last
	}
	if lastMS > 0 {
		s.last = max(s.last, lastMS*int64(time.Millisecond))
	}
	if s.last > 0 && s.spec.Misfire == protocol.MisfireOnce {
		s.next = s.after(s.last) // ticks missed since are seen at the next tick
	} else {
		s.next = s.after(now)
	}
	if c.periodics == nil {
		c.periodics = make(map[string]*periodic)
	}
	c.periodics[s.spec.Name] = s
	c.nextPeriodic = min(c.nextPeriodic, s.next)
}

// runSchedules submits the ticks that are due (called on every tick).
func (c *core) runSchedules() {
	if len(c.periodics) == 0 || c.closing {
		return
	}
	now := c.limitNow()
	if now < c.nextPeriodic {
		return
	}
	c.nextPeriodic = math.MaxInt64
	for _, s := range c.periodics {
		if s.next <= now {
			c.fire(s, now)
		}
		c.nextPeriodic = min(c.nextPeriodic, s.next)
	}
}

// maxCatchUp bounds the missed ticks walked to find the latest one (a schedule every second
// missed for a day is 86,400): past it the walk restarts from a minute before now.
const maxCatchUp = 100_000

// fire submits s's due tick. A tick found more than protocol.MisfireGrace late was missed:
// the latest missed tick runs with MisfireOnce (or when it is itself within the grace), the
// others are dropped.
func (c *core) fire(s *periodic, now int64) {
	tick := s.next
	if now-tick > int64(protocol.MisfireGrace) {
		for n := 0; ; n++ {
			nx := s.after(tick)
			if nx > now {
				break
			}
			if n == maxCatchUp {
				nx = s.after(now - int64(time.Minute))
				if nx > now {
					break
				}
			}
			tick = nx
		}
		if s.spec.Misfire != protocol.MisfireOnce && now-tick > int64(protocol.MisfireGrace) {
			s.next = s.after(tick)
			return
		}
	}
	s.next = s.after(tick)
	c.submitTick(s, tick)
}

// submitTick submits s's task for tick, under the tick's idempotency key.
func (c *core) submitTick(s *periodic, tick int64) {
	s.last = tick
	if c.schedDirty != nil {
		c.schedDirty[s.spec.Name] = tick
	}
	b := append(c.schedBuf[:0], s.submit...)
	b = append(b, `,"`+protocol.MemberKey+`":`...)
	b = codec.AppendString(b, protocol.ScheduleKey(s.spec.Name, time.Unix(0, tick)))
	b = append(b, '}')
	c.schedBuf = b
	if c.schedPeer == nil {
		c.schedPeer = &peer{slot: noRef}
	}
	h := codec.Header{Method: []byte(protocol.MethodSubmit), Params: b}
	before := c.cnt.submitted + c.cnt.duplicate
	c.bSubmit(c.schedPeer, noTarget, &h)
	c.cnt.ticks++
	if c.cnt.submitted+c.cnt.duplicate == before {
		c.log.Warn("broker: a schedule's tick was refused", "schedule", s.spec.Name, "tick", time.Unix(0, tick).UTC())
	}
}

// appendSchedules appends broker.schedule.list's answer, sorted by name.
func (c *core) appendSchedules(dst []byte) []byte {
	list := make([]protocol.Schedule, 0, len(c.periodics))
	for _, s := range c.periodics {
		sp := s.spec
		if s.next != math.MaxInt64 {
			sp.NextMS = s.next / int64(time.Millisecond)
		}
		sp.LastMS = s.last / int64(time.Millisecond)
		list = append(list, sp)
	}
	slices.SortFunc(list, func(a, b protocol.Schedule) int { return strings.Compare(a.Name, b.Name) })
	v, err := codec.Marshal(list)
	if err != nil {
		return append(dst, "[]"...)
	}
	return append(dst, v...)
}

// scheduleStore returns the store that keeps schedules, nil when there is none (memory mode).
func (c *core) scheduleStore() store.ScheduleStore {
	if c.dur == nil {
		return nil
	}
	st, _ := c.cfg.Store.(store.ScheduleStore)
	return st
}

// bScheduleSet: broker.schedule.set with a Schedule object. In durable mode the store has it
// before the answer.
func (c *core) bScheduleSet(p *peer, tg target, h *codec.Header) {
	var sp protocol.Schedule
	if ps := rawjson.TrimSpace(h.Params); len(ps) == 0 || ps[0] != '{' || codec.Unmarshal(ps, &sp) != nil {
		c.badParams(tg, h.ID, "params must be a schedule object")
		return
	}
	s, e := c.parseSchedule(sp)
	if e != nil {
		c.fail(tg, h.ID, e)
		return
	}
	if _, ok := c.periodics[sp.Name]; !ok && len(c.periodics) >= c.cfg.MaxSchedules {
		c.cnt.rejected++
		c.fail(tg, h.ID, protocol.ErrTooManySchedules)
		return
	}
	st := c.scheduleStore()
	if st == nil {
		c.setSchedule(s, 0)
		c.ok(tg, h.ID, trueJSON)
		return
	}
	c.storeJob(p, tg, h.ID, func(ctx context.Context) error {
		return st.PutSchedule(ctx, s.spec.Name, s.raw)
	}, func() []byte {
		c.setSchedule(s, 0)
		return trueJSON
	})
}

// bScheduleRemove: broker.schedule.remove {"name":N} or [N]; answers whether it existed.
func (c *core) bScheduleRemove(p *peer, tg target, h *codec.Header) {
	var name string
	if v := rawjson.Param(h.Params, "name", 0); v == nil || codec.Unmarshal(v, &name) != nil || name == "" {
		c.badParams(tg, h.ID, "name must be a non-empty string")
		return
	}
	st := c.scheduleStore()
	if st == nil {
		_, ok := c.periodics[name]
		delete(c.periodics, name)
		c.ok(tg, h.ID, boolJSON(ok))
		return
	}
	var existed bool
	c.storeJob(p, tg, h.ID, func(ctx context.Context) (err error) {
		existed, err = st.DeleteSchedule(ctx, name)
		return err
	}, func() []byte {
		_, ok := c.periodics[name]
		delete(c.periodics, name)
		return boolJSON(ok || existed)
	})
}

func boolJSON(v bool) []byte {
	if v {
		return trueJSON
	}
	return falseJSON
}

var falseJSON = []byte("false")

// storeJob runs a store call on a broker-task worker, then done under the lock, whose value
// is the answer (a store error answers CodeQueueFull, as a store write failing elsewhere does).
func (c *core) storeJob(p *peer, tg target, id []byte, run func(ctx context.Context) error, done func() []byte) {
	if c.jobs == nil || tg.client != noRef && p.inflight >= c.cfg.MaxInFlightPerClient {
		c.cnt.rejected++
		c.fail(tg, id, errBrokerBusy)
		return
	}
	timeout := c.cfg.StoreTimeout
	j := &job{tg: tg, run: func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		return run(ctx)
	}}
	j.apply = func(err error) ([]byte, error) {
		if err != nil {
			c.log.Warn("broker: store: schedule", "err", err)
			return nil, codec.NewError(protocol.CodeQueueFull, "queue full: the store failed: "+err.Error(), nil)
		}
		return done(), nil
	}
	if tg.client != noRef {
		j.id = append([]byte(nil), id...)
	}
	if !c.jobs(j) {
		c.cnt.rejected++
		c.fail(tg, id, errBrokerBusy)
		return
	}
	if tg.client != noRef {
		c.pending(p, tg)
	}
}

// checkSchedules checks Config.Schedules (New, before anything starts).
func (c *core) checkSchedules() error {
	if len(c.cfg.Schedules) > c.cfg.MaxSchedules {
		return fmt.Errorf("%w: more than MaxSchedules schedules", ErrConfig)
	}
	for _, sp := range c.cfg.Schedules {
		if _, e := c.parseSchedule(sp); e != nil {
			return fmt.Errorf("%w: schedule %q: %s", ErrConfig, sp.Name, e.Message)
		}
	}
	return nil
}

// initSchedules sets Config.Schedules at start in memory mode; in durable mode the sync loop
// writes them to the store first, and the store's set is what runs.
func (c *core) initSchedules() {
	if c.scheduleStore() != nil {
		c.schedDirty = make(map[string]int64)
		return
	}
	for _, sp := range c.cfg.Schedules {
		if s, e := c.parseSchedule(sp); e == nil {
			c.setSchedule(s, 0)
		}
	}
}

// syncSchedules makes the schedules those the store keeps (specs by name, last ticks in ms).
func (c *core) syncSchedules(specs map[string][]byte, last map[string]int64) {
	for name := range c.periodics {
		if _, ok := specs[name]; !ok {
			delete(c.periodics, name)
		}
	}
	for name, raw := range specs {
		if s := c.periodics[name]; s != nil && bytes.Equal(s.raw, raw) {
			if l := last[name] * int64(time.Millisecond); l > s.last {
				s.last = l
			}
			continue
		}
		var sp protocol.Schedule
		if codec.Unmarshal(raw, &sp) != nil {
			c.log.Warn("broker: store: an unreadable schedule", "schedule", name)
			continue
		}
		s, e := c.parseSchedule(sp)
		if e != nil || sp.Name != name {
			c.log.Warn("broker: store: an invalid schedule", "schedule", name)
			continue
		}
		if _, ok := c.periodics[name]; !ok && len(c.periodics) >= c.cfg.MaxSchedules {
			continue
		}
		c.setSchedule(s, last[name])
	}
}
