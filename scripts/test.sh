#!/usr/bin/env bash
# The whole ZeroTask check, as CI runs it: formatting, vet, race tests, every fuzz target for a
# short while, and static builds for every supported platform.
#
#   FUZZTIME=10s   how long each fuzz target runs (0 skips fuzzing)
#   TESTFLAGS=...  extra flags for `go test` (for example -run or -v)
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZTIME=${FUZZTIME:-10s}
step() { printf '\n==> %s\n' "$*"; }

step "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change these files:"; echo "$unformatted"; exit 1
fi

step "go vet ./..."
go vet ./...

step "go test -race -count=1 ./..."
# shellcheck disable=SC2086
go test -race -count=1 -timeout 20m ${TESTFLAGS:-} ./...

# The race detector allocates, so the zero-allocation assertions (testing.AllocsPerRun) are
# skipped under -race; this pass runs them without it, so CI holds the hot paths to 0 allocs.
step "allocation tests without -race"
go test -count=1 -run 'Alloc|TestScanStackScratch|TestPolicy' ./...

if [ "$FUZZTIME" != "0" ]; then
  # Every FuzzXxx function, each on its own for FUZZTIME (go test -fuzz runs one at a time).
  grep -rl --include='*_test.go' '^func Fuzz' . | sort | while read -r file; do
    pkg=./$(dirname "${file#./}")
    for fn in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$file" | sed 's/^func //'); do
      step "fuzz $pkg $fn ($FUZZTIME)"
      go test -run='^$' -fuzz="^${fn}\$" -fuzztime="$FUZZTIME" "$pkg"
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
