#!/usr/bin/env bash
# run-tests.sh - the whole test suite, from a fresh machine: installs what it needs, builds with
# zero warnings, runs the host tests (in network namespaces it creates) and the kernel-VM tests
# (Debian's stock kernel under QEMU, for the ipip datapath this host's kernel lacks), then the
# demo lab (demo/lab.sh: a laptop roaming through NATs, one test on the host, one in the VM), and
# prints one closing line: "N passed, N failed".
#
# usage: sudo ./run-tests.sh [--host-only | --vm-only] [--configuration Release|Debug]
# env:   MA_VM_TIMEOUT (seconds, default 900) - the kernel-VM run's limit
#        MA_KERNEL_VM_CACHE - where the guest kernel and initramfs are cached
#        MA_DEMO_VM_TIMEOUT (seconds, default 600) - the demo lab's kernel-VM run's limit
set -uo pipefail
cd "$(dirname "$0")"
ROOT=$PWD
CONFIG=Release HOST=1 VM=1
while [ $# -gt 0 ]; do
  case $1 in
    --host-only) VM=0;;
    --vm-only) HOST=0;;
    --configuration|-c) CONFIG=$2; shift;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0;;
    *) echo "run-tests: unknown option $1 (try --help)" >&2; exit 2;;
  esac; shift
done
[ "$(id -u)" = 0 ] || { echo "run-tests: needs root (network namespaces, netlink, QEMU): sudo $0" >&2; exit 2; }

step() { printf '\n=== %s (%s) ===\n' "$1" "$(date -u +%H:%M:%S)"; }
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

step "packages"
need=()
command -v ip >/dev/null || need+=(iproute2)
command -v gcc >/dev/null || need+=(gcc libc6-dev)
[ -e /usr/include/linux/rtnetlink.h ] || need+=(linux-libc-dev)
if [ $VM = 1 ]; then
  command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
  [ -x /bin/busybox ] || need+=(busybox-static)
fi
command -v ping >/dev/null || need+=(iputils-ping)
command -v nft >/dev/null || need+=(nftables)                 # the oracle of the mobile agent's nft table
ldconfig -p | grep -q 'libnftables.so.1 ' || need+=(libnftables1)  # the mobile agent programs nftables through it
docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null || need+=(docker-compose)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null \
    || { echo "run-tests: apt-get install ${need[*]} failed" >&2; echo "0 passed, 1 failed"; exit 1; }
fi
command -v dotnet >/dev/null || { echo "run-tests: the .NET 10 SDK (dotnet) is not on PATH" >&2; echo "0 passed, 1 failed"; exit 1; }

# Sweep namespaces a crashed earlier run may have left (tests name theirs ma-t-*).
for n in $(ip netns list 2>/dev/null | awk '{print $1}' | grep '^ma-t-' || true); do ip netns del "$n" 2>/dev/null || true; done

step "build ($CONFIG, warnings are errors)"
if ! dotnet build MobilityAgents.sln -c "$CONFIG" -nologo -clp:NoSummary -v:q; then
  echo "run-tests: build failed"; echo "0 passed, 1 failed"; exit 1
fi

PASSED=0 FAILED=0 SKIPPED=0
LOG=$(mktemp -d /tmp/ma-tests.XXXXXX)
trap 'rm -rf "$LOG"; for n in $(ip netns list 2>/dev/null | awk "{print \$1}" | grep "^ma-t-" || true); do ip netns del "$n" 2>/dev/null || true; done' EXIT

# Adds the counts of an xUnit v3 summary line ("Total: N, Errors: N, Failed: N, Skipped: N, Not Run: N")
# found in file $1; a run without a summary counts as one failure. An assembly with no test for this
# run (all of its tests are Kernel=ipip, e.g. the end-to-end tests) prints just "Total: 0".
count() {
  local line; line=$(grep -aE 'Total: [0-9]+, Errors: [0-9]+, Failed: [0-9]+, Skipped: [0-9]+' "$1" | tail -1)
  if [ -z "$line" ] && grep -aqE '^ *[A-Za-z0-9.]+ +Total: 0 *$' "$1"; then echo "  (no tests to run here)"; return; fi
  if [ -z "$line" ]; then echo "  (no test summary: counted as 1 failure)"; FAILED=$((FAILED+1)); return; fi
  local t e f s n
  t=$(sed -E 's/.*Total: ([0-9]+).*/\1/' <<<"$line"); e=$(sed -E 's/.*Errors: ([0-9]+).*/\1/' <<<"$line")
  f=$(sed -E 's/.*Failed: ([0-9]+).*/\1/' <<<"$line"); s=$(sed -E 's/.*Skipped: ([0-9]+).*/\1/' <<<"$line")
  n=$(sed -nE 's/.*Not Run: ([0-9]+).*/\1/p' <<<"$line"); n=${n:-0}
  PASSED=$((PASSED + t - f - e - s - n)); FAILED=$((FAILED + f + e)); SKIPPED=$((SKIPPED + s + n))
}

run_host() {  # run_host NAME DLL [xunit args]
  local name=$1 dll=$2; shift 2
  step "host tests: $name"
  (cd "$ROOT" && dotnet "$dll" -noColor "$@") 2>&1 | tee "$LOG/$name.log"
  count "$LOG/$name.log"
}

# Every test project under tests/ is an xUnit v3 executable. Tests tagged Kernel=ipip need a
# kernel with the ipip module: they run in the VM; everything else runs here.
ASSEMBLIES=()
for proj in tests/*/*.Tests.csproj; do
  name=$(basename "$proj" .csproj)
  ASSEMBLIES+=("$(dirname "$proj")/bin/$CONFIG/net10.0/$name.dll")
done

if [ $HOST = 1 ]; then
  for dll in "${ASSEMBLIES[@]}"; do
    run_host "$(basename "$dll" .dll)" "$dll" -trait- "Kernel=ipip"
  done
fi

if [ $VM = 1 ]; then
  for dll in "${ASSEMBLIES[@]}"; do
    name=$(basename "$dll" .dll)
    # Boot a VM only for assemblies that have kernel tests.
    if ! dotnet "$dll" -noColor -list tests -trait "Kernel=ipip" 2>/dev/null | grep -q "^MobilityAgents\."; then continue; fi
    step "kernel-VM tests: $name (Kernel=ipip) on Debian's stock kernel (QEMU/TCG)"
    start=$(date +%s)
    tests/kernel-vm/run-dotnet-tests.sh "$dll" -trait "Kernel=ipip" 2>&1 | tee "$LOG/vm-$name.log"
    echo "  [kernel-VM wall time for $name: $(( $(date +%s) - start )) s]"
    count "$LOG/vm-$name.log"
  done
fi

# The demo lab (demo/lab.sh): the agents, a LAN host pinging the laptop's home address while it
# roams A -> B (NAT 1) -> C (NAT 2) -> A. One test each: it passes when the lab exits 0 and its
# closing line says every move recovered. Its namespaces (ma-demo-*) are removed by the lab
# itself; the leak check below would catch any it left.
demo_lab() {  # demo_lab NAME [lab.sh options]
  local name=$1 start rc; shift
  step "$name: demo/lab.sh --no-build $*"
  start=$(date +%s)
  timeout --foreground -s INT -k 30 "${MA_DEMO_HOST_TIMEOUT:-300}" demo/lab.sh --no-build -c "$CONFIG" "$@" 2>&1 | tee "$LOG/$name.log"
  rc=${PIPESTATUS[0]}
  echo "  [wall time for $name: $(( $(date +%s) - start )) s]"
  if [ "$rc" = 0 ] && grep -aqE '^demo: ([0-9]+) moves, \1 recovered' "$LOG/$name.log"; then
    echo "  ok: $name"; PASSED=$((PASSED+1))
  else
    echo "  FAIL: $name (exit status $rc)"; FAILED=$((FAILED+1))
  fi
}
[ $HOST = 0 ] || demo_lab "demo lab (host)"
[ $VM = 0 ] || MA_DEMO_HOST_TIMEOUT=$(( ${MA_DEMO_VM_TIMEOUT:-600} + 120 )) demo_lab "demo lab (kernel VM)" --vm

step "docker-compose.yml is valid"
if docker compose version >/dev/null 2>&1; then dc=(docker compose); else dc=(docker-compose); fi
if "${dc[@]}" -f docker-compose.yml config >/dev/null; then echo "  ok: ${dc[*]} config"; PASSED=$((PASSED+1));
else echo "  FAIL: ${dc[*]} config"; FAILED=$((FAILED+1)); fi

left=$(ip netns list 2>/dev/null | awk '{print $1}' | grep '^ma-' || true)
if [ -n "$left" ]; then echo "run-tests: namespaces left behind by a test: $left"; FAILED=$((FAILED+1)); fi
if pgrep -x qemu-system-x86 >/dev/null; then echo "run-tests: a QEMU VM was left running"; FAILED=$((FAILED+1)); fi

echo
echo "$PASSED passed, $FAILED failed, $SKIPPED skipped"
[ $FAILED = 0 ]
