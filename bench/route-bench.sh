#!/usr/bin/env bash
# route-bench.sh - route programming benchmark: MobilityAgents (pipelined batch API and the
# one-at-a-time API) against `ip -batch`, doing the same work in a fresh network namespace:
# install N host routes, replace them all, dump them, delete them. Prints ops/s per phase side by
# side and a closing line "target met: yes/no (every phase >= ip -batch)". See bench/README.md.
#
# usage: sudo bench/route-bench.sh [--routes N] [--runs R] [--json] [--help]
#   --routes N   routes per phase (default 10000)
#   --runs R     timed runs of every phase, the median is reported (default 3)
#   --json       JSON on stdout (the table goes to stderr)
# env:   MA_BENCH_NO_BUILD=1 - run the existing Release build without rebuilding
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
case " $* " in
  *" --help "*|*" -h "*) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0;;
esac
if [ "$(id -u)" != 0 ]; then
  echo "route-bench: needs root (it creates a network namespace and programs routes in it): sudo $0 $*" >&2
  exit 2
fi
command -v ip >/dev/null || { echo "route-bench: needs ip (iproute2)" >&2; exit 2; }
command -v dotnet >/dev/null || { echo "route-bench: needs the .NET SDK (dotnet)" >&2; exit 2; }
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

cd "$ROOT"
if [ "${MA_BENCH_NO_BUILD:-0}" != 1 ]; then
  # The build's output is shown only if it fails (on stderr: with --json, stdout holds only the JSON).
  log=$(mktemp)
  if ! dotnet build -c Release bench/RouteBench -nologo >"$log" 2>&1; then
    grep -E ' error |warning' "$log" | sort -u >&2 || cat "$log" >&2
    rm -f "$log"
    echo "route-bench: build failed" >&2
    exit 1
  fi
  rm -f "$log"
fi
exec dotnet bench/RouteBench/bin/Release/net10.0/RouteBench.dll "$@"
