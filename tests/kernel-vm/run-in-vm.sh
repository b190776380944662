#!/bin/bash
# run-in-vm.sh - run a script as root inside a throw-away QEMU VM (Debian's stock kernel with the
# tunnel/NAT/bridge modules MobilityAgents tests need) and return the script's exit code.
#
# usage: run-in-vm.sh [options] SCRIPT [ARGS...]
#   --hostfs       share the host root filesystem read-only (virtio-9p) and run SCRIPT in a chroot
#                  of it with a tmpfs overlay on top: the host's dotnet, nft, test assemblies are
#                  usable, and every write is discarded with the VM.  Without --hostfs SCRIPT runs
#                  in the initramfs (bash, busybox applets, iproute2 ip/tc).
#   --cwd DIR      working directory of SCRIPT with --hostfs (default: the current directory)
#   --timeout S    kill the VM after S seconds (default 900; env MA_VM_TIMEOUT)
#   --mem MB       guest RAM (default 1024, 2048 with --hostfs; env MA_VM_MEM)
#   --smp N        virtual CPUs (default: host CPUs, at most 4; env MA_VM_SMP)
#   --accel A      tcg (default) | kvm | auto (kvm if /dev/kvm is usable, else tcg); env MA_VM_ACCEL
#   -v             show kernel messages and the list of loaded modules
#   -h, --help     this text
# SCRIPT always runs under /bin/bash (its #! line is ignored), as root, in the guest's own
# network namespace; the host's network is never touched (the VM has no network device).
# Guest environment: PATH, TERM=dumb, LANG=C.UTF-8, HOME=/root, DOTNET_CLI_TELEMETRY_OPTOUT=1,
# DOTNET_NOLOGO=1, DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1, and every MA_* variable of the caller.
#
# Exit status: SCRIPT's status, or 124 = timeout, 125 = VM setup error (build, boot, host share),
# 126 = no result from the guest (kernel panic, QEMU crash).  Ctrl-C / SIGTERM / SIGHUP stop
# QEMU and remove the temporary files; QEMU also dies if this script is killed with SIGKILL.
#
# The VM (kernel + initramfs) is built by build-vm.sh on first use, and rebuilt when
# build-vm.sh or guest-init.sh change.  Cache: ${MA_KERNEL_VM_CACHE:-/var/cache/mobilityagents/kernel-vm}
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${MA_KERNEL_VM_CACHE:-/var/cache/mobilityagents/kernel-vm}"

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }
die()   { echo "run-in-vm: $*" >&2; exit 125; }

HOSTFS=0 CWD="$PWD" VERBOSE=0
TIMEOUT="${MA_VM_TIMEOUT:-900}" MEM="${MA_VM_MEM:-}" ACCEL="${MA_VM_ACCEL:-tcg}"
SMP="${MA_VM_SMP:-$(( $(nproc) > 4 ? 4 : $(nproc) ))}"
while [ $# -gt 0 ]; do
  case $1 in
    --hostfs)  HOSTFS=1;;
    --cwd)     CWD=${2:?--cwd needs a directory}; shift;;
    --timeout) TIMEOUT=${2:?--timeout needs seconds}; shift;;
    --mem)     MEM=${2:?--mem needs megabytes}; shift;;
    --smp)     SMP=${2:?--smp needs a count}; shift;;
    --accel)   ACCEL=${2:?--accel needs tcg, kvm or auto}; shift;;
    -v)        VERBOSE=1;;
    -h|--help) usage; exit 0;;
    --)        shift; break;;
    -*)        echo "run-in-vm: unknown option $1" >&2; usage >&2; exit 2;;
    *)         break;;
  esac
  shift
done
[ $# -ge 1 ] || { usage >&2; exit 2; }
SCRIPT=$1; shift
[ -f "$SCRIPT" ] || { echo "run-in-vm: no such script: $SCRIPT" >&2; exit 2; }
[[ $TIMEOUT =~ ^[0-9]+$ && $SMP =~ ^[0-9]+$ && ${MEM:-0} =~ ^[0-9]+$ ]] || { echo "run-in-vm: --timeout/--smp/--mem need numbers" >&2; exit 2; }
[ -n "$MEM" ] || { [ $HOSTFS = 1 ] && MEM=2048 || MEM=1024; }
[ $HOSTFS = 0 ] || CWD=$(cd "$CWD" && pwd) || { echo "run-in-vm: no such directory: $CWD" >&2; exit 2; }
case $ACCEL in
  tcg) ;;
  kvm) ;;
  auto) if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then ACCEL=kvm; else ACCEL=tcg; fi;;
  *) echo "run-in-vm: --accel must be tcg, kvm or auto" >&2; exit 2;;
esac

# --- the VM image: build on first use, rebuild when the harness changed -----------------------
stamp() { cat "$HERE/build-vm.sh" "$HERE/guest-init.sh" | sha256sum | cut -d' ' -f1; }
if [ ! -e "$CACHE/initrd.gz" ] || [ ! -e "$CACHE/kernel/vmlinuz" ] ||
   [ "$(cat "$CACHE/stamp" 2>/dev/null)" != "$(stamp)" ]; then
  "$HERE/build-vm.sh" --if-stale >&2 || die "building the VM failed (see above)"
fi
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 not found (run build-vm.sh as root)"

# --- per-run files and cleanup ----------------------------------------------------------------
# First remove what runs killed with SIGKILL left behind (they had no chance to clean up).
for d in "${TMPDIR:-/tmp}"/ma-vm.*; do
  owner=$(cat "$d/owner" 2>/dev/null) && [ -n "$owner" ] || continue   # (empty: being written)
  state=$(sed 's/.*) //' "/proc/$owner/stat" 2>/dev/null | cut -d' ' -f1) || state=""
  case $state in ''|Z|X) rm -rf "$d" 2>/dev/null || true;; esac   # owner gone (or a zombie)
done
T=$(mktemp -d "${TMPDIR:-/tmp}/ma-vm.XXXXXX")
echo $$ > "$T/owner"
VM_PID="" TR_PID=""
stop_vm() {  # stop QEMU (TERM, then KILL) and the console filter; safe to call twice
  local p
  for p in $VM_PID $TR_PID; do kill -TERM "$p" 2>/dev/null || true; done
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    kill -0 "$VM_PID" 2>/dev/null || break
    sleep 0.5
  done
  for p in $VM_PID $TR_PID $(jobs -p); do kill -KILL "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  VM_PID="" TR_PID=""
}
on_signal() {
  trap - INT TERM HUP
  echo "run-in-vm: interrupted (SIG$1), stopping the VM" >&2
  stop_vm
  rm -rf "$T"
  case $1 in INT) exit 130;; HUP) exit 129;; *) exit 143;; esac
}
trap 'stop_vm; rm -rf "$T"' EXIT
trap 'on_signal INT' INT
trap 'on_signal TERM' TERM
trap 'on_signal HUP' HUP

# The guest runs /ma-vm/run.sh: environment, working directory, then SCRIPT with its arguments.
S="$T/stage"; mkdir -p "$S/ma-vm"
cp "$SCRIPT" "$S/ma-vm/script"
{
  echo "# generated by run-in-vm.sh"
  echo "export HOME=/root DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1"
  while IFS= read -r v; do
    printf 'export %s=%q\n' "$v" "${!v}"
  done < <(compgen -e | grep '^MA_' || true)
  if [ $HOSTFS = 1 ]; then
    printf 'cd %q || { echo "ma-vm: no directory %q in the guest"; exit 125; }\n' "$CWD" "$CWD"
  else
    echo "mkdir -p /root; cd /root"
  fi
  printf 'exec /bin/bash /ma-vm/script'
  for a in "$@"; do printf ' %q' "$a"; done
  echo
} > "$S/ma-vm/run.sh"
# per-run archive appended to the cached initramfs (the kernel unpacks concatenated cpios;
# build-vm.sh padded the base to 4 bytes)
cp "$CACHE/initrd.gz" "$T/initrd"
(cd "$S" && find . -mindepth 1 | /bin/busybox cpio -o -H newc 2>/dev/null) >> "$T/initrd"

APPEND="console=ttyS0 panic=-1"
[ $VERBOSE = 1 ] && APPEND="$APPEND ma.verbose=1" || APPEND="$APPEND quiet"
# build-vm.sh extracts an uncompressed vmlinux when it can: QEMU boots it through its PVH entry
# point, about 3 s faster than vmlinuz under TCG (no firmware, no in-guest decompression).
KERNEL="$CACHE/kernel/vmlinux"; [ -e "$KERNEL" ] || KERNEL="$CACHE/kernel/vmlinuz"
QEMU=(qemu-system-x86_64 -nodefaults -no-user-config -display none -machine pc
      -m "$MEM" -smp "$SMP" -kernel "$KERNEL" -initrd "$T/initrd" -no-reboot
      -chardev stdio,id=con0,signal=off -serial chardev:con0 -serial "file:$T/result")
case $ACCEL in
  tcg) QEMU+=(-accel tcg -cpu max);;
  kvm) QEMU+=(-accel kvm -cpu host);;
esac
if [ $HOSTFS = 1 ]; then
  APPEND="$APPEND ma.hostfs=1"
  QEMU+=(-virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap)
fi
QEMU+=(-append "$APPEND")

# --- run --------------------------------------------------------------------------------------
# Console (ttyS0) -> a FIFO -> 'tr' strips the CRs -> our stdout.  QEMU runs under 'timeout';
# 'setpriv --pdeathsig KILL' makes each process die with its parent, so even a SIGKILL of this
# script takes 'timeout' and QEMU down with it.
PDEATH=(); command -v setpriv >/dev/null && PDEATH=(setpriv --pdeathsig KILL)
mkfifo "$T/console"
stdbuf -oL tr -d '\r' < "$T/console" &   # line-buffered: stream the console
TR_PID=$!
"${PDEATH[@]}" timeout -k 10 "$TIMEOUT" "${PDEATH[@]}" "${QEMU[@]}" < /dev/null > "$T/console" &
VM_PID=$!
QRC=0; wait $VM_PID || QRC=$?
VM_PID=""
wait $TR_PID 2>/dev/null || true
TR_PID=""

RC=$(grep -ao 'MA_VM_RC=[0-9]*' "$T/result" 2>/dev/null | tail -1 | cut -d= -f2 || true)
if [ -n "$RC" ]; then exit "$RC"; fi
if [ $QRC = 124 ] || [ $QRC = 137 ]; then echo "run-in-vm: timeout after ${TIMEOUT}s" >&2; exit 124; fi
echo "run-in-vm: no exit status from the guest (qemu exit code $QRC)" >&2
exit 126
