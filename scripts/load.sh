#!/usr/bin/env bash
# Load figures for the embedded gateway: wrk sends signed 1 KiB webhooks
# over 16 connections to `sluice serve`, which commits each durably and
# delivers it to a sink on 127.0.0.1. Everything runs on this machine.
# Prints, in one unattended run: accepted/s and response latency (wrk),
# delivered/s, end-to-end latency (sent -> sink received), lost and
# duplicate deliveries, the gateway's peak RSS and its CPU time and disk
# writes per webhook (load-independent), and the machine load.
#
#   scripts/load.sh            (DURATION=20s CONNECTIONS=16 THREADS=2)
#   GATEWAY=/path/to/sluice scripts/load.sh
#                              measure another build of the gateway (say,
#                              the commit before a change) with this
#                              script and sink; nothing is rebuilt.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-20s}
CONNECTIONS=${CONNECTIONS:-16}
THREADS=${THREADS:-2}
GW=127.0.0.1:${GW_PORT:-18080}
SINK=127.0.0.1:${SINK_PORT:-18091}
# Longest wait for the sink to catch up after wrk stops.
DRAIN_SECS=${DRAIN_SECS:-60}

if ! command -v wrk >/dev/null; then
  echo "installing wrk (Debian package)" >&2
  apt-get update -qq && apt-get install -y -qq wrk >/dev/null
fi
# Separate builds: the gateway alone gets exactly its own features.
if [ -z "${GATEWAY:-}" ]; then
  cargo build --release -q -p sluice-cli --bin sluice
  cargo build --release -q -p sluice-cli --example load_sink
  GATEWAY=target/release/sluice
elif [ ! -x target/release/examples/load_sink ]; then
  cargo build --release -q -p sluice-cli --example load_sink
fi

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
RUST_LOG=warn "$GATEWAY" serve --config "$tmp/sluice.toml" --env-file "$tmp/.env" \
  --db "$tmp/sluice.db" --listen "$GW" 2>"$tmp/sluice.log" &
gw_pid=$!
pids+=("$gw_pid")
for _ in $(seq 100); do curl -fs "http://$GW/healthz" >/dev/null && break; sleep 0.1; done

cpu_ticks() { awk '{print $14 + $15}' "/proc/$gw_pid/stat"; }
disk_writes() { awk '/^write_bytes/ {print $2}' "/proc/$gw_pid/io"; }
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
cpu0=$(cpu_ticks); io0=$(disk_writes)

echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION: signed 1 KiB webhooks to http://$GW/hooks/github"
LOAD_BODY="$body" LOAD_SIGNATURE="$signature" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency \
  -s scripts/load.lua "http://$GW" | tee "$tmp/wrk.txt"
answered=$(awk '/requests in/ {print $1}' "$tmp/wrk.txt")
non2xx=$(awk '/Non-2xx/ {print $NF}' "$tmp/wrk.txt"); non2xx=${non2xx:-0}

committed() {
  python3 - "$tmp/sluice.db" <<'PY'
import sqlite3, sys
c = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True, timeout=10)
print(c.execute("SELECT count(*) FROM events").fetchone()[0])
PY
}
sink_stat() { curl -fs "http://$SINK/stats" | python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }

# Every committed event (wrk may stop with requests in flight, so that can
# be a few more than it counted) must reach the sink. Wait until it has,
# or nothing new arrives for 5 s, or DRAIN_SECS pass.
total=$(committed)
last=-1; still=0; deadline=$((SECONDS + DRAIN_SECS))
while :; do
  got=$(sink_stat unique)
  [ "$got" -ge "$total" ] && break
  [ $SECONDS -ge $deadline ] && break
  if [ "$got" = "$last" ]; then still=$((still + 1)); [ $still -ge 50 ] && break; else still=0; fi
  last=$got; sleep 0.1
done
cpu1=$(cpu_ticks); io1=$(disk_writes)
stats=$(curl -fs "http://$SINK/stats")
echo "sink: $stats"
hz=$(getconf CLK_TCK)
python3 - "$stats" "$total" "$answered" "$non2xx" "$((cpu1 - cpu0))" "$hz" "$((io1 - io0))" \
  "$(awk '/VmHWM/ {print $2}' /proc/$gw_pid/status)" "$load_before" "$(cut -d' ' -f1-3 /proc/loadavg)" <<'PY'
import json, sys
s = json.loads(sys.argv[1])
total, answered, non2xx, ticks, hz, wbytes, hwm_kb = map(int, sys.argv[2:9])
load_before, load_after = sys.argv[9], sys.argv[10]
lost = total - s["unique"]
print(f"committed {total} events ({answered} answered by wrk, {non2xx} non-2xx)")
print(f"delivered {s['unique']} ({s['delivered_per_s']}/s from first send to last delivery), "
      f"lost {lost}, delivered twice {s['duplicates']}")
print(f"end-to-end (sent -> sink received): p50 {s['p50_ms']} ms, p90 {s['p90_ms']} ms, "
      f"p99 {s['p99_ms']} ms, max {s['max_ms']} ms")
if total:
    print(f"gateway CPU {ticks * 1e6 / hz / total:.0f} us and disk writes {wbytes / total / 1024:.1f} KiB per webhook")
print(f"gateway peak RSS: {hwm_kb / 1024:.1f} MB")
print(f"load average (1/5/15 min) before: {load_before}, after: {load_after}")
PY
if grep -qiE 'error|panic' "$tmp/sluice.log"; then echo "gateway log has errors:"; grep -iE 'error|panic' "$tmp/sluice.log" | head -5; fi
