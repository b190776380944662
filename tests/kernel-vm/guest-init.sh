#!/bin/busybox sh
# guest-init.sh - /init of the MobilityAgents kernel-test VM (busybox sh; built into the
# initramfs by build-vm.sh, booted by run-in-vm.sh).
#
# 1. mounts /proc /sys /dev, sets the hostname, brings lo up
# 2. loads the modules listed (in dependency order) in /etc/ma-kernel-vm/modules.load
# 3. with 'ma.hostfs=1' on the kernel command line: mounts the host root filesystem (virtio-9p,
#    read-only) under a tmpfs overlay and chroots into it (host userland: dotnet, nft, ...;
#    every write lands in guest RAM and is discarded); otherwise stays in the initramfs
#    (bash, busybox, iproute2)
# 4. runs /ma-vm/run.sh (appended to the initramfs by run-in-vm.sh) under /bin/bash
# 5. writes "MA_VM_RC=<exit code>" to the second serial port (/dev/ttyS1) and powers off.
#
# PID 1 must never exit (the kernel would panic), so nothing here uses 'set -e'; every path
# ends in finish().  The 125 exit code means "VM setup failed" (see run-in-vm.sh).
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
HOSTNAME=ma-kernel-vm

up()  { cut -d' ' -f1 /proc/uptime; }
say() { echo "ma-vm: $*"; }
verbose() { case " $(cat /proc/cmdline) " in *" ma.verbose=1 "*) return 0;; esac; return 1; }

finish() {
  say "script exit $1, uptime $(up)s"
  echo "MA_VM_RC=$1" > /dev/ttyS1
  sync
  poweroff -f
  echo o > /proc/sysrq-trigger   # poweroff -f does not return; this is only a fallback
  while :; do sleep 60; done
}

# mount_api ROOT: the kernel API filesystems a test needs, under ROOT ('' = the initramfs).
# /run is a fresh tmpfs so that 'ip netns add' can create /run/netns and bind-mount namespaces.
mount_api() {
  mkdir -p "$1/proc" "$1/sys" "$1/dev" "$1/run" "$1/tmp"
  mount -t proc proc "$1/proc"
  mount -t sysfs sysfs "$1/sys"
  mount -t devtmpfs devtmpfs "$1/dev"
  mkdir -p "$1/dev/pts" "$1/dev/shm"
  mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts "$1/dev/pts"
  mount -t tmpfs -o mode=1777 tmpfs "$1/dev/shm"
  mount -t tmpfs -o mode=755 tmpfs "$1/run"
  mkdir -p "$1/run/netns" "$1/run/lock"
  # /dev/net/tun appears in devtmpfs once 'tun' is loaded; create it if that did not happen
  [ -c "$1/dev/net/tun" ] || { mkdir -p "$1/dev/net"; mknod -m 666 "$1/dev/net/tun" c 10 200; }
}

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
say "init start, uptime $(up)s"
hostname "$HOSTNAME"
ip link set lo up

# --- modules, in the order build-vm.sh computed (insmod does not resolve dependencies) ---------
ok=0; failed=""
while read -r name params; do
  [ -n "$name" ] || continue
  # shellcheck disable=SC2086  # params are word-split on purpose
  if insmod "/lib/modules/$name.ko" $params 2>/tmp/insmod.err; then
    ok=$((ok+1))
  elif grep -q 'File exists' /tmp/insmod.err; then
    ok=$((ok+1))                 # already loaded (pulled in by the kernel itself)
  else
    failed="$failed $name"; cat /tmp/insmod.err
  fi
done < /etc/ma-kernel-vm/modules.load
say "kernel $(uname -r), $ok modules loaded${failed:+, FAILED:$failed}"
verbose && say "modules: $(cut -d' ' -f1 /proc/modules | tr '\n' ' ')"

if grep -q 'ma.hostfs=1' /proc/cmdline; then
  # --- host root over 9p (read-only) + tmpfs overlay, then chroot ------------------------------
  # virtio-pci probing finishes asynchronously after insmod: retry until the 9p channel is there
  i=0
  while ! mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose hostroot /host 2>/dev/null; do
    i=$((i+1))
    if [ $i -ge 50 ]; then
      say "cannot mount the host share (9p 'hostroot'): is the virtio-9p device missing?"
      finish 125
    fi
    sleep 0.1
  done
  mkdir -p /ovl
  mount -t tmpfs -o size=80% tmpfs /ovl && mkdir -p /ovl/upper /ovl/work &&
    mount -t overlay overlay -o lowerdir=/host,upperdir=/ovl/upper,workdir=/ovl/work /newroot ||
    { say "cannot mount the overlay on top of the host share"; finish 125; }
  N=/newroot
  mount_api $N
  # writes to /root and /tmp land in the tmpfs overlay (.NET needs a writable HOME and /tmp)
  mkdir -p $N/root $N/tmp && chmod 1777 $N/tmp
  echo "$HOSTNAME" > $N/etc/hostname 2>/dev/null
  mkdir -p $N/ma-vm && cp -a /ma-vm/. $N/ma-vm/
  say "host filesystem ready, uptime $(up)s"
  [ -x $N/bin/bash ] || { say "the host has no /bin/bash"; finish 125; }
  chroot $N /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    TERM=dumb LANG=C.UTF-8 HOSTNAME=$HOSTNAME /bin/bash /ma-vm/run.sh
  finish $?
else
  # --- the script runs in the initramfs itself -------------------------------------------------
  # (/proc /sys /dev are mounted already; add /run, /dev/pts, /dev/shm and /tmp)
  mkdir -p /dev/pts /dev/shm
  mount -t devpts devpts /dev/pts
  mount -t tmpfs -o mode=1777 tmpfs /dev/shm
  mount -t tmpfs -o mode=755 tmpfs /run && mkdir -p /run/netns
  mount -t tmpfs -o mode=1777 tmpfs /tmp
  [ -c /dev/net/tun ] || { mkdir -p /dev/net; mknod -m 666 /dev/net/tun c 10 200; }
  env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin TERM=dumb HOSTNAME=$HOSTNAME /bin/bash /ma-vm/run.sh
  finish $?
fi
