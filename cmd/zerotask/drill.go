package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/zerotask/zerotask/dispatch"
)

// drillEnv names the directory where `zerotask node` (and `up`) record every task they start,
// for the reliability drills of the end-to-end tests (kill -9, SIGSTOP, soak), which count how
// many times each task ran across node processes. It is not a flag on purpose: it exists for
// those tests only. Each process appends to <dir>/<pid>.log one line per task start, "<unix
// milliseconds> <method> <raw params>", with one write(2) each, so that a line is on disk even
// if the process is killed right after.
const drillEnv = "ZEROTASK_DRILL_LOG"

// useDrill adds the recording middleware to d when drillEnv is set.
func useDrill(d *dispatch.Dispatcher) error {
	dir := os.Getenv(drillEnv)
	if dir == "" {
		return nil
	}
	f, err := os.OpenFile(filepath.Join(dir, strconv.Itoa(os.Getpid())+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("%s: %w", drillEnv, err)
	}
	var mu sync.Mutex
	var line []byte
	d.Use(func(name string, next dispatch.Handler) dispatch.Handler {
		return dispatch.HandlerFunc(func(ctx context.Context, dst, params []byte) ([]byte, error) {
			mu.Lock()
			line = strconv.AppendInt(line[:0], time.Now().UnixMilli(), 10)
			line = append(append(append(append(append(line, ' '), name...), ' '), params...), '\n')
			_, _ = f.Write(line)
			mu.Unlock()
			return next.ServeRPC(ctx, dst, params)
		})
	})
	return nil
}
