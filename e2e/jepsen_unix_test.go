//go:build !windows

package e2e

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zerotask/zerotask/internal/faultproxy"
	"github.com/zerotask/zerotask/internal/testutil"
)

// The Jepsen-style suite of durable mode: the chaos suite's system (a real `zerotask broker
// --store redis://...`, three `zerotask node`s, a load client submitting echo tasks whose params
// are unique tokens, a good client) with the faults laid on Redis instead: a fault proxy between
// broker and Redis (cut, stall past the store timeout, delay, a partition of one of two brokers
// from Redis while its nodes still reach it), SIGSTOP of Redis and DEBUG SLEEP past every
// timeout, kill -9 of Redis and a restart on its append-only file, Redis full (maxmemory under
// noeviction) then freed, and Redis's clock jumping (an LD_PRELOAD time shim). Each run's history
// is checked as in TestChaos (every acknowledged task SUCCESS with its own answer, nothing
// refused ran, duplicates within docs/durability.md's bound, nothing stuck) and the same table
// is printed.
//
// ZEROTASK_JEPSEN_TASKS sets the acknowledged tasks per kind (default 600), ZEROTASK_JEPSEN_FAULTS
// the faults per kind (default 2), ZEROTASK_JEPSEN_SEED the seed, ZEROTASK_JEPSEN_KINDS a
// comma-separated list of substrings selecting kinds by name.

const (
	// jepsenLease is the brokers' lease in Redis: short, so that a fault can outlast it (the
	// lease expires, the owner is fenced) within a CI run.
	jepsenLease = 4 * time.Second
	// jepsenPastTimeouts is how long a stall, a SIGSTOP or a DEBUG SLEEP lasts at least: past
	// the broker's StoreTimeout (5 s) and the lease.
	jepsenPastTimeouts = 6 * time.Second
)

// jepsenRedis is the Redis of one kind's system, and what sits between it and the broker.
type jepsenRedis struct {
	srv   *testutil.RedisServer
	proxy *faultproxy.Proxy // between the (first) broker and Redis; nil when direct
	shift string            // the clock shim's offset file (seconds), "" without the shim
	jumps int               // clock jumps made: they alternate forward and back
}

func TestJepsen(t *testing.T) {
	testutil.SkipShort(t, "Jepsen-style durable suite")
	quota := chaosEnvInt(t, "ZEROTASK_JEPSEN_TASKS", 600)
	faults := chaosEnvInt(t, "ZEROTASK_JEPSEN_FAULTS", 2)
	seed := uint64(chaosEnvInt(t, "ZEROTASK_JEPSEN_SEED", int(time.Now().UnixNano()%1_000_000+1)))
	t.Logf("jepsen: %d tasks and %d faults per kind, seed %d (ZEROTASK_JEPSEN_SEED=%d replays the choices)", quota, faults, seed, seed)
	// A fault on Redis may fence the broker: what its nodes held may run again, and the results
	// it had not written yet (docs/durability.md); no task more than once per fault.
	const bound = chaosNodes*chaosCapacity + 2*1024
	kinds := []chaosFault{
		{name: "redis proxy cut", redis: jepsenProxied, do: faultRedisProxyCut},
		{name: "redis proxy stall past timeouts", redis: jepsenProxied, do: faultRedisProxyStall},
		{name: "redis proxy delay 1-50 ms", redis: jepsenProxied, do: faultRedisProxyDelay},
		{name: "partition of one of two brokers", redis: jepsenPartitioned, do: faultRedisPartition},
		{name: "redis SIGSTOP past timeouts", redis: jepsenDirect, do: faultRedisStop},
		{name: "redis DEBUG SLEEP past timeouts", redis: jepsenDirect, do: faultRedisDebugSleep},
		{name: "redis kill -9, AOF restart", redis: jepsenDirect, do: faultRedisKill},
		{name: "redis maxmemory full", redis: jepsenDirect, do: faultRedisFull},
		{name: "redis clock jump 2 min each way", redis: jepsenClock, do: faultRedisClockJump},
		// A jump ends both brokers' leases at once on Redis's clock: each may be fenced, and
		// a task run once more per broker.
		{name: "redis clock jump 2 min each way, two brokers", redis: jepsenClockPartnered, do: faultRedisClockJump, parties: 2},
	}
	var sel []string
	if v := os.Getenv("ZEROTASK_JEPSEN_KINDS"); v != "" {
		sel = strings.Split(v, ",")
	}
	var run []chaosFault
	for _, k := range kinds {
		k.durable, k.bound, k.parties = true, bound, max(k.parties, 1)
		if sel == nil || containsAny(k.name, sel) {
			run = append(run, k)
		}
	}
	rows := make([]chaosRow, len(run))
	start := time.Now()
	t.Run("faults", func(t *testing.T) {
		for i, k := range run {
			t.Run(strings.NewReplacer(" ", "_", "/", "_").Replace(k.name), func(t *testing.T) {
				t.Parallel()
				rows[i] = runChaos(t, k, quota, faults, seed+uint64(i))
			})
		}
	})
	var b strings.Builder
	writeChaosTable(&b, rows)
	t.Logf("jepsen suite: %v in all\n%s", time.Since(start).Round(time.Second), b.String())
	if f := os.Getenv("ZEROTASK_JEPSEN_TABLE"); f != "" {
		if err := os.WriteFile(f, []byte(b.String()), 0o644); err != nil {
			t.Error(err)
		}
	}
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if sub = strings.TrimSpace(sub); sub != "" && strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// storeFlags are the broker's flags for a Redis at addr under owner.
func storeFlags(addr, owner string) []string {
	return []string{"--store", fmt.Sprintf("redis://%s/0?lease=%v", addr, jepsenLease), "--owner", owner}
}

func jepsenStart(t *testing.T, s *chaosSystem, o testutil.RedisOptions) *jepsenRedis {
	o.AppendOnly = true
	o.Args = append(o.Args, "--enable-debug-command", "local")
	s.redis = &jepsenRedis{srv: testutil.StartRedisServer(t, o)}
	return s.redis
}

// jepsenDirect: the broker talks to Redis directly.
func jepsenDirect(t *testing.T, s *chaosSystem, seed uint64) []string {
	r := jepsenStart(t, s, testutil.RedisOptions{})
	return storeFlags(r.srv.Addr, "jepsen-a")
}

// jepsenProxied: the broker talks to Redis through a fault proxy.
func jepsenProxied(t *testing.T, s *chaosSystem, seed uint64) []string {
	r := jepsenStart(t, s, testutil.RedisOptions{})
	p, err := faultproxy.Start(faultproxy.Config{Target: r.srv.Addr, Seed: seed})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	r.proxy = p
	return storeFlags(p.Addr(), "jepsen-a")
}

// jepsenPartitioned: two brokers on one Redis, the first (the chaos system's, which the
// clients use) through a fault proxy, the second direct; the nodes connect to both.
func jepsenPartitioned(t *testing.T, s *chaosSystem, seed uint64) []string {
	flags := jepsenProxied(t, s, seed)
	_, m := startDaemon(t, brokerLine, append([]string{"broker", "--listen", "tcp://127.0.0.1:0", "--pub", "tcp://127.0.0.1:0",
		"--log-level", "error", "--heartbeat", chaosHB.String()}, storeFlags(s.redis.srv.Addr, "jepsen-b")...)...)
	s.peerRouter, s.peerPub = m[1], m[2]
	return flags
}

// The faults. Each does its fault once and returns when the system has settled.

// faultRedisProxyCut cuts the broker's connections to Redis: at once, within the next 4 KiB
// (mid-reply, between a write and its answer), or at once with new connections refused for up
// to 2 s.
func faultRedisProxyCut(t *testing.T, s *chaosSystem, rnd *rand.Rand) {
	p := s.redis.proxy
	switch rnd.IntN(3) {
	case 0:
		p.CutOpen(faultproxy.Cut{})
	case 1:
		p.CutOpen(faultproxy.Cut{Dir: randDir(rnd), Within: 1 + rnd.IntN(4096), By: time.Second})
	case 2:
		p.Refuse(true)
		p.CutOpen(faultproxy.Cut{})
		time.Sleep(durN(rnd, 2*time.Second)) // the refusal's length itself
		p.Refuse(false)
	}
	s.settled()
}

// faultRedisProxyStall stalls one or both directions between broker and Redis past the store
// timeout and the lease.
func faultRedisProxyStall(t *testing.T, s *chaosSystem, rnd *rand.Rand) {
	d := jepsenPastTimeouts + durN(rnd, time.Second)
	if _, err := s.redis.proxy.Stall(randDir(rnd), d); err != nil {
		t.Fatal(err)
	}
	time.Sleep(d) // the stall's length itself
	s.settled()
}

// faultRedisProxyDelay delays the broker's Redis traffic by 1-50 ms each way for 1 to 3 s.
func faultRedisProxyDelay(t *testing.T, s *chaosSystem, rnd *rand.Rand) {
	lo := time.Millisecond + durN(rnd, 10*time.Millisecond)
	hi := lo + durN(rnd, 50*time.Millisecond-lo)
	if err := s.redis.proxy.SetDelay(lo, hi); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second + durN(rnd, 2*time.Second)) // the fault's length itself
	_ = s.redis.proxy.SetDelay(0, 0)
	s.settled()
}

// faultRedisPartition cuts the first broker off from Redis (its connections cut, new ones
// refused) for longer than its lease, while its nodes and clients still reach it and the
// second broker, whose nodes are idle, claims what the first held.
func faultRedisPartition(t *testing.T, s *chaosSystem, rnd *rand.Rand) {
	p := s.redis.proxy
	p.Refuse(true)
	p.CutOpen(faultproxy.Cut{})
	time.Sleep(jepsenLease + 2*time.Second + durN(rnd, time.Second)) // the partition's length itself
	p.Refuse(false)
	s.settled()
}

// faultRedisStop stops Redis (SIGSTOP) past every timeout, then continues it.
func faultRedisStop(t *testing.T, s *chaosSystem, rnd *rand.Rand) {
	pid := s.redis.srv.PID()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	time.Sleep(jepsenPastTimeouts + durN(rnd, time.Second)) // the stop's length itself
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	s.settled()
}

// faultRedisDebugSleep blocks Redis with DEBUG SLEEP past every timeout.
func faultRedisDebugSleep(t *testing.T, s *chaosSystem, rnd *rand.Rand) {
	d := jepsenPastTimeouts + durN(rnd, time.Second)
	if _, err := redisDo(s.redis.srv.Addr, d+30*time.Second, "DEBUG", "SLEEP", strconv.FormatFloat(d.Seconds(), 'f', 3, 64)); err != nil {
		t.Fatalf("DEBUG SLEEP: %v", err)
	}
	s.settled()
}

// faultRedisKill kills Redis with SIGKILL and restarts it on its append-only file (appendfsync
// always) after up to a second.
func faultRedisKill(t *testing.T, s *chaosSystem, rnd *rand.Rand) {
	s.redis.srv.Kill()
	time.Sleep(durN(rnd, time.Second)) // the outage's length itself
	s.redis.srv.Restart()
	s.settled()
}

// faultRedisFull sets maxmemory below what Redis uses (noeviction: every write is refused with
// OOM) for 1 to 6 s, past the lease at times, then frees it.
func faultRedisFull(t *testing.T, s *chaosSystem, rnd *rand.Rand) {
	addr := s.redis.srv.Addr
	if _, err := redisDo(addr, 10*time.Second, "CONFIG", "SET", "maxmemory", "1"); err != nil {
		t.Fatalf("CONFIG SET maxmemory 1: %v", err)
	}
	time.Sleep(time.Second + durN(rnd, 5*time.Second)) // the fault's length itself
	if _, err := redisDo(addr, 10*time.Second, "CONFIG", "SET", "maxmemory", "0"); err != nil {
		t.Fatalf("CONFIG SET maxmemory 0: %v", err)
	}
	s.settled()
}

// redisDo sends one command to the Redis at addr and returns its reply's first line (a bulk
// reply's body), or an error for an error reply.
func redisDo(addr string, timeout time.Duration, args ...string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write([]byte(b.String())); err != nil {
		return "", err
	}
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	switch {
	case strings.HasPrefix(line, "-"):
		return "", fmt.Errorf("redis: %s", line[1:])
	case strings.HasPrefix(line, "$"):
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return "", err
		}
		body := make([]byte, n+2)
		if _, err := io.ReadFull(r, body); err != nil {
			return "", err
		}
		return string(body[:n]), nil
	}
	return line, nil
}

// clockShim is an LD_PRELOAD library that shifts the realtime clock (clock_gettime of the
// realtime clocks, gettimeofday, time) by the whole seconds written in the file named by
// ZEROTASK_CLOCK_SHIFT, read again at most every 20 ms of monotonic time. Monotonic clocks are
// left alone: what jumps is the wall clock, which Redis's TIME, its key expiry and the leases
// on it follow.
const clockShim = `#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static long long shift_ns, checked_ns;

static void refresh(void) {
	struct timespec m;
	if (syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &m) != 0) return;
	long long now = (long long)m.tv_sec * 1000000000LL + m.tv_nsec;
	if (__atomic_load_n(&checked_ns, __ATOMIC_RELAXED) != 0 && now - __atomic_load_n(&checked_ns, __ATOMIC_RELAXED) < 20000000LL) return;
	__atomic_store_n(&checked_ns, now, __ATOMIC_RELAXED);
	const char *name = getenv("ZEROTASK_CLOCK_SHIFT");
	if (!name) return;
	FILE *f = fopen(name, "r");
	if (!f) return;
	long long s;
	if (fscanf(f, "%lld", &s) == 1) __atomic_store_n(&shift_ns, s * 1000000000LL, __ATOMIC_RELAXED);
	fclose(f);
}

static void shift(struct timespec *ts) {
	refresh();
	long long t = (long long)ts->tv_sec * 1000000000LL + ts->tv_nsec + __atomic_load_n(&shift_ns, __ATOMIC_RELAXED);
	ts->tv_sec = t / 1000000000LL;
	ts->tv_nsec = t % 1000000000LL;
}

int clock_gettime(clockid_t c, struct timespec *ts) {
	int r = syscall(SYS_clock_gettime, c, ts);
	if (r == 0 && (c == CLOCK_REALTIME || c == CLOCK_REALTIME_COARSE)) shift(ts);
	return r;
}

int gettimeofday(struct timeval *tv, void *tz) {
	struct timespec ts;
	int r = clock_gettime(CLOCK_REALTIME, &ts);
	if (r == 0 && tv) { tv->tv_sec = ts.tv_sec; tv->tv_usec = ts.tv_nsec / 1000; }
	return r;
}

time_t time(time_t *out) {
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	if (out) *out = ts.tv_sec;
	return ts.tv_sec;
}
`

// buildClockShim compiles clockShim with gcc into dir and returns the library's path. A
// missing gcc skips the test, and fails it under CI.
func buildClockShim(t *testing.T, dir string) string {
	gcc := testutil.Binary(t, "gcc", "apt-get install -y gcc")
	src, lib := filepath.Join(dir, "clockshim.c"), filepath.Join(dir, "clockshim.so")
	if err := os.WriteFile(src, []byte(clockShim), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(gcc, "-shared", "-fPIC", "-O2", "-o", lib, src).CombinedOutput(); err != nil {
		t.Fatalf("gcc clockshim.c: %v\n%s", err, out)
	}
	return lib
}

// jepsenClock: Redis runs with the clock shim; its shift starts at 0.
func jepsenClock(t *testing.T, s *chaosSystem, seed uint64) []string {
	dir := t.TempDir()
	lib := buildClockShim(t, dir)
	shift := filepath.Join(dir, "shift")
	if err := os.WriteFile(shift, []byte("0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := jepsenStart(t, s, testutil.RedisOptions{Env: []string{"LD_PRELOAD=" + lib, "ZEROTASK_CLOCK_SHIFT=" + shift}})
	r.shift = shift
	// The shim is in effect: TIME follows the file.
	before := redisTime(t, r.srv.Addr)
	setShift(t, r, 3600)
	testutil.Eventually(t, 10*time.Second, func() bool { return redisTime(t, r.srv.Addr)-before > 3000 }, "Redis's TIME jumped an hour")
	setShift(t, r, 0)
	testutil.Eventually(t, 10*time.Second, func() bool { return redisTime(t, r.srv.Addr)-before < 3000 }, "Redis's TIME back")
	return storeFlags(r.srv.Addr, "jepsen-a")
}

func setShift(t *testing.T, r *jepsenRedis, sec int) {
	if err := os.WriteFile(r.shift, []byte(strconv.Itoa(sec)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// redisTime returns Redis's TIME in seconds.
func redisTime(t *testing.T, addr string) int64 {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("TIME\r\n")); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	for range 2 { // "*2", "$10"
		if _, err := r.ReadString('\n'); err != nil {
			t.Fatal(err)
		}
	}
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(line), 10, 64)
	if err != nil {
		t.Fatalf("TIME: %q", line)
	}
	return n
}

// jepsenClockPartnered: two brokers on one Redis with the clock shim, both direct; the nodes
// connect to both. A jump past the lease ends the first broker's lease on Redis's clock while
// it lives, and the second, whose nodes are idle, claims its tasks (the "+60 s" case).
func jepsenClockPartnered(t *testing.T, s *chaosSystem, seed uint64) []string {
	flags := jepsenClock(t, s, seed)
	_, m := startDaemon(t, brokerLine, append([]string{"broker", "--listen", "tcp://127.0.0.1:0", "--pub", "tcp://127.0.0.1:0",
		"--log-level", "error", "--heartbeat", chaosHB.String()}, storeFlags(s.redis.srv.Addr, "jepsen-b")...)...)
	s.peerRouter, s.peerPub = m[1], m[2]
	return flags
}

// jepsenClockJump is how far Redis's clock jumps at least: 2 minutes, each way.
const jepsenClockJump = 2 * time.Minute

// faultRedisClockJump jumps Redis's wall clock 2 to 2.5 minutes (far past the lease),
// forward and back in turn, for 1 to 3 s, then to the real time again: leases written
// meanwhile end that far off.
func faultRedisClockJump(t *testing.T, s *chaosSystem, rnd *rand.Rand) {
	jump := int(jepsenClockJump/time.Second) + rnd.IntN(31)
	if s.redis.jumps%2 == 1 {
		jump = -jump
	}
	s.redis.jumps++
	setShift(t, s.redis, jump)
	// Redis's TIME against the test's clock (one machine): off by the jump, within the whole
	// seconds TIME counts in. (Measured from a TIME read before the jump instead, the real
	// time passing meanwhile shrinks a backward jump of exactly 120 s below 120 s for good.)
	testutil.Eventually(t, 10*time.Second, func() bool {
		off := redisTime(t, s.redis.srv.Addr) - time.Now().Unix()
		return abs64(off-int64(jump)) <= 2
	}, "Redis's TIME jumped %d s", jump)
	time.Sleep(time.Second + durN(rnd, 2*time.Second)) // the jump's length itself
	setShift(t, s.redis, 0)
	s.settled()
	s.mu.Lock()
	fenced := strings.Count(s.broker.Stderr(), "lost its lease")
	s.mu.Unlock()
	t.Logf("redis clock jump %+d s: the broker lost its lease %d times so far", jump, fenced)
}

func abs64(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}
