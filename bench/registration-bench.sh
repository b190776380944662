#!/usr/bin/env bash
# registration-bench.sh - registrations per second on one home agent, and the handover gap: the
# real home agent daemon in a fresh network namespace with N authorized laptops (one client
# certificate each), C concurrent gRPC clients registering distinct care-of addresses; prints
# registrations/s, p50/p99 latency, and the time until the kernel holds all N tunnels ("control
# plane" and "control plane + kernel" separately). Where the kernel cannot make ipip links (this
# host) the figures are control plane only, and say so. With --vm it runs in the kernel VM (Debian's
# kernel under QEMU/TCG: ipip, but ~30x slower than native), where it also measures the handover
# gap with the real mobile agent. See bench/README.md.
#
# usage: sudo bench/registration-bench.sh [--vm] [--vm-timeout S] [--laptops N] [--concurrency C]
#                                         [--runs R] [--handover-runs H] [--part P] [...] [--help]
#   --vm            run inside the kernel VM (tests/kernel-vm/run-in-vm.sh --hostfs); built here first
#   --vm-timeout S  stop the VM after S seconds (default 3600)
#   everything else goes to the benchmark: --help lists it (--laptops 1000, --concurrency 50, ...)
# env:   MA_BENCH_NO_BUILD=1 - run the existing Release build without rebuilding
set -euo pipefail
# In the kernel VM the script is run from a copy: the repository root comes from the caller.
ROOT=${MA_BENCH_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
VM=0 VM_TIMEOUT=3600 ARGS=()
while [ $# -gt 0 ]; do
  case $1 in
    --vm) VM=1;;
    --vm-timeout) VM_TIMEOUT=${2:?--vm-timeout needs seconds}; shift;;
    --help|-h) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; echo; ARGS+=(--help);;
    *) ARGS+=("$1");;
  esac
  shift
done
DLL=bench/RegistrationBench/bin/Release/net10.0/RegistrationBench.dll
cd "$ROOT"
case " ${ARGS[*]-} " in
  *" --help "*) [ -f "$DLL" ] && exec dotnet "$DLL" --help; exit 0;;
esac
if [ "$(id -u)" != 0 ]; then
  echo "registration-bench: needs root (it creates network namespaces and runs the daemons in them): sudo $0 $*" >&2
  exit 2
fi
command -v ip >/dev/null || { echo "registration-bench: needs ip (iproute2)" >&2; exit 2; }
command -v dotnet >/dev/null || { echo "registration-bench: needs the .NET SDK (dotnet)" >&2; exit 2; }
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

if [ "${MA_BENCH_NO_BUILD:-0}" != 1 ]; then
  # The build's output is shown only if it fails. The daemons are built with it (copied beside it).
  log=$(mktemp)
  if ! dotnet build -c Release bench/RegistrationBench -nologo >"$log" 2>&1; then
    grep -E ' error |warning' "$log" | sort -u >&2 || cat "$log" >&2
    rm -f "$log"
    echo "registration-bench: build failed" >&2
    exit 1
  fi
  rm -f "$log"
fi

if [ $VM = 1 ]; then
  # The guest sees this filesystem read-only (writes go to RAM) and has no network: everything
  # runs in namespaces inside it. MA_* variables reach the guest.
  export MA_BENCH_NO_BUILD=1 MA_BENCH_ROOT="$ROOT"
  # The VM's speed depends on how busy the host is: its load average goes on the environment line.
  export MA_BENCH_ENVIRONMENT="kernel VM: Debian's kernel under QEMU/TCG (software emulation, about 30x slower than native; .NET under TCG likewise); host load average at start $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) host CPU(s)"
  exec tests/kernel-vm/run-in-vm.sh --hostfs --cwd "$ROOT" --timeout "$VM_TIMEOUT" bench/registration-bench.sh "${ARGS[@]}"
fi
exec dotnet "$DLL" "${ARGS[@]}"
