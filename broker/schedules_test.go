package broker

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the zones the cron tests name, whatever the machine has

	"github.com/zerotask/zerotask/internal/testutil"
	"github.com/zerotask/zerotask/protocol"
)

// TestScheduleTicks: the ticks of cron expressions (5 and 6 fields, time zones, descriptors)
// and intervals, as the broker computes them, are the right instants.
func TestScheduleTicks(t *testing.T) {
	r := newRig(t, Config{})
	utc := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		name string
		sp   protocol.Schedule
		from string
		want []string // the next ticks after from, in UTC
	}{
		{"5 fields, UTC by default", protocol.Schedule{Cron: "30 9 * * *"}, "2026-03-06T12:00:00Z",
			[]string{"2026-03-07T09:30:00Z", "2026-03-08T09:30:00Z"}},
		{"5 fields in New York across the DST change", protocol.Schedule{Cron: "0 9 * * *", TZ: "America/New_York"}, "2026-03-07T00:00:00Z",
			[]string{"2026-03-07T14:00:00Z", "2026-03-08T13:00:00Z", "2026-03-09T13:00:00Z"}},
		{"CRON_TZ in the expression", protocol.Schedule{Cron: "CRON_TZ=Asia/Kolkata 0 0 1 * *"}, "2026-01-15T00:00:00Z",
			[]string{"2026-01-31T18:30:00Z", "2026-02-28T18:30:00Z"}},
		{"6 fields: seconds first", protocol.Schedule{Cron: "*/20 * * * * *", TZ: "Europe/Paris"}, "2026-06-01T10:00:05Z",
			[]string{"2026-06-01T10:00:20Z", "2026-06-01T10:00:40Z", "2026-06-01T10:01:00Z"}},
		{"weekdays at 17:45 in Tokyo", protocol.Schedule{Cron: "45 17 * * MON-FRI", TZ: "Asia/Tokyo"}, "2026-12-04T09:00:00Z",
			[]string{"2026-12-07T08:45:00Z", "2026-12-08T08:45:00Z"}},
		{"descriptor", protocol.Schedule{Cron: "@hourly"}, "2026-01-01T00:10:00Z",
			[]string{"2026-01-01T01:00:00Z", "2026-01-01T02:00:00Z"}},
		{"interval: multiples since the epoch", protocol.Schedule{EveryMS: 90_000}, "2026-01-01T00:00:10Z",
			[]string{"2026-01-01T00:01:30Z", "2026-01-01T00:03:00Z"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.sp.Name, tc.sp.Method = "s", "m"
			s, e := r.c.parseSchedule(tc.sp)
			if e != nil {
				t.Fatal(e)
			}
			at := utc(tc.from).UnixNano()
			for _, w := range tc.want {
				at = s.after(at)
				if got := time.Unix(0, at).UTC(); !got.Equal(utc(w)) {
					t.Fatalf("tick %s, want %s", got.Format(time.RFC3339), w)
				}
			}
		})
	}
}

// TestScheduleInvalid: what broker.schedule.set refuses, with -32602.
func TestScheduleInvalid(t *testing.T) {
	b := startBroker(t, Config{MaxSchedules: 1})
	c := dealer(t, b)
	set := func(params string) resp {
		return decodeResp(t, c.call(`{"jsonrpc":"2.0","id":1,"method":"broker.schedule.set","params":`+params+`}`))
	}
	for _, tc := range []struct{ params, why string }{
		{`{"name":"a","method":"m"}`, "neither cron nor every_ms"},
		{`{"name":"a","method":"m","cron":"* * * * *","every_ms":1000}`, "both"},
		{`{"name":"a","method":"m","cron":"61 * * * *"}`, "a minute past 59"},
		{`{"name":"a","method":"m","cron":"* * * *"}`, "4 fields"},
		{`{"name":"a","method":"m","cron":"* * * * *","tz":"Mars/Olympus"}`, "unknown zone"},
		{`{"name":"a","method":"m","every_ms":999}`, "interval below a second"},
		{`{"name":"a","method":"broker.stats","every_ms":1000}`, "a broker method"},
		{`{"name":"","method":"m","every_ms":1000}`, "no name"},
		{`{"name":"a\"b","method":"m","every_ms":1000}`, "a quote in the name"},
		{`{"name":"a","method":"m","every_ms":1000,"misfire":"twice"}`, "unknown misfire policy"},
		{`{"name":"a","method":"m","every_ms":1000,"params":5}`, "params not an array or object"},
		{`{"name":"a","method":"m","every_ms":1000,"options":{"key":"k"}}`, "a key in the options"},
		{`{"name":"a","method":"m","every_ms":1000,"options":[1]}`, "options not an object"},
		{`[1]`, "not an object"},
	} {
		if r := set(tc.params); r.Error == nil || r.Error.Code != -32602 {
			t.Errorf("%s: got %+v, want -32602", tc.why, r.Error)
		}
	}
	if r := set(`{"name":"a","method":"m","every_ms":1000}`); r.Error != nil {
		t.Fatal(r.Error)
	}
	if r := set(`{"name":"b","method":"m","every_ms":1000}`); r.Error == nil || r.Error.Code != protocol.CodeQueueFull {
		t.Fatalf("past MaxSchedules: %+v", r.Error)
	}
	if r := set(`{"name":"a","method":"m","every_ms":2000}`); r.Error != nil {
		t.Fatalf("replacing one at the bound: %+v", r.Error)
	}
}

// listSchedules returns broker.schedule.list's answer.
func listSchedules(t *testing.T, c *tpeer) []protocol.Schedule {
	t.Helper()
	r := decodeResp(t, c.call(`{"jsonrpc":"2.0","id":"l","method":"broker.schedule.list"}`))
	var l []protocol.Schedule
	if r.Error != nil || json.Unmarshal(r.Result, &l) != nil {
		t.Fatalf("list: %+v %s", r.Error, r.Result)
	}
	return l
}

// TestScheduleCronFiresInZone: a cron schedule in New York time fires at 09:00 there, before
// and after the change to daylight saving time, driven by a fake clock; its task carries the
// template's params and options; broker.schedule.remove stops it.
func TestScheduleCronFiresInZone(t *testing.T) {
	fc := newFakeClock(time.Date(2026, 3, 7, 13, 59, 0, 0, time.UTC))
	b := startBroker(t, Config{Clock: fc.Now})
	c := dealer(t, b)
	n := newNode(t, b, "n", "report")
	n.credit(100)
	r := decodeResp(t, c.call(`{"jsonrpc":"2.0","id":1,"method":"broker.schedule.set","params":{"name":"daily","cron":"0 9 * * *","tz":"America/New_York","method":"report","params":{"kind":"daily"},"options":{"priority":3}}}`))
	if r.Error != nil {
		t.Fatal(r.Error)
	}
	l := listSchedules(t, c)
	if len(l) != 1 || time.UnixMilli(l[0].NextMS).UTC() != time.Date(2026, 3, 7, 14, 0, 0, 0, time.UTC) {
		t.Fatalf("list: %+v", l)
	}
	fc.Add(59 * time.Second) // 08:59:59 in New York: nothing yet
	n.none()
	fc.Add(time.Second)
	ts := n.collect(1)
	if string(ts[0].Params) != `{"kind":"daily"}` {
		t.Fatalf("params %s", ts[0].Params)
	}
	n.result(ts[0].ID, "1")
	// The next day New York is on daylight saving time: 09:00 is 13:00 UTC.
	fc.Add(22*time.Hour + 59*time.Minute + 59*time.Second) // 2026-03-08 12:59:59 UTC
	n.none()
	fc.Add(time.Second)
	ts = n.collect(1)
	n.result(ts[0].ID, "1")
	l = listSchedules(t, c)
	if got := time.UnixMilli(l[0].LastMS).UTC(); got != time.Date(2026, 3, 8, 13, 0, 0, 0, time.UTC) {
		t.Fatalf("last tick %v, want 13:00 UTC", got)
	}
	r = decodeResp(t, c.call(`{"jsonrpc":"2.0","id":2,"method":"broker.schedule.remove","params":{"name":"daily"}}`))
	if string(r.Result) != "true" {
		t.Fatalf("remove: %+v %s", r.Error, r.Result)
	}
	fc.Add(24 * time.Hour)
	n.none()
	if l := listSchedules(t, c); len(l) != 0 {
		t.Fatalf("list after remove: %+v", l)
	}
}

// TestScheduleMisfire: ticks missed by more than the grace (the clock jumped) are dropped
// with "skip" and run once with "once".
func TestScheduleMisfire(t *testing.T) {
	for _, tc := range []struct {
		policy string
		want   int
	}{{protocol.MisfireSkip, 0}, {protocol.MisfireOnce, 1}} {
		t.Run(tc.policy, func(t *testing.T) {
			fc := newFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 500_000_000, time.UTC))
			b := startBroker(t, Config{Clock: fc.Now, Schedules: []protocol.Schedule{
				{Name: "m", EveryMS: 60_000, Method: "job", Misfire: tc.policy},
			}})
			n := newNode(t, b, "n", "job")
			n.credit(100)
			fc.Add(10*time.Minute + 30*time.Second) // ten ticks missed, the last 30 s ago
			if tc.want > 0 {
				n.collect(tc.want)
			}
			n.none()
			// Then ticks run on time again.
			fc.Add(30 * time.Second)
			n.collect(1)
		})
	}
}

// TestScheduleTwoBrokersOneRedis: a schedule every second, on two brokers that share one
// Redis, for 10 s of a fake clock: each tick runs once (10 runs), though both brokers submit
// every tick; a schedule set on one broker reaches the other through the store.
func TestScheduleTwoBrokersOneRedis(t *testing.T) {
	addr := testutil.StartRedis(t)
	fc := newFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 500_000_000, time.UTC))
	sched := []protocol.Schedule{{Name: "beat", EveryMS: 1000, Method: "beat", Params: json.RawMessage(`[1]`)}}
	brokers := []*Broker{
		startBroker(t, Config{Store: redisStoreFor(t, addr), StoreOwner: "a", Clock: fc.Now, Schedules: sched}),
		startBroker(t, Config{Store: redisStoreFor(t, addr), StoreOwner: "b", Clock: fc.Now}),
	}
	ticks := func(b *Broker) uint64 {
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.c.cnt.ticks
	}
	known := func(b *Broker, name string) bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		_, ok := b.c.periodics[name]
		return ok
	}
	for _, b := range brokers {
		testutil.Eventually(t, wait, func() bool { return known(b, "beat") }, "the schedule reaches both brokers")
	}
	var fleets []*limitFleet
	for _, b := range brokers {
		fleets = append(fleets, startFleet(t, b, 1, "beat", func(int64, ntask) (time.Duration, string) { return 0, "" }))
	}
	for step := 1; step <= 10; step++ {
		fc.Add(time.Second)
		for _, b := range brokers {
			testutil.Eventually(t, wait, func() bool { return ticks(b) == uint64(step) }, "step %d: both brokers submit the tick", step)
		}
	}
	ran := func() int64 { return fleets[0].ran.Load() + fleets[1].ran.Load() }
	testutil.Eventually(t, wait, func() bool {
		idle := true
		for _, b := range brokers {
			st := b.Stats()
			idle = idle && st.Storing == 0 && st.Queued == 0 && st.Running == 0
		}
		return idle && ran() >= 9
	}, "the ticks run")
	got := ran()
	var dup uint64
	for _, b := range brokers {
		dup += b.Stats().Duplicate
	}
	if got < 9 || got > 11 {
		t.Fatalf("a schedule every second for 10 s on two brokers ran %d times, want 10 +- 1", got)
	}
	t.Logf("10 s, every second, two brokers on one Redis: %d runs (%d on a, %d on b), %d submits found the tick's key taken",
		got, fleets[0].ran.Load(), fleets[1].ran.Load(), dup)

	// Set on b, it runs on a too (through the store), and the list shows the last tick.
	cb := dealer(t, brokers[1])
	r := decodeResp(t, cb.call(`{"jsonrpc":"2.0","id":1,"method":"broker.schedule.set","params":{"name":"other","every_ms":60000,"method":"beat"}}`))
	if r.Error != nil {
		t.Fatal(r.Error)
	}
	testutil.Eventually(t, wait, func() bool { return known(brokers[0], "other") }, "a schedule set on b reaches a")
	l := listSchedules(t, cb)
	if len(l) != 2 || l[0].Name != "beat" || l[0].LastMS != fc.Now().Add(-500*time.Millisecond).UnixMilli() {
		t.Fatalf("list: %+v", l)
	}
	r = decodeResp(t, cb.call(`{"jsonrpc":"2.0","id":2,"method":"broker.schedule.remove","params":["beat"]}`))
	if string(r.Result) != "true" {
		t.Fatalf("remove: %+v %s", r.Error, r.Result)
	}
	testutil.Eventually(t, wait, func() bool { return !known(brokers[0], "beat") }, "a schedule removed on b leaves a")
}

// TestScheduleConfigRefused: New refuses an invalid schedule of Config.Schedules.
func TestScheduleConfigRefused(t *testing.T) {
	_, err := New(Config{Listen: "tcp://127.0.0.1:0", Pub: PubDisabled, Schedules: []protocol.Schedule{{Name: "x", Method: "m", Cron: "bad"}}})
	if err == nil || !strings.Contains(err.Error(), `schedule "x"`) {
		t.Fatalf("New: %v", err)
	}
	_, err = New(Config{Listen: "tcp://127.0.0.1:0", Pub: PubDisabled, Limits: []protocol.Limit{{Scope: "nope", Name: "m", Rate: 1}}})
	if err == nil || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("New: %v", err)
	}
}

// TestScheduleBounds: the bounds of a schedule and of a task's key group, at and past them.
func TestScheduleBounds(t *testing.T) {
	r := newRig(t, Config{})
	for _, tc := range []struct {
		sp protocol.Schedule
		ok bool
	}{
		{protocol.Schedule{Name: strings.Repeat("n", protocol.MaxScheduleName), Method: "m", EveryMS: 1000}, true},
		{protocol.Schedule{Name: strings.Repeat("n", protocol.MaxScheduleName+1), Method: "m", EveryMS: 1000}, false},
		{protocol.Schedule{Name: "s", Method: "m", EveryMS: protocol.MinEvery.Milliseconds()}, true},
		{protocol.Schedule{Name: "s", Method: "m", EveryMS: protocol.MinEvery.Milliseconds() - 1}, false},
		{protocol.Schedule{Name: "s", Method: "m", EveryMS: protocol.DefaultMaxDelay.Milliseconds()}, true},
		{protocol.Schedule{Name: "s", Method: "m", EveryMS: protocol.DefaultMaxDelay.Milliseconds() + 1}, false},
	} {
		if _, e := r.c.parseSchedule(tc.sp); (e == nil) != tc.ok {
			t.Errorf("name %d bytes, every_ms %d: error %v, want ok %v", len(tc.sp.Name), tc.sp.EveryMS, e, tc.ok)
		}
	}
	b := startBroker(t, Config{})
	c := dealer(t, b)
	for _, tc := range []struct {
		group string
		ok    bool
	}{{strings.Repeat("g", protocol.MaxGroupLen), true}, {strings.Repeat("g", protocol.MaxGroupLen+1), false}, {"", false}} {
		res := submitExt(t, c, "m", "[]", `"key_group":"`+tc.group+`"`)
		if (res.Error == nil) != tc.ok {
			t.Errorf("key_group of %d bytes: %+v, want ok %v", len(tc.group), res.Error, tc.ok)
		}
	}
}

// FuzzScheduleSpec: any cron expression, zone and interval is refused or gives a schedule
// whose ticks move forward (and never panics).
func FuzzScheduleSpec(f *testing.F) {
	for _, s := range []string{"* * * * *", "*/5 * * * * *", "0 9 * * MON-FRI", "@hourly", "@every 90s", "CRON_TZ=Asia/Tokyo 0 0 1 * *", "0 0 30 2 *", "60 * * * *", "TZ=", "@every -1s"} {
		f.Add(s, "", int64(0))
	}
	f.Add("", "Europe/Paris", int64(1000))
	f.Add("0 0 * * *", "Nowhere/Nothing", int64(0))
	r := newRig(f, Config{})
	f.Fuzz(func(t *testing.T, expr, tz string, every int64) {
		s, e := r.c.parseSchedule(protocol.Schedule{Name: "f", Method: "m", Cron: expr, TZ: tz, EveryMS: every})
		if e != nil {
			return
		}
		at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
		for range 3 {
			nx := s.after(at)
			if nx <= at {
				t.Fatalf("%q %q %d: tick %d after %d", expr, tz, every, nx, at)
			}
			if nx == math.MaxInt64 {
				return
			}
			at = nx
		}
	})
}
