package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zerotask/zerotask/internal/testutil"
)

// TestServeCPUProfile: broker, node and up write a pprof CPU profile (gzip) of their whole run
// with --cpuprofile once stopped, and refuse a path they cannot create.
func TestServeCPUProfile(t *testing.T) {
	tests := []struct {
		cmd   string
		args  []string
		ready string
	}{
		{"broker", []string{"--listen", "tcp://127.0.0.1:0", "--pub", "none"}, "broker listening on"},
		{"node", []string{"--broker", "tcp://127.0.0.1:1", "--sub", "none"}, "node serving"},
		{"up", []string{"--listen", "tcp://127.0.0.1:0", "--pub", "none", "--concurrency", "1"}, "broker listening on"},
	}
	for _, tc := range tests {
		t.Run(tc.cmd, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "cpu.prof")
			ctx, stop := context.WithCancel(context.Background())
			defer stop()
			var out, errOut testutil.Buffer
			exited := make(chan int, 1)
			args := append([]string{tc.cmd, "--cpuprofile", path, "--log-level", "error"}, tc.args...)
			go func() { exited <- run(ctx, args, &stdio{out: &out, err: &errOut}) }()
			testutil.Eventually(t, 10*time.Second, func() bool { return strings.Contains(out.String(), tc.ready) },
				"%s never got ready: stdout %q, stderr %q", tc.cmd, out.String(), errOut.String())
			stop()
			select {
			case code := <-exited:
				if code != exitOK {
					t.Fatalf("exit %d, stderr %q", code, errOut.String())
				}
			case <-time.After(20 * time.Second):
				t.Fatal("did not stop")
			}
			b, err := os.ReadFile(path)
			if err != nil || !bytes.HasPrefix(b, []byte{0x1f, 0x8b}) {
				t.Fatalf("profile: %d bytes, %v; want a gzip-compressed pprof profile", len(b), err)
			}
			code, _, stderr := runArgs(t, tc.cmd, "--cpuprofile", filepath.Join(t.TempDir(), "no", "such", "dir"))
			if code == exitOK || !strings.Contains(stderr, "--cpuprofile") {
				t.Errorf("unwritable --cpuprofile: exit %d, stderr %q", code, stderr)
			}
		})
	}
}
