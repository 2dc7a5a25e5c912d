package e2e

import (
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zerotask/zerotask/internal/testutil"
)

// pythonDir is the Python package's source, from the e2e directory.
const pythonDir = "../python"

// pythonWith returns a python3 with pyzmq that can also import each of modules (Debian's
// python3-pytest, python3-venv's ensurepip, ...), or reports the missing one (a failure under CI).
func pythonWith(t *testing.T, modules map[string]string) string {
	t.Helper()
	python := testutil.PythonZMQ(t)
	for mod, pkg := range modules {
		if exec.Command(python, "-c", "import "+mod).Run() != nil {
			testutil.Missing(t, "python3 module %s (apt-get install -y %s)", mod, pkg)
		}
	}
	return python
}

// TestPythonErrorCodes: the Python package's list of the broker's error codes
// (python/zerotask/errors.py, CODES) is exactly protocol's Code* constants, names and values.
func TestPythonErrorCodes(t *testing.T) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "../protocol/errors.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, s := range g.Specs {
			vs := s.(*ast.ValueSpec)
			for i, name := range vs.Names {
				if !strings.HasPrefix(name.Name, "Code") || i >= len(vs.Values) {
					continue
				}
				v, ok := intLiteral(vs.Values[i])
				if !ok {
					t.Fatalf("protocol.%s is not an integer literal: update this test", name.Name)
				}
				want[name.Name] = v
			}
		}
	}
	src, err := os.ReadFile(filepath.Join(pythonDir, "zerotask", "errors.py"))
	if err != nil {
		t.Fatal(err)
	}
	block := regexp.MustCompile(`(?s)CODES = \{(.*?)\n\}`).FindSubmatch(src)
	if block == nil {
		t.Fatal("errors.py: no CODES = {...} block")
	}
	got := map[string]int{}
	for _, m := range regexp.MustCompile(`"(\w+)":\s*(-?\d+)`).FindAllSubmatch(block[1], -1) {
		v, _ := strconv.Atoi(string(m[2]))
		got[string(m[1])] = v
	}
	if len(want) == 0 {
		t.Fatal("no Code* constants found in protocol/errors.go")
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("errors.py CODES[%q] = %d (present %v), protocol.%s = %d", k, g, ok, k, v)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("errors.py CODES has %q, which protocol does not define", k)
		}
	}
}

func intLiteral(e ast.Expr) (int, bool) {
	sign := 1
	if u, ok := e.(*ast.UnaryExpr); ok && u.Op == token.SUB {
		sign, e = -1, u.X
	}
	b, ok := e.(*ast.BasicLit)
	if !ok || b.Kind != token.INT {
		return 0, false
	}
	v, err := strconv.Atoi(b.Value)
	return sign * v, err == nil
}

// TestPythonWalkthrough is the Python package's acceptance: in a copy of the tree,
// `python3 -m venv --system-site-packages v && v/bin/pip install --no-build-isolation ./python`
// installs it offline, and against `zerotask broker` with `python -m zerotask.node` running, the
// walkthrough (python/examples/walkthrough.py: Client.add and AsyncClient.add + wait) prints 11
// twice.
func TestPythonWalkthrough(t *testing.T) {
	python := pythonWith(t, map[string]string{"ensurepip": "python3-venv", "setuptools": "python3-setuptools"})
	dir := t.TempDir()
	if out, err := exec.Command("cp", "-r", pythonDir, filepath.Join(dir, "python")).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	install := exec.CommandContext(ctx, "sh", "-c",
		python+" -m venv --system-site-packages v && v/bin/pip install --no-build-isolation ./python")
	install.Dir = dir
	install.Env = append(os.Environ(), "PIP_NO_INDEX=1", "PIP_DISABLE_PIP_VERSION_CHECK=1")
	install.WaitDelay = 5 * time.Second
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("venv + pip install: %v\n%s", err, out)
	}
	vpy := filepath.Join(dir, "v", "bin", "python")

	_, m := startDaemon(t, brokerLine, "broker", "--listen", "tcp://127.0.0.1:0", "--pub", "tcp://127.0.0.1:0", "--log-level", "warn")
	router, pub := m[1], m[2]
	startPyProc(t, vpy, "-m", "zerotask.node", "--broker", router, "--sub", pub)
	run := exec.CommandContext(ctx, vpy, filepath.Join(dir, "python", "examples", "walkthrough.py"), router)
	run.Dir = dir
	run.WaitDelay = 5 * time.Second
	var stderr testutil.Buffer
	run.Stderr = &stderr
	out, err := run.Output()
	if err != nil {
		t.Fatalf("walkthrough.py: %v\nstdout: %s\nstderr: %s", err, out, stderr.String())
	}
	if string(out) != "11\n11\n" {
		t.Fatalf("walkthrough.py printed %q, want %q\nstderr: %s", out, "11\n11\n", stderr.String())
	}
}

// TestPythonPackage runs the Python package's own tests (python/tests, pytest) against the
// zerotask binary built for this run: Python and Go nodes side by side, Python client to a Go
// node and Go client to a Python node, kill -9 of a Python node under load with every answer
// checked, a broker restart, revoke, deadlines and retries.
func TestPythonPackage(t *testing.T) {
	python := pythonWith(t, map[string]string{"pytest": "python3-pytest"})
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	abs, err := filepath.Abs(pythonDir)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", filepath.Join(abs, "tests")}
	if testing.Verbose() {
		args = append(args, "-v")
	}
	cmd := exec.CommandContext(ctx, python, args...)
	cmd.Env = append(os.Environ(), "PYTHONPATH="+abs, "ZEROTASK_BIN="+zerotaskBin, "PYTHONDONTWRITEBYTECODE=1")
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	t.Logf("pytest:\n%s", out)
	if err != nil {
		t.Fatalf("pytest: %v", err)
	}
	if strings.Contains(string(out), " skipped") {
		t.Fatalf("pytest skipped tests: every Python test must run")
	}
}

// startPyProc starts a Python process (the calls made before it is ready wait at the broker)
// and kills it by PID when the test ends.
func startPyProc(t *testing.T, python string, args ...string) {
	t.Helper()
	cmd := exec.Command(python, args...)
	var out testutil.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("%s %s:\n%s", python, strings.Join(args, " "), out.String())
		}
	})
}
