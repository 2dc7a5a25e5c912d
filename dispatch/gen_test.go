package dispatch

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/zerotask/zerotask/internal/testutil"
)

// TestAdaptersGenerated checks that adapters.go is what gen_adapters.go writes today.
func TestAdaptersGenerated(t *testing.T) {
	testutil.SkipShort(t, "the generator test")
	goBin := testutil.Binary(t, "go", "the Go toolchain")
	out := filepath.Join(t.TempDir(), "adapters.go")
	cmd := exec.Command(goBin, "run", "gen_adapters.go", "-o", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go run gen_adapters.go: %v\n%s", err, b)
	}
	want, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("adapters.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("adapters.go is out of date: run go generate ./dispatch")
	}
}
