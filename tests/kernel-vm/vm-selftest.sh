#!/bin/bash
# vm-selftest.sh - guest-side check that the test VM offers what MobilityAgents' kernel tests use.
#
# usage (from the host):  tests/kernel-vm/run-in-vm.sh --hostfs tests/kernel-vm/vm-selftest.sh
#                         (also works without --hostfs; the nft check is then skipped)
# Checks, each in a fresh network namespace: classic ipip link, FOU receive port, nftables NAT
# ruleset (if the host has 'nft'), veth/bridge/netem; and that /dev/net/tun is usable.
# Exit 0 iff every check passed.
set -uo pipefail

FAILS=0
ok()  { echo "  ok   - $1"; }
bad() { echo "  FAIL - $1"; FAILS=$((FAILS + 1)); }
# chk DESCRIPTION COMMAND...: run COMMAND, show its output on failure
chk() {
  local d=$1 out; shift
  if out=$("$@" 2>&1); then ok "$d"; else bad "$d"; sed 's/^/         /' <<< "$out"; fi
}
cleanup() { ip netns del ma-selftest 2>/dev/null || true; }
trap cleanup EXIT

echo "vm-selftest: kernel $(uname -r), host $(hostname), root fs: $(awk '$2 == "/" {print $3}' /proc/mounts)"
chk "ip netns add" ip netns add ma-selftest
ns() { ip netns exec ma-selftest "$@"; }
chk "lo up in the namespace" ns ip link set lo up
chk "ipip: ip link add t1 type ipip local 198.51.100.1 remote 198.51.100.2" \
  ns ip link add t1 type ipip local 198.51.100.1 remote 198.51.100.2
chk "ipip: link shows local/remote" \
  bash -c 'ip netns exec ma-selftest ip -d link show t1 | grep -E "ipip .*remote 198.51.100.2 local 198.51.100.1"'
chk "ipip external (collect_md) device" ns ip link add ipip0 type ipip external
chk "fou: ip fou add port 5555 ipproto 4" ns ip fou add port 5555 ipproto 4
chk "fou: ip fou show lists port 5555" bash -c 'ip netns exec ma-selftest ip fou show | grep -q "port 5555"'
chk "fou: ipip link with encap fou" \
  ns ip link add t2 type ipip local 198.51.100.1 remote 198.51.100.3 encap fou encap-sport auto encap-dport 5555
chk "veth pair" ns ip link add v0 type veth peer name v1
chk "bridge + enslave veth" bash -c 'ip netns exec ma-selftest ip link add br0 type bridge && ip netns exec ma-selftest ip link set v0 master br0'
chk "dummy link" ns ip link add d0 type dummy
chk "tc netem delay" bash -c 'ip netns exec ma-selftest ip link set v1 up && ip netns exec ma-selftest tc qdisc add dev v1 root netem delay 10ms'
chk "/dev/net/tun is a character device" test -c /dev/net/tun
chk "tun: ip tuntap add tap0 mode tap" ns ip tuntap add tap0 mode tap
if command -v nft >/dev/null; then
  chk "nft list ruleset" ns nft list ruleset
  chk "nft: NAT table with masquerade" ns nft -f - <<'EOF'
table ip ma_nat {
  chain post { type nat hook postrouting priority srcnat; policy accept; oifname "v1" masquerade; }
  chain pre  { type nat hook prerouting priority dstnat; policy accept; udp dport 4000 dnat to 192.0.2.7:5555; }
  chain forward { type filter hook forward priority 0; policy accept; ct state established,related accept; }
}
EOF
  chk "nft list ruleset shows the NAT table" bash -c 'ip netns exec ma-selftest nft list ruleset | grep -q masquerade'
else
  echo "  skip - nft not installed on the host (apt-get install nftables) or no --hostfs"
fi
echo "vm-selftest: $FAILS failure(s)"
[ $FAILS = 0 ]
