#!/bin/sh
# release.sh builds the zerotask binary for the six release platforms into dist/ (or $1):
# static (CGO_ENABLED=0), -trimpath, with the version, commit and build date stamped in
# (`zerotask version` prints them), and writes SHA256SUMS beside them.
#
#   scripts/release.sh [DIR]      VERSION=v1.2.3 scripts/release.sh
#   TARGETS="linux/amd64" scripts/release.sh DIR   (a subset of the platforms, e.g. for a test)
set -eu
cd "$(dirname "$0")/.."
out=${1:-dist}
version=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
ldflags="-s -w -X main.version=$version -X main.commit=$commit -X main.date=$date"
mkdir -p "$out"
targets=${TARGETS:-linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64}
for target in $targets; do
	os=${target%/*}
	arch=${target#*/}
	bin="$out/zerotask-$version-$os-$arch"
	[ "$os" = windows ] && bin="$bin.exe"
	echo "building $bin"
	CGO_ENABLED=0 GOOS=$os GOARCH=$arch go build -trimpath -ldflags "$ldflags" -o "$bin" ./cmd/zerotask
done
(cd "$out" && sha256sum zerotask-"$version"-* > SHA256SUMS)
echo "wrote $out/SHA256SUMS"
