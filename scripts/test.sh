#!/usr/bin/env bash
# The whole ZeroTask check, as CI runs it: formatting, vet, staticcheck, race tests, every fuzz
# target for a short while, and static builds for every supported platform.
#
#   FUZZTIME=10s   how long each fuzz target runs (0 skips fuzzing)
#   TESTFLAGS=...  extra flags for `go test` (for example -run or -v)
#   STATICCHECK=.. a staticcheck binary to use (default: the pinned version, installed if missing)
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZTIME=${FUZZTIME:-10s}
step() { printf '\n==> %s (%s)\n' "$*" "$(date -u +%H:%M:%S)"; }

# The tests that need an outside program start it themselves; without it they skip (and fail
# under CI=true). Say up front which ones will skip here and how to get what they need.
deps() {
  local missing=() pkgs=()
  /usr/bin/python3 -c 'import zmq' >/dev/null 2>&1 || { missing+=("python3-zmq: libzmq interop (zmtp, CURVE), Python node drills (e2e)"); pkgs+=(python3-zmq); }
  /usr/bin/python3 -c 'import pytest, setuptools, ensurepip' >/dev/null 2>&1 || { missing+=("pytest, setuptools, venv: the Python package's tests (e2e TestPython*)"); pkgs+=(python3-pytest python3-setuptools python3-venv); }
  command -v redis-server >/dev/null 2>&1 || { missing+=("redis-server: durable mode, the store conformance suite, TestJepsen, asynq peer"); pkgs+=(redis-server); }
  command -v promtool >/dev/null 2>&1 || { missing+=("promtool: e2e TestMetrics"); pkgs+=(prometheus); }
  command -v chromium >/dev/null 2>&1 || { missing+=("chromium: the dashboard's browser test (dashboard TestDashboardInChromium)"); pkgs+=(chromium); }
  command -v gcc >/dev/null 2>&1 || { missing+=("gcc: TestJepsen's Redis clock shim"); pkgs+=(gcc libc6-dev); }
  [ ${#missing[@]} -eq 0 ] && return 0
  step "missing test dependencies"
  printf '  %s\n' "${missing[@]}"
  if [ "${CI:-}" = true ]; then
    echo "  under CI=true these tests fail instead of skipping"
  else
    echo "  these tests will be skipped; to run them: apt-get install -y ${pkgs[*]} (or run .ci/run as root)"
  fi
}
deps

step "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change these files:"; echo "$unformatted"; exit 1
fi

step "go vet ./..."
go vet ./...

# staticcheck, pinned; installed into GOBIN (or GOPATH/bin) from the module proxy when missing or
# at another version. STATICCHECK=path uses a binary already at hand instead.
STATICCHECK_VERSION=v0.8.2
step "staticcheck $STATICCHECK_VERSION ./..."
if [ -z "${STATICCHECK:-}" ]; then
  gobin=$(go env GOBIN); gobin=${gobin:-$(go env GOPATH)/bin}
  STATICCHECK=$gobin/staticcheck
  if ! "$STATICCHECK" -version 2>/dev/null | grep -qF "(${STATICCHECK_VERSION#v})"; then
    go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
  fi
fi
"$STATICCHECK" ./...

step "go test -race -count=1 ./..."
# shellcheck disable=SC2086
go test -race -count=1 -timeout 20m ${TESTFLAGS:-} ./...

# contrib/otel is a Go module of its own (so the core module depends on no OpenTelemetry
# package): ./... above does not reach it.
step "contrib/otel: vet, staticcheck, go test -race"
# shellcheck disable=SC2086
(cd contrib/otel && go vet ./... && "$STATICCHECK" ./... && go test -race -count=1 ${TESTFLAGS:-} ./...)

# The race detector allocates and inflates the heap, so the zero-allocation assertions
# (testing.AllocsPerRun) and the memory-budget bound skip under -race; this pass runs them
# without it, so CI holds the hot paths to 0 allocs and the broker to its memory budget.
step "allocation and memory-bound tests without -race"
go test -count=1 -run 'Alloc|TestScanStackScratch|TestPolicy|WithinBudget' ./...

# fuzz runs one target. A real finding always writes its input to testdata/fuzz/<target>/ and
# fails. Go 1.26's fuzz coordinator can also fail a clean run with a bare "context deadline
# exceeded" as -fuzztime ends on a busy machine (golang/go#75804, fixed in Go 1.27), writing
# nothing: that case is run once more, and counted as passed (with a note) if it repeats.
fuzz() {
  local pkg=$1 fn=$2 dir="$1/testdata/fuzz/$2" out before after try
  for try in 1 2; do
    before=$(ls "$dir" 2>/dev/null | sort || true)
    if out=$(go test -run='^$' -fuzz="^${fn}\$" -fuzztime="$FUZZTIME" "$pkg" 2>&1); then
      printf '%s\n' "$out" | tail -n 3
      return 0
    fi
    after=$(ls "$dir" 2>/dev/null | sort || true)
    printf '%s\n' "$out" | tail -n 20
    if [ "$before" != "$after" ] || ! printf '%s\n' "$out" | grep -q '^    context deadline exceeded$'; then
      echo "fuzz $fn failed (a failing input is in $dir when one was found)"
      return 1
    fi
    echo "note: $fn ended with the Go 1.26 fuzz coordinator's deadline race (golang/go#75804; no input written)"
  done
  echo "note: $fn hit the deadline race twice with no input written: counted as passed"
}

if [ "$FUZZTIME" != "0" ]; then
  # Every FuzzXxx function, each on its own for FUZZTIME (go test -fuzz runs one at a time).
  grep -rl --include='*_test.go' '^func Fuzz' . | sort | while read -r file; do
    pkg=./$(dirname "${file#./}")
    for fn in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$file" | sed 's/^func //'); do
      step "fuzz $pkg $fn ($FUZZTIME)"
      fuzz "$pkg" "$fn"
    done
  done
fi

step "CGO_ENABLED=0 builds"
for os in linux darwin windows; do
  for arch in amd64 arm64; do
    echo "  $os/$arch"
    CGO_ENABLED=0 GOOS=$os GOARCH=$arch go build -o /dev/null ./...
  done
done

step "all checks passed"
