#!/usr/bin/env bash
# Validate docker-compose.yml with Compose's own `config -q`, when Docker is installed.
#
# `docker compose` (the v2 plugin) when it is there; otherwise the standalone `docker-compose`;
# otherwise, on Debian as root, Debian's docker-compose package is installed for it. Config
# validation needs no Docker engine. The secrets the file requires get placeholder values from
# an env file of its own, so neither the developer's .env nor their environment is read.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf 'check_compose: %s\n' "$*" >&2; }

if ! command -v docker >/dev/null 2>&1; then
  log "docker is not installed; skipping the docker-compose.yml check"
  exit 0
fi
compose=()
if docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
  compose=(docker-compose)
elif [[ "$(id -u)" == "0" ]] && command -v apt-get >/dev/null 2>&1; then
  log "docker has no compose plugin; installing Debian's docker-compose to check the file"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends docker-compose >/dev/null 2>&1 || {
    apt-get update -qq >/dev/null 2>&1
    apt-get install -y -qq --no-install-recommends docker-compose >/dev/null 2>&1
  } || true
  if ! command -v docker-compose >/dev/null 2>&1; then
    log "could not install docker-compose; skipping the check"
    exit 0
  fi
  compose=(docker-compose)
else
  log "no Docker Compose client (install the compose plugin); skipping the check"
  exit 0
fi

env_file="$(mktemp)"
trap 'rm -f "$env_file"' EXIT
printf '%s\n' SECRET_KEY=placeholder-for-the-check POSTGRES_PASSWORD=placeholder \
  FLASHBOOK_ADMIN_PASSWORD=placeholder >"$env_file"
env -i PATH="$PATH" HOME="${HOME:-/tmp}" \
  "${compose[@]}" --env-file "$env_file" -f docker-compose.yml config -q
echo "docker-compose.yml is valid (${compose[*]} config)."
