#!/usr/bin/env bash
# Retention at scale: a throw-away PostgreSQL cluster (fsync off), 1,000,000 executions seeded over 90 days with their
# events, the scans' EXPLAIN plans, then real passes of RetentionJob. Prints figures; deletes the cluster at the end.
#   bash bench/retention/run.sh [executions=1000000] [events-per-execution=10]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
data="$(mktemp -d /var/tmp/agentlab-retention-bench.XXXXXX)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
as_pg=()
if [ "$(id -u)" = 0 ]; then chown postgres "$data"; chmod 700 "$data"; as_pg=(setpriv --reuid=postgres --regid=postgres --init-groups --); fi
cleanup() { "${as_pg[@]}" "$bin/pg_ctl" -D "$data/pg" -m fast stop >/dev/null 2>&1 || true; rm -rf "$data"; }
trap cleanup EXIT
"${as_pg[@]}" "$bin/initdb" -D "$data/pg" -A trust -U postgres -E UTF8 --no-locale --no-sync >/dev/null
"${as_pg[@]}" "$bin/pg_ctl" -D "$data/pg" -l "$data/pg/log" -w -o "-p $port -k $data -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c shared_buffers=512MB -c max_wal_size=4GB" start >/dev/null
"$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -qc "CREATE DATABASE agentlabdb"
dotnet run "$here/RetentionBench.cs" -- "Host=127.0.0.1;Port=$port;Database=agentlabdb;Username=postgres" "${1:-1000000}" "${2:-10}"
