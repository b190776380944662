#!/usr/bin/env bash
# tunnel-bench.sh - userspace tunnel throughput: iperf3 TCP between two fresh network namespaces
# over a plain veth pair, then through the userspace tunnel (MobilityAgents.Datapath) in ipip
# mode and in ipip-in-UDP mode over the same veth. Prints Gbit/s, the ratio to plain veth and the
# tunnel process's CPU (percent of one core, both tunnel ends together). Target: >= 1 Gbit/s.
#
# usage: sudo bench/tunnel-bench.sh [--seconds N] [--streams P] [--help]
#   --seconds N  iperf3 duration per run (default 10)
#   --streams P  parallel iperf3 streams (default 1)
# env:   MA_BENCH_NO_BUILD=1 - run the existing Release build without rebuilding
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SECS=10 STREAMS=1
while [ $# -gt 0 ]; do
  case $1 in
    --seconds) SECS=$2; shift;;
    --streams) STREAMS=$2; shift;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0;;
    *) echo "tunnel-bench: unknown option $1 (try --help)" >&2; exit 2;;
  esac; shift
done
[ "$(id -u)" = 0 ] || { echo "tunnel-bench: needs root (network namespaces, TUN): sudo $0" >&2; exit 2; }
command -v ip >/dev/null || { echo "tunnel-bench: needs ip (iproute2)" >&2; exit 2; }
command -v dotnet >/dev/null || { echo "tunnel-bench: needs the .NET SDK (dotnet)" >&2; exit 2; }
if ! command -v iperf3 >/dev/null || ! command -v jq >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iperf3 jq >/dev/null
fi
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

cd "$ROOT"
if [ "${MA_BENCH_NO_BUILD:-0}" != 1 ]; then
  log=$(mktemp)
  if ! dotnet build -c Release bench/TunnelBench -nologo >"$log" 2>&1; then
    grep -E ' error |warning' "$log" | sort -u >&2 || cat "$log" >&2
    rm -f "$log"; echo "tunnel-bench: build failed" >&2; exit 1
  fi
  rm -f "$log"
fi

ID=$(head -c4 /dev/urandom | od -An -tx1 | tr -d ' \n')
A=ma-bench-a-$ID B=ma-bench-b-$ID
TMP=$(mktemp -d)
BENCH_PID=
cleanup() {
  [ -n "$BENCH_PID" ] && kill "$BENCH_PID" 2>/dev/null && wait "$BENCH_PID" 2>/dev/null || true
  ip netns pids "$A" 2>/dev/null | xargs -r kill 2>/dev/null || true
  ip netns pids "$B" 2>/dev/null | xargs -r kill 2>/dev/null || true
  ip netns del "$A" 2>/dev/null || true
  ip netns del "$B" 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

ip netns add "$A"; ip netns add "$B"
ip -n "$A" link set lo up; ip -n "$B" link set lo up
ip -n "$A" link add a0 type veth peer name b0 netns "$B"
ip -n "$A" addr add 198.51.100.1/24 dev a0; ip -n "$A" link set a0 up
ip -n "$B" addr add 198.51.100.2/24 dev b0; ip -n "$B" link set b0 up

# iperf3: server in B, client in A (A -> B data); prints Gbit/s of what B received.
iperf() {
  ip netns exec "$B" iperf3 -s -1 -B "$1" >/dev/null 2>&1 &
  local srv=$!
  sleep 0.5
  ip netns exec "$A" iperf3 -c "$1" -t "$SECS" -P "$STREAMS" -J >"$TMP/iperf.json"
  wait "$srv" || true
  jq -r '.end.sum_received.bits_per_second / 1e9' "$TMP/iperf.json"
}
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)

echo "tunnel-bench: iperf3 TCP, ${SECS} s, ${STREAMS} stream(s), $(nproc) CPUs, kernel $(uname -r)" >&2
VETH=$(iperf 198.51.100.2)
declare -A GBPS CPU
for mode in ipip udp; do
  dotnet bench/TunnelBench/bin/Release/net10.0/TunnelBench.dll --mode $mode --ns-a "$A" --ns-b "$B" \
    <&- >"$TMP/bench.out" 2>&1 &
  BENCH_PID=$!
  for _ in $(seq 100); do grep -q '^ready' "$TMP/bench.out" && break; kill -0 $BENCH_PID 2>/dev/null || break; sleep 0.1; done
  grep -q '^ready' "$TMP/bench.out" || { cat "$TMP/bench.out" >&2; echo "tunnel-bench: TunnelBench ($mode) did not start" >&2; exit 1; }
  t0=$(ticks $BENCH_PID); s0=$(date +%s.%N)
  GBPS[$mode]=$(iperf 192.0.2.2)
  t1=$(ticks $BENCH_PID); s1=$(date +%s.%N)
  CPU[$mode]=$(echo "$t0 $t1 $s0 $s1 $HZ" | awk '{printf "%.0f", 100 * ($2 - $1) / $5 / ($4 - $3)}')
  kill -TERM $BENCH_PID; wait $BENCH_PID || true; BENCH_PID=
  sed -n '/end:/p' "$TMP/bench.out" >&2
done

printf '\n| path | Gbit/s | vs veth | tunnel CPU (%% of one core, both ends) |\n|---|---|---|---|\n'
printf '| plain veth | %.2f | 1.00 | - |\n' "$VETH"
for mode in ipip udp; do
  printf '| userspace %s | %.2f | %.2f | %s |\n' "$mode" "${GBPS[$mode]}" "$(echo "${GBPS[$mode]} $VETH" | awk '{print $1/$2}')" "${CPU[$mode]}"
done
met=$(echo "${GBPS[ipip]} ${GBPS[udp]}" | awk '{print ($1 >= 1 && $2 >= 1) ? "yes" : "no"}')
echo "target met: $met (userspace tunnel >= 1 Gbit/s in both modes)"
