#!/usr/bin/env bash
# Load figure for the embedded gateway: wrk sends signed 1 KiB webhooks
# over 16 connections to `sluice serve`, which commits each durably and
# delivers it to a sink on 127.0.0.1. Everything runs on this machine.
#
#   scripts/load.sh            (DURATION=20s CONNECTIONS=16 THREADS=2)
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-20s}
CONNECTIONS=${CONNECTIONS:-16}
THREADS=${THREADS:-2}
GW=127.0.0.1:${GW_PORT:-18080}
SINK=127.0.0.1:${SINK_PORT:-18091}

if ! command -v wrk >/dev/null; then
  echo "installing wrk (Debian package)" >&2
  apt-get update -qq && apt-get install -y -qq wrk >/dev/null
fi
# Separate builds: the gateway alone gets exactly its own features.
cargo build --release -q -p sluice-cli --bin sluice
cargo build --release -q -p sluice-cli --example load_sink

tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

secret=load-test-secret
cat >"$tmp/sluice.toml" <<TOML
[[sources]]
id = "github"
provider = "github"
secrets = ["env:LOAD_GH_SECRET"]

[[subscriptions]]
id = "sink"
source = "github"
events = ["*"]
url = "http://$SINK/webhooks"
signing_secret = "env:LOAD_SIGNING_SECRET"
allow_local = true
TOML
printf 'LOAD_GH_SECRET=%s\nLOAD_SIGNING_SECRET=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n' "$secret" >"$tmp/.env"

body=$(python3 -c 'import json; pad="x"*(1024-len(json.dumps({"ref":"refs/heads/main","pad":""}))); print(json.dumps({"ref":"refs/heads/main","pad":pad}), end="")')
signature="sha256=$(printf '%s' "$body" | openssl dgst -sha256 -hmac "$secret" -r | cut -d' ' -f1)"

target/release/examples/load_sink "$SINK" 2>"$tmp/sink.log" &
pids+=($!)
RUST_LOG=warn target/release/sluice serve --config "$tmp/sluice.toml" --env-file "$tmp/.env" \
  --db "$tmp/sluice.db" --listen "$GW" 2>"$tmp/sluice.log" &
gw_pid=$!
pids+=("$gw_pid")
for _ in $(seq 100); do curl -fs "http://$GW/healthz" >/dev/null && break; sleep 0.1; done

echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION: signed 1 KiB webhooks to http://$GW/hooks/github"
LOAD_BODY="$body" LOAD_SIGNATURE="$signature" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency \
  -s scripts/load.lua "http://$GW" | tee "$tmp/wrk.txt"
sent=$(awk '/requests in/ {print $1}' "$tmp/wrk.txt")

# Wait until the sink has everything (or nothing new arrives for 5 s).
last=-1; still=0
while :; do
  got=$(curl -fs "http://$SINK/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["received"])')
  [ "$got" -ge "$sent" ] && break
  if [ "$got" = "$last" ]; then still=$((still + 1)); [ $still -ge 50 ] && break; else still=0; fi
  last=$got; sleep 0.1
done
echo "sink: $(curl -fs "http://$SINK/stats")"
echo "sent $sent, delivered $got"
echo "gateway peak RSS: $(awk '/VmHWM/ {print $2, $3}' /proc/$gw_pid/status)"
if grep -qiE 'error|panic' "$tmp/sluice.log"; then echo "gateway log has errors:"; grep -iE 'error|panic' "$tmp/sluice.log" | head -5; fi
