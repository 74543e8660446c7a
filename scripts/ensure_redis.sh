#!/usr/bin/env bash
# Make sure a Redis server answers, and print the URL to use on stdout (diagnostics go to stderr).
#
#   scripts/ensure_redis.sh         # check REDIS_URL (default redis://127.0.0.1:6379/0), else start one
#   scripts/ensure_redis.sh stop    # stop the Redis this script started (if any)
#
# Order of preference:
#   1. a Redis that answers PING at $REDIS_URL;
#   2. the Redis this script started earlier under var/redis/, if it still answers;
#   3. a new redis-server on a free loopback port, with its files under var/redis/
#      (on Debian/Ubuntu as root, redis-server is installed with apt-get when missing);
#   4. a `redis` container on a free port, when Docker is available.
# Idempotent: running it again reuses whatever answers.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE_DIR="$ROOT/var/redis"
PID_FILE="$STATE_DIR/redis.pid"
URL_FILE="$STATE_DIR/url"
LOG_FILE="$STATE_DIR/redis.log"
CONTAINER_FILE="$STATE_DIR/container"
DEFAULT_URL="redis://127.0.0.1:6379/0"

log() { printf 'ensure_redis: %s\n' "$*" >&2; }

# redis_ping URL -> exit 0 when a Redis answers PING at URL.
redis_ping() {
  local url="$1"
  local scheme="${url%%://*}"
  if command -v redis-cli >/dev/null 2>&1; then
    local tls=()
    [[ "$scheme" == "rediss" ]] && tls=(--tls)
    [[ "$(timeout 5 redis-cli "${tls[@]}" -u "$url" ping 2>/dev/null)" == "PONG" ]]
    return
  fi
  if [[ "$scheme" != "redis" ]]; then
    log "cannot check $url without redis-cli"
    return 1
  fi
  # Plain RESP over bash's /dev/tcp: redis://[[user]:password@]host[:port][/db]
  local rest="${url#redis://}"
  rest="${rest%%/*}"
  local auth="" hostport="$rest"
  if [[ "$rest" == *@* ]]; then
    auth="${rest%@*}"
    hostport="${rest##*@}"
  fi
  local host port
  if [[ "$hostport" == \[* ]]; then # [ipv6]:port
    host="${hostport%%]*}"
    host="${host#[}"
    port="${hostport##*]}"
    port="${port#:}"
  else
    host="${hostport%%:*}"
    port="${hostport#"$host"}"
    port="${port#:}"
  fi
  host="${host:-127.0.0.1}"
  port="${port:-6379}"
  local auth_cmd=""
  if [[ -n "$auth" ]]; then
    local user="${auth%%:*}" password="${auth#*:}"
    if [[ "$auth" != *:* ]]; then
      user=""
      password="$auth"
    fi
    if [[ -n "$user" ]]; then
      auth_cmd="AUTH $user $password"
    else
      auth_cmd="AUTH $password"
    fi
  fi
  timeout 5 bash -c '
    exec 3<>"/dev/tcp/$1/$2" || exit 1
    if [[ -n "$3" ]]; then
      printf "%s\r\n" "$3" >&3
      IFS= read -r line <&3
      [[ "$line" == "+OK"* ]] || exit 1
    fi
    printf "PING\r\n" >&3
    IFS= read -r line <&3
    [[ "$line" == "+PONG"* ]]
  ' _ "$host" "$port" "$auth_cmd" 2>/dev/null
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_for() {
  local url="$1"
  for _ in $(seq 1 50); do
    if redis_ping "$url"; then
      return 0
    fi
    sleep 0.1
  done
  return 1
}

ensure_redis_server_binary() {
  command -v redis-server >/dev/null 2>&1 && return 0
  if [[ "$(id -u)" == "0" ]] && command -v apt-get >/dev/null 2>&1; then
    log "redis-server is missing; installing Debian's redis-server with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 || true
    # Installing may try to start the system service; where that is impossible it is harmless.
    apt-get install -y -qq --no-install-recommends redis-server >&2 || true
  fi
  command -v redis-server >/dev/null 2>&1
}

start_redis_server() {
  local port url
  port="$(free_port)"
  url="redis://127.0.0.1:$port/0"
  mkdir -p "$STATE_DIR"
  log "starting redis-server on 127.0.0.1:$port (files in ${STATE_DIR#"$ROOT"/})"
  redis-server \
    --bind 127.0.0.1 --port "$port" \
    --daemonize yes --pidfile "$PID_FILE" --logfile "$LOG_FILE" --dir "$STATE_DIR" \
    --save "" --appendonly no >&2
  if ! wait_for "$url"; then
    log "redis-server did not answer on port $port; see $LOG_FILE"
    return 1
  fi
  printf '%s\n' "$url" >"$URL_FILE"
  printf '%s\n' "$url"
}

start_docker_redis() {
  command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1 || return 1
  local port url name="flashbook-redis-$$"
  port="$(free_port)"
  url="redis://127.0.0.1:$port/0"
  mkdir -p "$STATE_DIR"
  log "starting a redis container ($name) on 127.0.0.1:$port"
  docker run -d --rm --name "$name" -p "127.0.0.1:$port:6379" redis:7 >&2 || return 1
  if ! wait_for "$url"; then
    log "the redis container did not answer on port $port"
    docker rm -f "$name" >/dev/null 2>&1 || true
    return 1
  fi
  printf '%s\n' "$name" >"$CONTAINER_FILE"
  printf '%s\n' "$url" >"$URL_FILE"
  printf '%s\n' "$url"
}

stop() {
  if [[ -f "$PID_FILE" ]]; then
    local pid
    pid="$(cat "$PID_FILE")"
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
      log "stopping redis-server (pid $pid)"
      kill "$pid"
    fi
    rm -f "$PID_FILE"
  fi
  if [[ -f "$CONTAINER_FILE" ]]; then
    local name
    name="$(cat "$CONTAINER_FILE")"
    log "stopping container $name"
    docker rm -f "$name" >/dev/null 2>&1 || true
    rm -f "$CONTAINER_FILE"
  fi
  rm -f "$URL_FILE"
}

main() {
  if [[ "${1:-}" == "stop" ]]; then
    stop
    return 0
  fi

  local url="${REDIS_URL:-$DEFAULT_URL}"
  if redis_ping "$url"; then
    printf '%s\n' "$url"
    return 0
  fi
  log "no Redis answers at $url"

  if [[ -f "$URL_FILE" ]]; then
    local previous
    previous="$(cat "$URL_FILE")"
    if redis_ping "$previous"; then
      log "reusing the Redis started earlier at $previous"
      printf '%s\n' "$previous"
      return 0
    fi
    rm -f "$URL_FILE" "$PID_FILE" "$CONTAINER_FILE"
  fi

  if ensure_redis_server_binary; then
    start_redis_server
    return
  fi
  if start_docker_redis; then
    return 0
  fi
  log "could not start Redis: install redis-server (apt-get install redis-server, brew install redis)"
  log "or Docker, or point REDIS_URL at a running server"
  return 1
}

main "$@"
