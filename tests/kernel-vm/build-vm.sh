#!/bin/bash
# build-vm.sh - prepare the throw-away test VM used by run-in-vm.sh.
#
# MobilityAgents' kernel datapath (ipip, FOU, nftables NAT, bridges, ...) is tested against a real
# Linux kernel.  Machines whose own kernel lacks those modules (containers, Firecracker guests) can
# still run the tests by booting Debian's stock kernel under QEMU (software emulation, TCG) with
# this script's tiny busybox initramfs.  See README.md in this folder.
#
# usage: build-vm.sh [--clean] [--if-stale] [-h|--help]
#   --clean      forget everything cached (kernel package, modules, initramfs) and start over;
#                use it to pick up a newer Debian kernel.
#   --if-stale   do nothing if the cached VM was built by the current build-vm.sh and
#                guest-init.sh (what run-in-vm.sh uses).
#
# What it does (idempotent; a second run reuses the downloaded kernel and only rebuilds the
# initramfs, which takes a few seconds):
#   1. installs the host tools it needs with apt-get, if missing: qemu-system-x86,
#      busybox-static, kmod (modinfo/depmod).  'apt-get update' runs only when something is missing.
#   2. downloads the kernel package that linux-image-amd64 depends on (apt-get download; nothing
#      is installed system-wide) and unpacks it into the cache with dpkg-deb -x.
#   3. keeps vmlinuz and only the modules listed below plus their dependencies; the load order is
#      a topological sort of each module's 'depends=' (modinfo) and 'softdep pre:'.
#   4. builds the busybox initramfs (guest-init.sh as /init, the ordered module list, bash and
#      iproute2 for scripts that run without the host share).
#
# Environment:
#   MA_KERNEL_VM_CACHE   cache directory (default /var/cache/mobilityagents/kernel-vm)
#   MA_KERNEL_VM_KPKG    kernel package to use (default: what linux-image-amd64 depends on,
#                        e.g. linux-image-6.1.0-56-amd64)
# Needs root when host packages are missing (apt-get install); otherwise any user who can write
# the cache directory.  Debian/Ubuntu hosts only (apt, dpkg).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CACHE="${MA_KERNEL_VM_CACHE:-/var/cache/mobilityagents/kernel-vm}"

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }
log()  { echo "build-vm: $*" >&2; }
die()  { echo "build-vm: error: $*" >&2; exit 1; }

CLEAN=0 IF_STALE=0
while [ $# -gt 0 ]; do
  case $1 in
    --clean) CLEAN=1;;
    --if-stale) IF_STALE=1;;
    -h|--help) usage; exit 0;;
    *) usage >&2; exit 2;;
  esac
  shift
done

# ---------------------------------------------------------------------------------------------
# Modules.  Name[:params].  The load order is computed, not written here: list what you need.
# REQUIRED modules must exist in the kernel package (or be built in), otherwise the build fails.
REQUIRED_MODULES=(
  tunnel4 ip_tunnel ipip          # classic + external (collect_md) ipip tunnels
  veth                            # links between network namespaces
  dummy:numdummies=0              # dummy links (no automatic dummy0)
  tun                             # /dev/net/tun (devtmpfs creates the node once tun is loaded)
)
# OPTIONAL modules: a warning if missing.
OPTIONAL_MODULES=(
  # host share (run-in-vm.sh --hostfs): virtio-pci + 9p + overlayfs
  virtio_pci 9pnet_virtio 9p overlay
  # NAT traversal: foo-over-UDP (pulls udp_tunnel, ip6_udp_tunnel), nftables NAT + conntrack
  fou fou6
  nf_tables nft_chain_nat nft_nat nft_masq nft_ct nf_nat nf_conntrack
  # LAN tests: a LAN of several hosts is a bridge (llc, stp); link delay/loss with tc netem
  bridge sch_netem
)
# ---------------------------------------------------------------------------------------------

# Stamp = hash of the harness sources; run-in-vm.sh rebuilds when it no longer matches.
harness_stamp() { cat "$HERE/build-vm.sh" "$HERE/guest-init.sh" | sha256sum | cut -d' ' -f1; }

mkdir -p "$CACHE" || die "cannot create $CACHE (set MA_KERNEL_VM_CACHE to a writable directory)"
# Serialise concurrent builds (two test runs starting at once).
exec 9>"$CACHE/.lock"
flock 9
if [ $IF_STALE = 1 ] && [ $CLEAN = 0 ] && [ -e "$CACHE/initrd.gz" ] && [ -e "$CACHE/kernel/vmlinuz" ] &&
   [ "$(cat "$CACHE/stamp" 2>/dev/null)" = "$(harness_stamp)" ]; then
  exit 0   # another run built it while we waited for the lock
fi

if [ $CLEAN = 1 ]; then
  log "removing cached kernel and initramfs in $CACHE"
  rm -rf "$CACHE/deb" "$CACHE/kernel" "$CACHE/initrd.gz" "$CACHE/stamp"
fi

# --- 1. host packages -------------------------------------------------------------------------
need_pkgs=()
command -v qemu-system-x86_64 >/dev/null || need_pkgs+=(qemu-system-x86)
# (grep without -q: an early exit would SIGPIPE busybox and fail the pipeline under pipefail)
{ [ -x /bin/busybox ] && /bin/busybox --list | grep -x insmod; } >/dev/null 2>&1 || need_pkgs+=(busybox-static)
PATH="$PATH:/usr/sbin:/sbin"   # modinfo/depmod live in /sbin, often not on a user's PATH
{ command -v modinfo && command -v depmod; } >/dev/null 2>&1 || need_pkgs+=(kmod)
for t in apt-get apt-cache dpkg-deb; do
  command -v $t >/dev/null || die "$t not found: this harness needs a Debian/Ubuntu host"
done
if [ ${#need_pkgs[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || die "missing host packages (${need_pkgs[*]}); run as root or install them: apt-get install --no-install-recommends ${need_pkgs[*]}"
  log "installing ${need_pkgs[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

# --- 2. kernel package ------------------------------------------------------------------------
mkdir -p "$CACHE/deb"
DEB=""
if [ -z "${MA_KERNEL_VM_KPKG:-}" ]; then
  # reuse a previously downloaded kernel (works offline); --clean forgets it
  DEB=$(ls -1 "$CACHE"/deb/linux-image-*.deb 2>/dev/null | tail -1 || true)
else
  DEB=$(ls -1 "$CACHE"/deb/"$MA_KERNEL_VM_KPKG"_*.deb 2>/dev/null | tail -1 || true)
fi
if [ -z "$DEB" ]; then
  kpkg_of_meta() { apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}'; }
  KPKG="${MA_KERNEL_VM_KPKG:-$(kpkg_of_meta)}"
  if [ -z "$KPKG" ] || ! apt-cache show "$KPKG" >/dev/null 2>&1; then
    log "apt lists do not know the kernel package yet: apt-get update"
    apt-get update -qq
    KPKG="${MA_KERNEL_VM_KPKG:-$(kpkg_of_meta)}"
  fi
  [ -n "$KPKG" ] || die "cannot find the package linux-image-amd64 depends on (set MA_KERNEL_VM_KPKG)"
  log "downloading $KPKG"
  rm -f "$CACHE"/deb/*.deb "$CACHE"/deb/*.partial
  # apt-get download writes into the current directory.  As root it warns that the '_apt'
  # sandbox user cannot write there; the download still works, so hide that one warning.
  (cd "$CACHE/deb" && apt-get download -qq "$KPKG" 2> >(grep -v 'unsandboxed as root' >&2))
  DEB=$(ls -1 "$CACHE"/deb/"$KPKG"_*.deb | tail -1)
fi

# --- 3. vmlinuz + the needed modules, in load order --------------------------------------------
# The module directory is reused while the .deb and the module lists are unchanged.
MODSPEC=$( { basename "$DEB"; printf '%s\n' "${REQUIRED_MODULES[@]}" -- "${OPTIONAL_MODULES[@]}"; } | sha256sum | cut -d' ' -f1)
K="$CACHE/kernel"
if [ ! -e "$K/vmlinuz" ] || [ "$(cat "$K/modspec" 2>/dev/null)" != "$MODSPEC" ]; then
  log "unpacking $(basename "$DEB")"
  X=$(mktemp -d "$CACHE/unpack.XXXXXX")
  trap 'rm -rf "$X"' EXIT
  dpkg-deb -x "$DEB" "$X/root"
  KVER=$(ls "$X/root/lib/modules")
  MODROOT="$X/root/lib/modules/$KVER"
  # depmod on the unpacked tree (writes only there) gives modules.alias, used to resolve
  # softdep names such as 'crc32c' (libcrc32c needs crc32c_generic loaded first).
  depmod -b "$X/root" "$KVER"

  declare -A MODFILE=() STATE=() PARAMS=() BUILTIN=()
  while IFS= read -r f; do
    n=${f##*/}; n=${n%%.ko*}; MODFILE[${n//-/_}]=$f        # (no subshells: 4000 files)
  done < <(find "$MODROOT/kernel" -name '*.ko' -o -name '*.ko.xz' -o -name '*.ko.zst' -o -name '*.ko.gz')
  while IFS= read -r l; do
    n=${l##*/}; n=${n%%.ko*}; BUILTIN[${n//-/_}]=1
  done < "$MODROOT/modules.builtin"

  # alias -> module (prefer the portable *_generic implementation when several provide it)
  resolve_alias() {
    local a=$1 cands
    cands=$(awk -v a="$a" '$1=="alias" && $2==a {print $3}' "$MODROOT/modules.alias")
    { echo "$cands" | grep '_generic$' || echo "$cands"; } | head -1
  }

  ORDER=()      # module names, dependencies first
  MISSING=()
  # visit NAME: depth-first, appends NAME to ORDER after all its dependencies.  Returns 1 when
  # NAME or one of its hard dependencies does not exist (built-in modules count as present).
  visit() {
    local n=${1//-/_} d deps soft
    case ${STATE[$n]:-} in
      "done") return 0;;
      busy) die "dependency cycle through module $n";;
      bad) return 1;;
    esac
    if [ -z "${MODFILE[$n]:-}" ]; then
      if [ -n "${BUILTIN[$n]:-}" ]; then STATE[$n]="done"; return 0; fi
      STATE[$n]=bad; MISSING+=("$n"); return 1
    fi
    STATE[$n]=busy
    # 'softdep pre:' modules must be loaded first, but are not hard requirements
    soft=$(modinfo -F softdep "${MODFILE[$n]}" | sed -n 's/.*pre:\(.*\)/\1/p' | sed 's/post:.*//')
    for d in $soft; do
      [ -n "${MODFILE[${d//-/_}]:-}" ] || d=$(resolve_alias "$d")
      [ -n "$d" ] && { visit "$d" || true; }
    done
    deps=$(modinfo -F depends "${MODFILE[$n]}")
    for d in ${deps//,/ }; do
      visit "$d" || { STATE[$n]=bad; return 1; }
    done
    STATE[$n]="done"
    ORDER+=("$n")
  }

  for spec in "${REQUIRED_MODULES[@]}"; do
    n=${spec%%:*}; [ "$n" = "$spec" ] || PARAMS[$n]=${spec#*:}
    MISSING=()
    visit "$n" || die "required module $n (or a dependency of it) is not in $(basename "$DEB"): ${MISSING[*]}"
  done
  for spec in "${OPTIONAL_MODULES[@]}"; do
    n=${spec%%:*}; [ "$n" = "$spec" ] || PARAMS[$n]=${spec#*:}
    MISSING=()
    visit "$n" || log "warning: optional module $n unavailable (missing: ${MISSING[*]}); tests needing it will fail"
  done

  rm -rf "$K.new"; mkdir -p "$K.new/modules"
  cp "$X/root/boot/vmlinuz-$KVER" "$K.new/vmlinuz"
  # Boot speed: QEMU can start an uncompressed vmlinux directly (PVH entry point, CONFIG_PVH=y),
  # which skips the firmware and the in-guest decompression: ~0.5 s instead of ~4 s under TCG.
  # vmlinuz is a boot stub followed by the compressed kernel; find it and decompress it.
  if grep -q '^CONFIG_PVH=y' "$X/root/boot/config-$KVER" 2>/dev/null; then
    for fmt in $'\xfd7zXZ\x00':xz $'\x28\xb5\x2f\xfd':zstd $'\x1f\x8b\x08':gzip; do
      magic=${fmt%:*} tool=${fmt##*:}
      command -v "$tool" >/dev/null || continue
      for off in $(LC_ALL=C grep -abo "$magic" "$K.new/vmlinuz" | cut -d: -f1 | head -3); do
        tail -c +$((off + 1)) "$K.new/vmlinuz" | "$tool" -dc 2>/dev/null > "$K.new/vmlinux" || true
        [ "$(head -c 4 "$K.new/vmlinux" | od -An -c | tr -d ' ')" = '177ELF' ] && break 2
      done
    done
    if [ "$(head -c 4 "$K.new/vmlinux" 2>/dev/null | od -An -c | tr -d ' ')" = '177ELF' ]; then
      log "extracted vmlinux ($(du -h "$K.new/vmlinux" | cut -f1)) for direct PVH boot"
    else
      rm -f "$K.new/vmlinux"; log "note: could not extract vmlinux; booting vmlinuz (slower)"
    fi
  fi
  echo "$KVER" > "$K.new/version"
  dpkg-deb --show --showformat='${Package} ${Version}\n' "$DEB" > "$K.new/package"
  for n in "${ORDER[@]}"; do
    f=${MODFILE[$n]}
    case $f in  # busybox insmod wants plain .ko files
      *.ko.xz)  xz -dc "$f"   > "$K.new/modules/$n.ko";;
      *.ko.zst) zstd -dqc "$f" > "$K.new/modules/$n.ko";;
      *.ko.gz)  gzip -dc "$f" > "$K.new/modules/$n.ko";;
      *)        cp "$f" "$K.new/modules/$n.ko";;
    esac
    echo "$n${PARAMS[$n]:+ ${PARAMS[$n]}}" >> "$K.new/modules.load"
  done
  echo "$MODSPEC" > "$K.new/modspec"
  rm -rf "$K"; mv "$K.new" "$K"
  rm -rf "$X"; trap - EXIT
  log "kernel $KVER: ${#ORDER[@]} modules ($(du -sh "$K/modules" | cut -f1)): $(cut -d' ' -f1 "$K/modules.load" | tr '\n' ' ')"
fi
KVER=$(cat "$K/version")

# --- 4. initramfs -----------------------------------------------------------------------------
R=$(mktemp -d "$CACHE/initramfs.XXXXXX")
trap 'rm -rf "$R"' EXIT
mkdir -p "$R"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,run,root,etc,newroot,host,lib/modules,ma-vm}
cp /bin/busybox "$R/bin/busybox"
# busybox applets as /bin symlinks, except 'sh' and 'ip': busybox ash always prefers its own
# applets, and busybox 'ip' has no netns/encap/fou support, so scripts run under bash with the
# real iproute2.  /bin/sh is bash.
for a in $(/bin/busybox --list); do
  case $a in busybox|sh|ip|tc) ;; *) ln -s busybox "$R/bin/$a";; esac
done
# addbin HOSTPATH DEST: copy a dynamically linked host binary and the shared libraries it uses
addbin() {
  cp -L "$1" "$R$2"
  local l
  for l in $(ldd "$1" | grep -o '/[^ ]*'); do
    [ -e "$R$l" ] || { mkdir -p "$R$(dirname "$l")"; cp -L "$l" "$R$l"; }
  done
}
addbin /bin/bash /bin/bash
ln -s bash "$R/bin/sh"
addbin "$(readlink -f "$(command -v ip)")" /usr/bin/ip
command -v tc >/dev/null && addbin "$(readlink -f "$(command -v tc)")" /usr/sbin/tc
printf 'root:x:0:0:root:/root:/bin/bash\n' > "$R/etc/passwd"
printf 'root:x:0:\n' > "$R/etc/group"
cp "$K"/modules/*.ko "$R/lib/modules/"
mkdir -p "$R/etc/ma-kernel-vm"
cp "$K/modules.load" "$R/etc/ma-kernel-vm/modules.load"   # guest-init.sh loads these in order
cat "$K/package" > "$R/etc/ma-kernel-vm/kernel"
cp "$HERE/guest-init.sh" "$R/init"; chmod 755 "$R/init"
(cd "$R" && find . | /bin/busybox cpio -o -H newc 2>/dev/null | gzip -1) > "$CACHE/initrd.gz.new"
# Pad to a 4-byte boundary: run-in-vm.sh appends a per-run cpio, and the kernel only finds an
# appended archive at an aligned offset ("invalid magic at start of compressed archive").
truncate -s $(( ($(stat -c %s "$CACHE/initrd.gz.new") + 3) / 4 * 4 )) "$CACHE/initrd.gz.new"
mv "$CACHE/initrd.gz.new" "$CACHE/initrd.gz"
harness_stamp > "$CACHE/stamp"
log "built $CACHE/initrd.gz ($(du -h "$CACHE/initrd.gz" | cut -f1)), kernel $KVER ($(cat "$K/package"))"
