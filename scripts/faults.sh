#!/usr/bin/env bash
# Fault-injection campaign for the embedded gateway: "no event lost, none
# sent twice". wrk sends signed 1 KiB webhooks (a new delivery id each) to
# `sluice serve` on 127.0.0.1, which delivers them to the load sink. While
# the load runs, the gateway is stopped KILLS times at random moments
# (GAP_MIN..GAP_MAX seconds apart) and restarted on the same database:
#
#   run 1: kill -9  (the process dies wherever it is)
#   run 2: SIGTERM  (graceful: it finishes in-flight work, then exits)
#
# Then the gateway drains (until the sink has every committed event, the
# queue is empty, or DRAIN_SECS pass) and each run is counted:
#
#   accepted   ids wrk got 200 {"status":"accepted"} for (logged by wrk)
#   committed  rows in the gateway's events table (a superset of accepted:
#              a request can commit and lose its answer to a kill)
#   delivered  distinct ids the sink received
#   lost       accepted or committed, never delivered
#   duplicated ids the sink received more than once, split into
#     at a kill: first received before a gateway died, again after the
#                restart (sent, then killed before the result was recorded:
#                the one duplicate the design allows; receivers dedup on
#                webhook-id)
#     other:     both receipts within one gateway's life (a bug)
#
# Exits non-zero if anything was lost, if any duplicate is not explained by
# a kill, if the SIGTERM run has any duplicate, or if a graceful stop
# needed SIGKILL or a restart failed. Only 127.0.0.1 is ever contacted;
# every wait is bounded.
#
#   scripts/faults.sh   (KILLS=5 GAP_MIN=1 GAP_MAX=4 CONNECTIONS=16 THREADS=2 SEED=random)
set -euo pipefail
cd "$(dirname "$0")/.."

KILLS=${KILLS:-5}
GAP_MIN=${GAP_MIN:-1}
GAP_MAX=${GAP_MAX:-4}
CONNECTIONS=${CONNECTIONS:-16}
THREADS=${THREADS:-2}
# Load before the first kill is part of the first gap; this much runs after the last restart.
TAIL_SECS=${TAIL_SECS:-3}
# Longest wait for a graceful stop (the gateway's own grace is 30 s for deliveries).
STOP_SECS=${STOP_SECS:-45}
# Longest wait for the sink to catch up after the load.
DRAIN_SECS=${DRAIN_SECS:-90}
SEED=${SEED:-$(( $(date +%s) % 32768 ))}
GW=127.0.0.1:${GW_PORT:-18180}
SINK=127.0.0.1:${SINK_PORT:-18191}
TARGET=${CARGO_TARGET_DIR:-target}

if ! command -v wrk >/dev/null; then
  echo "installing wrk (Debian package)" >&2
  apt-get update -qq && apt-get install -y -qq wrk >/dev/null
fi
# Separate builds, as in load.sh: the gateway alone gets exactly its own
# features. FAULTS_NO_BUILD=1 runs the binaries already in $TARGET/release.
if [ -z "${FAULTS_NO_BUILD:-}" ]; then
  cargo build --release -q -p sluice-cli --bin sluice
  cargo build --release -q -p sluice-cli --example load_sink
fi
SLUICE="$TARGET/release/sluice"
LOAD_SINK="$TARGET/release/examples/load_sink"

tmp=$(mktemp -d)
gw_pid=; sink_pid=; wrk_pid=
status=0
cleanup() {
  for p in $wrk_pid $gw_pid $sink_pid; do kill -9 "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "$status" -eq 0 ] && [ -z "${FAULTS_KEEP:-}" ]; then rm -rf "$tmp"; else echo "logs and databases kept in $tmp" >&2; fi
}
trap cleanup EXIT

secret=load-test-secret
printf 'LOAD_GH_SECRET=%s\nLOAD_SIGNING_SECRET=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n' "$secret" >"$tmp/.env"
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
body=$(python3 -c 'import json; pad="x"*(1024-len(json.dumps({"ref":"refs/heads/main","pad":""}))); print(json.dumps({"ref":"refs/heads/main","pad":pad}), end="")')
signature="sha256=$(printf '%s' "$body" | openssl dgst -sha256 -hmac "$secret" -r | cut -d' ' -f1)"

# load.lua's requests (a unique X-GitHub-Delivery per request, starting with
# the send time), and each answer logged: status, its "status" field, its id.
cat >"$tmp/faults.lua" <<'LUA'
local ffi = require("ffi")
ffi.cdef[[
  typedef struct { long tv_sec; long tv_nsec; } timespec;
  int clock_gettime(int clk_id, timespec *tp);
]]
local ts = ffi.new("timespec")
local function now_us()
  ffi.C.clock_gettime(0, ts)
  return tonumber(ts.tv_sec) * 1000000 + math.floor(tonumber(ts.tv_nsec) / 1000)
end
local body = os.getenv("LOAD_BODY")
local signature = os.getenv("LOAD_SIGNATURE")
local dir = os.getenv("FAULTS_DIR")
local counter = 0
local threads = 0
function setup(thread)
  thread:set("thread_id", threads)
  threads = threads + 1
end
function request()
  counter = counter + 1
  local id = string.format("%d-%d-%d", now_us(), thread_id, counter)
  return wrk.format("POST", "/hooks/github", {
    ["Content-Type"] = "application/json",
    ["X-GitHub-Event"] = "push",
    ["X-GitHub-Delivery"] = id,
    ["X-Hub-Signature-256"] = signature,
  }, body)
end
local out, lines = nil, 0
function response(status, headers, answer)
  if not out then out = assert(io.open(string.format("%s/answers-%d.txt", dir, thread_id), "w")) end
  local kind = answer:match('"status":"([%a_]+)"') or "-"
  local id = answer:match('"id":"([^"]+)"') or "-"
  out:write(status, " ", kind, " ", id, "\n")
  lines = lines + 1
  if lines % 100 == 0 then out:flush() end
end
LUA

now_us() { date +%s%6N; }

# Starts the gateway on the run's database; 1 if it is not healthy within 10 s.
start_gw() {
  RUST_LOG=warn "$SLUICE" serve --config "$tmp/sluice.toml" --env-file "$tmp/.env" \
    --db "$dir/sluice.db" --listen "$GW" 2>>"$dir/sluice.log" &
  gw_pid=$!
  for _ in $(seq 100); do
    curl -fs "http://$GW/healthz" >/dev/null && return 0
    kill -0 "$gw_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "gateway did not come up (see $dir/sluice.log)" >&2
  return 1
}

# Stops the gateway with signal $1 and waits for it to exit (a graceful stop
# at most STOP_SECS, then SIGKILL, counted in `forced`).
stop_gw() {
  kill -"$1" "$gw_pid"
  if [ "$1" = TERM ]; then
    local deadline=$((SECONDS + STOP_SECS))
    while kill -0 "$gw_pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.05; done
    if kill -0 "$gw_pid" 2>/dev/null; then
      echo "gateway still running $STOP_SECS s after SIGTERM: SIGKILL" >&2
      forced=$((forced + 1)); kill -9 "$gw_pid"
    fi
  fi
  wait "$gw_pid" 2>/dev/null || true
  gw_pid=
}

db_query() {
  python3 - "$dir/sluice.db" "$1" <<'PY'
import sqlite3, sys
c = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True, timeout=10)
print(" ".join(str(v) for v in c.execute(sys.argv[2]).fetchone()))
PY
}
sink_stat() { curl -fs "http://$SINK/stats" | python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }

# After a failed campaign: stop its wrk, gateway and sink now.
stop_all() {
  for p in $wrk_pid $gw_pid $sink_pid; do kill -9 "$p" 2>/dev/null || true; done
  for p in $wrk_pid $gw_pid $sink_pid; do wait "$p" 2>/dev/null || true; done
  wrk_pid=; gw_pid=; sink_pid=
}

# One campaign: $1 is the run's name, $2 the signal (KILL or TERM).
campaign() {
  local name=$1 sig=$2
  dir="$tmp/$name"; mkdir -p "$dir"
  forced=0; restart_failed=0
  : >"$dir/kills.txt"

  "$LOAD_SINK" "$SINK" 2>"$dir/sink.log" &
  sink_pid=$!
  for _ in $(seq 50); do curl -fs "http://$SINK/stats" >/dev/null && break; sleep 0.1; done
  start_gw || { stop_all; return 1; }

  local gaps=() total_ms=0 g
  for _ in $(seq "$KILLS"); do
    g=$(( GAP_MIN * 1000 + RANDOM % ((GAP_MAX - GAP_MIN) * 1000 + 1) ))
    gaps+=("$g"); total_ms=$((total_ms + g))
  done
  # wrk's own bound: every gap, every stop at its longest, and the tail.
  local bound=$(( total_ms / 1000 + KILLS * (STOP_SECS + 12) + TAIL_SECS + 5 ))
  echo "== $name: wrk -t$THREADS -c$CONNECTIONS, SIG$sig $KILLS times, gaps ${gaps[*]} ms"
  LOAD_BODY="$body" LOAD_SIGNATURE="$signature" FAULTS_DIR="$dir" \
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"${bound}s" --timeout 5s -s "$tmp/faults.lua" "http://$GW" \
    >"$dir/wrk.txt" 2>&1 &
  wrk_pid=$!

  local i kill_us died_us up_us
  for i in $(seq "$KILLS"); do
    sleep "$(printf '%d.%03d' $((gaps[i-1] / 1000)) $((gaps[i-1] % 1000)))"
    kill_us=$(now_us)
    stop_gw "$sig"
    died_us=$(now_us)
    if start_gw; then up_us=$(now_us); else
      restart_failed=$((restart_failed + 1))
      kill -9 "$gw_pid" 2>/dev/null || true; wait "$gw_pid" 2>/dev/null || true
      start_gw || { echo "gateway restart failed twice; giving up" >&2; stop_all; return 1; }
      up_us=$(now_us)
    fi
    echo "$kill_us $died_us $up_us" >>"$dir/kills.txt"
    echo "  SIG$sig $i: down for $(( (up_us - kill_us) / 1000 )) ms (exit after $(( (died_us - kill_us) / 1000 )) ms)"
  done
  sleep "$TAIL_SECS"
  now_us >"$dir/wrk-stop.txt"
  # wrk stops on SIGINT and prints its summary (flushing the answer logs).
  kill -INT "$wrk_pid" 2>/dev/null || true
  local deadline=$((SECONDS + bound))
  while kill -0 "$wrk_pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
  wait "$wrk_pid" 2>/dev/null || true
  wrk_pid=
  grep -E 'requests in|Socket errors|Non-2xx' "$dir/wrk.txt" | sed 's/^/  wrk: /' || true

  # Drain: until the sink holds every committed event, or nothing is left
  # to send (no queue rows, empty outbox), or DRAIN_SECS pass.
  local committed got left
  deadline=$((SECONDS + DRAIN_SECS))
  while :; do
    committed=$(db_query "SELECT count(*) FROM events")
    got=$(sink_stat unique)
    [ "$got" -ge "$committed" ] && break
    left=$(db_query "SELECT (SELECT count(*) FROM queue) + (SELECT count(*) FROM outbox)")
    [ "$left" -eq 0 ] && break
    [ $SECONDS -ge $deadline ] && { echo "  drain: gave up after $DRAIN_SECS s ($got of $committed)" >&2; break; }
    sleep 0.2
  done
  curl -fs "http://$SINK/ids" >"$dir/sink-ids.txt"
  curl -fs "http://$SINK/stats" >"$dir/sink-stats.json"
  stop_gw TERM
  kill "$sink_pid" 2>/dev/null || true; wait "$sink_pid" 2>/dev/null || true; sink_pid=
  echo "$forced $restart_failed" >"$dir/stops.txt"
}

analyse() {
  python3 - "$tmp" "$@" <<'PY'
import glob, json, re, sqlite3, sys
tmp, runs = sys.argv[1], sys.argv[2:]
rows, failed = [], False
for run in runs:
    name, sig = run.split(":")
    d = f"{tmp}/{name}"
    try:
        open(f"{d}/sink-ids.txt").close()
        open(f"{d}/stops.txt").close()
    except OSError:
        print(f"{name}: did not complete (see above)")
        rows.append(dict(run=name, signal=f"SIG{sig}", kills="-", released="-", accepted=0,
                         committed=0, delivered=0, lost="-", dup_kill=0, dup_other=0, ok=False))
        failed = True
        continue
    accepted, answers = set(), {}
    for f in glob.glob(f"{d}/answers-*.txt"):
        for line in open(f):
            status, kind, eid = line.split()
            answers[(status, kind)] = answers.get((status, kind), 0) + 1
            if status == "200" and kind == "accepted":
                accepted.add("github#" + eid)
    db = sqlite3.connect(f"file:{d}/sluice.db?mode=ro", uri=True)
    committed = {f"{s}#{i}" for s, i in db.execute("SELECT source, id FROM events")}
    states = dict(db.execute("SELECT status, count(*) FROM deliveries GROUP BY status").fetchall())
    got = {}
    for line in open(f"{d}/sink-ids.txt"):
        parts = line.split()
        got[parts[0]] = list(map(int, parts[1:]))
    kills = [tuple(map(int, l.split())) for l in open(f"{d}/kills.txt")]
    forced, restart_failed = map(int, open(f"{d}/stops.txt").read().split())
    wrk_stop = int(open(f"{d}/wrk-stop.txt").read())
    log = re.sub(r"\x1b\[[0-9;]*m", "", open(f"{d}/sluice.log").read())
    released = sum(int(n) for n in re.findall(r"claims left by a stopped gateway released tasks=(\d+)", log))
    # Committed but never answered: the request was in flight when the
    # gateway stopped, or when wrk stopped (it abandons those). The client
    # never heard "accepted"; a retry with the same id is answered duplicate.
    at_stop = at_end = 0
    for eid in committed - accepted:
        sent = int(eid.split("#", 1)[1].split("-")[0])
        if any(k - 1_000_000 <= sent <= died for k, died, _ in kills):
            at_stop += 1
        elif sent >= wrk_stop - 1_000_000:
            at_end += 1
    lost = (accepted | committed) - got.keys()
    unanswered = accepted - committed
    unknown = got.keys() - committed
    at_kill = other = extra = 0
    for eid, times in got.items():
        if len(times) < 2:
            continue
        first, repeats = times[0], times[1:]
        extra += len(repeats)
        # Each repeat must follow a gateway death that came after the
        # previous receipt: sent, killed before the result was recorded.
        prev, explained = first, True
        for r in repeats:
            if not any(prev <= died <= r for _, died, _ in kills):
                explained = False
            prev = r
        if explained:
            at_kill += 1
        else:
            other += 1
    dup = at_kill + other
    # A duplicate at a kill is a task claimed when the gateway died, so
    # there can be no more of them than the claims the restarts released.
    ok = (not lost and not unknown and other == 0 and at_kill <= released
          and not forced and not restart_failed)
    if sig == "TERM" and dup:
        ok = False
    failed |= not ok
    rows.append(dict(run=name, signal=f"SIG{sig}", kills=len(kills), released=released, accepted=len(accepted),
                     committed=len(committed), delivered=len(got), lost=len(lost),
                     dup_kill=at_kill, dup_other=other, extra=extra, ok=ok))
    ans = ", ".join(f"{s} {k}: {n}" for (s, k), n in sorted(answers.items()))
    print(f"{name}: answers ({ans}); committed but unanswered {len(committed - accepted)} "
          f"({at_stop} sent as the gateway stopped, {at_end} as wrk stopped); "
          f"accepted but not committed {len(unanswered)}; delivered but never committed {len(unknown)}; "
          f"deliveries by status {states}; claims released at restarts {released}; "
          f"forced stops {forced}; failed restarts {restart_failed}")
    if lost:
        print(f"  lost ids (first 10): {sorted(lost)[:10]}")
    if dup:
        print(f"  ids delivered more than once: {dup} ({extra} extra deliveries); "
              f"at a kill {at_kill}, other {other}")
print()
print("| run | signal | kills | accepted | committed | delivered | lost | duplicated (at a kill / other) | claims released | result |")
print("|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    print(f"| {r['run']} | {r['signal']} | {r['kills']} | {r['accepted']:,} | {r['committed']:,} | "
          f"{r['delivered']:,} | {r['lost']} | {r['dup_kill'] + r['dup_other']} ({r['dup_kill']} / {r['dup_other']}) | {r['released']} | "
          f"{'pass' if r['ok'] else 'FAIL'} |")
sys.exit(1 if failed else 0)
PY
}

echo "seed $SEED (SEED=$SEED reproduces the gaps), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
RANDOM=$SEED
campaign kill9 KILL || status=1
campaign sigterm TERM || status=1
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in kill9 sigterm; do
  if grep -qiE 'panic' "$tmp/$r/sluice.log" 2>/dev/null; then
    echo "$r: gateway log has panics:"; grep -iE 'panic' "$tmp/$r/sluice.log" | head -5; status=1
  fi
done
[ "$status" -eq 0 ] || { echo "a campaign did not complete" >&2; }
analyse kill9:KILL sigterm:TERM || status=1
exit "$status"
