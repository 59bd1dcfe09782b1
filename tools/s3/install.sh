#!/usr/bin/env bash
# SeaweedFS's `weed` (an S3-compatible object store, Apache-2.0) into .tools/bin, for the tests
# that stream runs from a bucket. Built from source through the Go module proxy at the version
# go.mod pins (a wrapper module: the replace directive there is why `go install pkg@version`
# cannot be used). Idempotent: a binary built from the pinned version is kept. A few minutes
# the first time.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bin="$root/.tools/bin"
module=github.com/seaweedfs/seaweedfs
version="$(awk -v mod="$module" '$1 == "require" && $2 == mod { print $3 }' "$here/go.mod")"

say() { printf 's3-server: %s\n' "$*" >&2; }

command -v go >/dev/null || { say "Go is needed to build SeaweedFS (go build)"; exit 1; }
if [[ -x "$bin/weed" ]] && go version -m "$bin/weed" | awk -v mod="$module" -v v="$version" \
    '($1 == "mod" || $1 == "dep") && $2 == mod && $3 == v { found = 1 } END { exit !found }'; then
    exit 0
fi
say "building SeaweedFS $version (go build; a few minutes the first time)"
mkdir -p "$bin"
cd "$here"
# go.sum pins every dependency's checksum (the module proxy's checksum database checks new ones).
GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$bin/weed.new" "$module/weed"
mv "$bin/weed.new" "$bin/weed"
"$bin/weed" version >&2
