package testutil

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// RedisOptions configures a redis-server started by StartRedisServer. The zero value is an
// in-memory server: no RDB snapshots, no append-only file.
type RedisOptions struct {
	// AppendOnly turns the append-only file on in the server's temp dir with appendfsync
	// always: Redis writes and fsyncs every write before its reply, so that acknowledged writes
	// survive a kill -9 of the server and a restart. (With everysec Redis may postpone the
	// write by up to 2 s while a background fsync is slow, and reply meanwhile: a kill -9 in
	// that window loses acknowledged writes, as a loaded test machine showed.)
	AppendOnly bool
	// Args are extra command-line arguments, e.g. "--maxmemory-policy", "allkeys-lru".
	Args []string
	// Env is extra environment for the server process ("NAME=value"), e.g. an LD_PRELOAD.
	Env []string
}

// RedisServer is a redis-server child process on a loopback port, owned by one test. It is
// killed by PID (SIGKILL) and waited for when the test ends.
type RedisServer struct {
	t    testing.TB
	path string
	opts RedisOptions
	// Addr is "127.0.0.1:PORT"; it stays the same across Restart.
	Addr string
	// Dir is the server's working directory (a temp dir of the test): AOF and logs live here.
	Dir string

	mu     sync.Mutex // guards proc and exited
	proc   *os.Process
	exited chan error // receives cmd.Wait's result once; its goroutine owns cmd.Wait
}

// redisStartDeadline bounds how long a starting redis-server may take to answer PING.
const redisStartDeadline = 15 * time.Second

// StartRedis starts Debian's redis-server on a free loopback port with no persistence and a
// temp dir, waits until it answers PING, and returns its address ("127.0.0.1:PORT"). The
// server is stopped when the test ends. A missing redis-server is reported with Missing (a
// failure under CI).
func StartRedis(t testing.TB) string {
	t.Helper()
	return StartRedisServer(t, RedisOptions{}).Addr
}

// StartRedisServer starts a redis-server with o, like StartRedis, and returns a handle that can
// kill it (kill -9) and start it again on the same port and dir.
func StartRedisServer(t testing.TB, o RedisOptions) *RedisServer {
	t.Helper()
	path := Binary(t, "redis-server", "apt-get install -y redis-server")
	r := &RedisServer{t: t, path: path, opts: o, Dir: t.TempDir()}
	t.Cleanup(r.Kill)
	var err error
	for try := 0; try < 3; try++ { // the free port may be taken between FreePort and bind
		r.Addr = fmt.Sprintf("127.0.0.1:%d", FreePort(t))
		if err = r.start(); err == nil {
			return r
		}
	}
	t.Fatalf("redis-server: %v", err)
	return nil
}

// Restart starts the server again on the same port and dir (after Kill), and waits for PING.
func (r *RedisServer) Restart() {
	r.t.Helper()
	var err error
	for try := 0; try < 3; try++ { // the old socket may linger for a moment
		if err = r.start(); err == nil {
			return
		}
	}
	r.t.Fatalf("redis-server restart: %v", err)
}

// Kill ends the server with SIGKILL (kill -9, by PID) and waits for it. Safe to call twice and
// on a server that is not running.
func (r *RedisServer) Kill() {
	r.mu.Lock()
	proc, exited := r.proc, r.exited
	r.proc, r.exited = nil, nil
	r.mu.Unlock()
	if proc == nil {
		return
	}
	_ = proc.Kill()
	<-exited // cmd.Wait reaped the child; its error is the kill signal
}

// PID returns the server's process id, 0 when it is not running.
func (r *RedisServer) PID() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proc == nil {
		return 0
	}
	return r.proc.Pid
}

func (r *RedisServer) start() error {
	_, port, _ := net.SplitHostPort(r.Addr)
	args := []string{
		"--port", port, "--bind", "127.0.0.1", "--dir", r.Dir,
		"--save", "", "--daemonize", "no", "--logfile", "", "--protected-mode", "yes",
		"--maxmemory-policy", "noeviction",
	}
	if r.opts.AppendOnly {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		args = append(args, "--appendonly", "no")
	}
	args = append(args, r.opts.Args...)
	logf, err := os.OpenFile(filepath.Join(r.Dir, "redis.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(r.path, args...)
	cmd.Dir = r.Dir
	if len(r.opts.Env) > 0 {
		cmd.Env = append(os.Environ(), r.opts.Env...)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", r.path, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(redisStartDeadline)
	for {
		if pingRedis(r.Addr) == nil {
			break
		}
		select {
		case err := <-exited:
			log, _ := os.ReadFile(filepath.Join(r.Dir, "redis.log"))
			return fmt.Errorf("redis-server on %s exited (%v):\n%s", r.Addr, err, tail(log, 2000))
		case <-time.After(10 * time.Millisecond): // polling interval, not synchronization
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Errorf("redis-server on %s: no PONG within %v", r.Addr, redisStartDeadline)
		}
	}
	r.mu.Lock()
	r.proc, r.exited = cmd.Process, exited
	r.mu.Unlock()
	return nil
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// pingRedis sends one inline PING and expects +PONG.
func pingRedis(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("PING answered %s", strconv.Quote(line))
	}
	return nil
}
