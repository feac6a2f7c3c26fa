#!/usr/bin/env bash
# Make sure the local services a developer run or the test suite needs are up.
#   deploy/dev-services.sh redis        Redis on REDIS_URL's host (127.0.0.1:6379 by default)
#   deploy/dev-services.sh postgres     PostgreSQL on 127.0.0.1:5432
# A service that is already reachable is left alone. One that is installed but stopped is
# started. One that is missing stops the script with a message saying how to install it.
set -euo pipefail

redis_host=127.0.0.1
redis_port=6379

port_open() {  # host port
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && exec 3>&- 3<&-
}

wait_for() {  # what host port
  for _ in $(seq 1 50); do
    port_open "$2" "$3" && return 0
    sleep 0.2
  done
  echo "error: $1 did not come up on $2:$3" >&2
  exit 1
}

ensure_redis() {
  if port_open "$redis_host" "$redis_port"; then
    echo "redis: reachable on $redis_host:$redis_port"
    return
  fi
  if ! command -v redis-server >/dev/null 2>&1; then
    cat >&2 <<MSG
error: Redis is not reachable on $redis_host:$redis_port and redis-server is not installed.
Install it (Debian/Ubuntu: sudo apt-get install redis-server) or set REDIS_URL to a running one.
MSG
    exit 1
  fi
  mkdir -p var/redis
  echo "redis: starting a local redis-server on $redis_host:$redis_port"
  redis-server --daemonize yes --bind "$redis_host" --port "$redis_port" --save "" \
    --appendonly no --dir "$PWD/var/redis" --logfile "$PWD/var/redis/redis.log"
  wait_for redis "$redis_host" "$redis_port"
}

ensure_postgres() {
  if port_open 127.0.0.1 5432; then
    echo "postgres: reachable on 127.0.0.1:5432"
    return
  fi
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    echo "postgres: starting cluster $version/main"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start
    wait_for postgres 127.0.0.1 5432
    return
  fi
  cat >&2 <<MSG
error: PostgreSQL is not reachable on 127.0.0.1:5432 and no local cluster is installed.
The test suite needs it. Debian/Ubuntu: sudo apt-get install postgresql, then allow
'trust' or set DATABASE_URL=postgres://USER:PASSWORD@HOST:5432/whalewatch.
MSG
  exit 1
}

for service in "$@"; do
  case "$service" in
    redis) ensure_redis ;;
    postgres) ensure_postgres ;;
    *) echo "unknown service: $service" >&2; exit 2 ;;
  esac
done
