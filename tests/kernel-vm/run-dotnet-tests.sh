#!/bin/bash
# run-dotnet-tests.sh - run an xUnit v3 test assembly inside the kernel-test VM.
#
# usage: run-dotnet-tests.sh [-h] ASSEMBLY.dll [XUNIT_ARGS...]
#   ASSEMBLY.dll   an xunit.v3 test project's output, built on the host (e.g.
#                  dotnet build -c Release); it runs in the guest as 'dotnet ASSEMBLY.dll ARGS'.
#                  The guest has no network: restore and build on the host first.
#   XUNIT_ARGS     passed to the xUnit v3 in-process runner, e.g. -trait "Kernel=ipip",
#                  -method "*Ipip*", -class Foo.Bar.  '-noColor' is added unless you pass -color.
# The VM shares the host filesystem read-only (run-in-vm.sh --hostfs); the working directory is
# the repository root.  Prints the runner's console output, including its
# '=== TEST EXECUTION SUMMARY ===' block, then one final line:
#   vm-tests: N passed, N failed, N skipped
# (failed = Failed + Errors of the xUnit summary, skipped = Skipped + Not Run).  Without a summary
# it prints 'vm-tests: 0 passed, 1 failed, 0 skipped'.
# Exit status: 0 iff the VM ran, a summary was printed and nothing failed; otherwise the test
# process's exit code, or run-in-vm.sh's (124 timeout, 125 VM setup error, 126 no result),
# or 1.
#
# Environment: MA_VM_TIMEOUT (seconds, default 900: .NET under TCG emulation is ~30x slower than
# native), MA_VM_MEM, MA_VM_SMP, MA_VM_ACCEL (see run-in-vm.sh); every MA_* variable reaches the
# tests' environment in the guest.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }
case ${1:-} in -h|--help) usage; exit 0;; '') usage >&2; exit 2;; esac
ASM=$(realpath -e "$1" 2>/dev/null) || { echo "run-dotnet-tests: no such file: $1" >&2; exit 2; }
shift
[ -e "${ASM%.dll}.runtimeconfig.json" ] ||
  echo "run-dotnet-tests: warning: ${ASM%.dll}.runtimeconfig.json is missing; is this an executable xunit.v3 test assembly (<OutputType>Exe</OutputType>)?" >&2
ARGS=("$@")
case " ${ARGS[*]} " in *" -noColor "*|*" -nocolor "*|*" -color "*) ;; *) ARGS+=(-noColor);; esac

T=$(mktemp -d "${TMPDIR:-/tmp}/ma-vm.tests.XXXXXX")
echo $$ > "$T/owner"   # run-in-vm.sh removes ma-vm.* directories whose owner died (SIGKILL)
VM_PID="" TEE_PID=""
cleanup() {
  local p
  for p in $VM_PID; do kill -TERM "$p" 2>/dev/null || true; done   # run-in-vm.sh stops QEMU
  wait 2>/dev/null || true
  rm -rf "$T"
}
trap cleanup EXIT
trap 'echo "run-dotnet-tests: interrupted" >&2; exit 130' INT
trap 'echo "run-dotnet-tests: terminated" >&2; exit 143' TERM HUP

# The guest side: run the assembly, report how long it took in guest time.
cat > "$T/guest.sh" <<'EOF'
asm=$1; shift
start=$(cut -d' ' -f1 /proc/uptime)
echo "ma-vm: dotnet $asm $*"
dotnet "$asm" "$@"
rc=$?
echo "ma-vm: dotnet exited $rc after $(awk -v s="$start" '{printf "%.1f", $1 - s}' /proc/uptime)s (guest time)"
exit $rc
EOF

# run-in-vm.sh runs in the background so that a TERM to this script can be forwarded (bash
# would otherwise wait for a foreground child before running the trap); its output is
# streamed through tee and kept for parsing the summary.
mkfifo "$T/out.fifo"
tee "$T/out" < "$T/out.fifo" &
TEE_PID=$!
PDEATH=(); command -v setpriv >/dev/null && PDEATH=(setpriv --pdeathsig TERM)
"${PDEATH[@]}" "$HERE/run-in-vm.sh" --hostfs --cwd "$REPO" --timeout "${MA_VM_TIMEOUT:-900}" \
  "$T/guest.sh" "$ASM" "${ARGS[@]}" > "$T/out.fifo" 2>&1 &
VM_PID=$!
RC=0; wait $VM_PID || RC=$?
VM_PID=""
wait $TEE_PID || true

# xUnit v3:   === TEST EXECUTION SUMMARY ===
#                MyTests  Total: 3, Errors: 0, Failed: 1, Skipped: 0, Not Run: 0, Time: 0.5s
SUMMARY=$(sed -n '/=== TEST EXECUTION SUMMARY ===/,$p' "$T/out" | grep -m1 'Total: [0-9]' || true)
count() { sed -n "s/.*[ ,]$1: \([0-9][0-9]*\).*/\1/p" <<< "$SUMMARY" | head -1; }
if [ -z "$SUMMARY" ]; then
  echo "vm-tests: 0 passed, 1 failed, 0 skipped"
  echo "run-dotnet-tests: no xUnit summary in the output (VM exit code $RC)" >&2
  [ $RC != 0 ] && exit $RC || exit 1
fi
total=$(count Total) errors=$(count Errors) failed=$(count Failed) skipped=$(count Skipped) notrun=$(count 'Not Run')
total=${total:-0} errors=${errors:-0} failed=${failed:-0} skipped=${skipped:-0} notrun=${notrun:-0}
passed=$(( total - failed - skipped - notrun )); [ $passed -ge 0 ] || passed=0
echo "vm-tests: $passed passed, $((failed + errors)) failed, $((skipped + notrun)) skipped"
if [ $RC != 0 ]; then exit $RC; fi
[ $((failed + errors)) = 0 ] || exit 1
exit 0
