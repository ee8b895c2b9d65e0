# Shared helpers of scripts/demo and scripts/test: install what is missing, idempotently.
# shellcheck shell=bash
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

APT_UPDATED=0
apt_install() {  # apt_install PKG... : install the Debian packages that are missing
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "apt-get install ${missing[*]}"
  if [ "$APT_UPDATED" = 0 ]; then as_root apt-get update -qq >/dev/null; APT_UPDATED=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

ensure_venv() {  # a virtualenv with twig_auth (editable) and the dev extras; reinstalled when pyproject changes
  local stamp="$VENV/.twig-installed" want
  want="$(sha256sum "$ROOT/pyproject.toml" | cut -c1-64)"
  if [ ! -x "$PY" ]; then
    log "creating virtualenv .venv"
    local base; base="$(command -v python3.11 || command -v python3)"
    "$base" -m venv "$VENV"
  fi
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    log "installing Python packages (pip install -e .[dev])"
    "$PY" -m pip install -q --upgrade pip >/dev/null
    "$PY" -m pip install -q -e "$ROOT[dev]"
    echo "$want" > "$stamp"
  fi
}

ensure_postgres() {  # a PostgreSQL on 127.0.0.1:5432 that lets user postgres in (password "postgres")
  if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then return 0; fi
  apt_install postgresql postgresql-client
  local ver; ver="$(ls /etc/postgresql | sort -V | tail -1)"
  log "starting PostgreSQL $ver"
  as_root pg_ctlcluster --skip-systemctl-redirect "$ver" main start || true
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
  as_root su postgres -c "psql -qc \"ALTER USER postgres PASSWORD 'postgres'\"" >/dev/null
}

ensure_redis() {  # a Redis on 127.0.0.1:6379
  if (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null && redis-cli -h 127.0.0.1 ping 2>/dev/null | grep -q PONG; then
    return 0
  fi
  apt_install redis-server
  log "starting redis-server"
  mkdir -p /tmp/twig-redis
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no --dir /tmp/twig-redis \
    --logfile /tmp/twig-redis/redis.log
  for _ in $(seq 1 30); do redis-cli -h 127.0.0.1 ping 2>/dev/null | grep -q PONG && break; sleep 0.2; done
}

ensure_browser() { [ -x /usr/bin/chromium ] || apt_install chromium; }

ensure_oidc_peer() {  # oidc-provider (node) for tests/sso/test_oidc_*.py, from its committed lockfile
  command -v npm >/dev/null || apt_install nodejs npm
  [ -d "$ROOT/tests/peers/oidc/node_modules" ] || npm ci --prefix "$ROOT/tests/peers/oidc" --no-audit --no-fund
}
