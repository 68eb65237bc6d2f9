#!/usr/bin/env bash
# `make watch`: the Lambda functions under `cargo lambda watch` on
# 127.0.0.1:9000, against a moto server on 127.0.0.1:$SLUICE_WATCH_MOTO_PORT
# (default 5050) that holds the tables, the queues and an example config.
#
#   POST http://127.0.0.1:9000/lambda-url/receive/hooks/github   (function URL)
#   cargo lambda invoke enqueue --data-file tests/events/dynamodb-insert.json
#   cargo lambda invoke poll --data-file tests/events/scheduler-poll.json
#     (what the EventBridge Scheduler schedule sends: one run of the pollers)
#
# moto keeps everything in memory: it is started here, set up afresh by
# scripts/watch_aws.py, and stopped when this script exits (Ctrl-C).
# The functions' environment (target/watch/functions.env) turns on
# SLUICE_ALLOW_LOCAL_DESTINATIONS: the sink is on 127.0.0.1. No deployed
# stack sets it.
# Extra arguments go to `cargo lambda watch`.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
port="${SLUICE_WATCH_MOTO_PORT:-5050}"
endpoint="http://127.0.0.1:$port"
state="$root/target/watch"
mkdir -p "$state"

moto_server="$(scripts/moto.sh)"
lambda_bin="$(scripts/lambda-venv.sh)"
export PATH="$lambda_bin:$PATH"

if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "watch.sh: 127.0.0.1:$port is taken (another make watch?); set SLUICE_WATCH_MOTO_PORT" >&2
    exit 1
fi

"$moto_server" -H 127.0.0.1 -p "$port" >"$state/moto.log" 2>&1 &
moto_pid=$!
trap 'kill "$moto_pid" 2>/dev/null; wait "$moto_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do
    if grep -q "Running on $endpoint" "$state/moto.log" 2>/dev/null; then
        break
    fi
    if ! kill -0 "$moto_pid" 2>/dev/null; then
        echo "watch.sh: moto server exited:" >&2
        cat "$state/moto.log" >&2
        exit 1
    fi
    sleep 0.2
done
echo "watch.sh: moto server on $endpoint (log: target/watch/moto.log)"

AWS_ENDPOINT_URL="$endpoint" "$root/.venv-moto/bin/python" scripts/watch_aws.py setup "$state/functions.env"

echo "watch.sh: cargo lambda watch on http://127.0.0.1:9000 (functions build on first invocation)"
cargo lambda watch -A 127.0.0.1 --env-file "$state/functions.env" "$@"
