#!/usr/bin/env bash
# Parse a compose file with the real compose loader: `docker compose config` (Docker Compose
# v2, the CLI plugin, run standalone; it needs no Docker engine to load and validate a file).
#
#   deploy/compose-check.sh [FILE] [config options...]   FILE defaults to deploy/compose.yaml,
#                                                       options to --quiet (validate only)
#
# Docker Compose is a Go program: when the tools cache (UNGEBUS_TOOLS_DIR, default
# ~/.cache/ungebus, outside the clone so every clone on the machine shares it) does not have
# it yet, it is built from the Go module proxy with the machine's Go (about 5 minutes cold).
# Exit status: 0 if the file loads, non-zero with the loader's message if not.
set -euo pipefail

COMPOSE_MODULE=github.com/docker/compose/v2
COMPOSE_VERSION=v2.40.3

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tools="${UNGEBUS_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ungebus}"
bin="$tools/docker-compose-$COMPOSE_VERSION"

build() {
    command -v go >/dev/null || { echo "compose-check: Go is needed to build Docker Compose" >&2; exit 2; }
    echo "compose-check: building Docker Compose $COMPOSE_VERSION into $tools ..." >&2
    local dir
    # Its go.mod has exclude directives, so `go install module@version` refuses it: build the
    # downloaded module itself.
    dir="$(go mod download -json "$COMPOSE_MODULE@$COMPOSE_VERSION" \
        | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
    [ -n "$dir" ] || { echo "compose-check: could not download $COMPOSE_MODULE@$COMPOSE_VERSION" >&2; exit 2; }
    mkdir -p "$tools"
    go -C "$dir" build -trimpath \
        -ldflags "-s -w -X $COMPOSE_MODULE/internal.Version=$COMPOSE_VERSION" \
        -o "$bin.$$.tmp" ./cmd
    mv "$bin.$$.tmp" "$bin"
}

[ -x "$bin" ] || build >&2
if [ "${1:-}" = "--build-only" ]; then
    echo "$bin"
    exit 0
fi

file="${1:-$here/compose.yaml}"
shift || true
[ "$#" -gt 0 ] || set -- --quiet
# The pseudonym secret and the master key are required (`${UNGEBUS_PSEUDONYM_SECRET:?...}`);
# placeholders let the file load here without a real secret ever being read or printed.
export UNGEBUS_PSEUDONYM_SECRET=compose-check-placeholder-not-a-secret
export UNGEBUS_MASTER_KEY=compose-check-placeholder-not-a-key
exec "$bin" --file "$file" config "$@"
