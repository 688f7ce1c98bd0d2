# shellcheck shell=bash
# Shared helpers for ci/ scripts. Source it; do not run it.

TG_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export TG_ROOT

tg_log() { printf '%s: %s\n' "${TG_PROG:-ci}" "$*" >&2; }
tg_die() { tg_log "error: $*"; exit 1; }

# tg_need CMD HINT: fail with a message naming the missing tool and the fix.
tg_need() {
  command -v "$1" >/dev/null 2>&1 || tg_die "'$1' not found: $2"
}
