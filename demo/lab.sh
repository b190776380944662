#!/usr/bin/env bash
# lab.sh - the MobilityAgents demo lab: a laptop keeps its home address 192.0.2.77 while it moves
# between three networks (one plain, two behind NAT), and a host on the home LAN pings it every
# 20 ms the whole time. Everything lives in network namespaces named ma-demo-* (the root
# namespace is never changed) and is removed on exit, on Ctrl-C and on failure.
#
# usage: sudo demo/lab.sh [options]
#   --datapath D        auto | kernel | userspace: both agents' Datapath key (default auto:
#                       kernel ipip where the kernel can create ipip links, else userspace)
#   --no-build          use the agents already built (skip 'dotnet build -c Release')
#   --vm                run the same lab inside the project's kernel VM (Debian's stock kernel with
#                       ipip/fou under QEMU, see tests/kernel-vm/README.md): builds on the host
#                       first, the guest sees the host's files read-only
#   --keep              leave the lab up at the end for poking (agents running); then clean it
#                       with: sudo demo/lab.sh --clean
#   --clean             remove what a kept or killed lab left (namespaces, processes, temp files)
#   --check-network     only build the networks and walk the laptop through them with plain
#                       ping (no agents): proves the topology and both NATs, then cleans up
#   --move-timeout S    seconds to wait for replies after a move before calling it failed
#                       (20; 60 with --vm, where .NET runs under software emulation)
#   --logs DIR          copy the agents' logs, configs and the ping log to DIR at the end
#   -c, --configuration C   Release (default) or Debug build of the agents
#   -h, --help          this text
#
# The world it builds (addresses: documentation ranges and 10.x, inside the namespaces only):
#
#   ma-demo-lan 192.0.2.10 --- 192.0.2.1 ma-demo-gw 198.51.100.1 --- 198.51.100.254 ma-demo-net
#   (home LAN host)            (home gateway + home agent)           ("the internet", routes)
#     ma-demo-net 203.0.113.1/26   ---------------------- wlan-a 203.0.113.10     ma-demo-laptop
#     ma-demo-net 203.0.113.65/26  --- .66 ma-demo-nat1 10.1.0.1 --- wlan-b 10.1.0.10  (mobile agent,
#     ma-demo-net 203.0.113.129/26 --- .130 ma-demo-nat2 10.2.0.1 --- wlan-c 10.2.0.10  one wlan up)
#
# The laptop (home address 192.0.2.77, identity alice) starts on network A (public address:
# plain ipip), moves to B (behind NAT 1: ipip in UDP), to C (behind NAT 2: UDP), back to A. A
# move brings the current wlan down and the next one up with its default route, as switching
# Wi-Fi does. The handover gap is the longest silence in the LAN host's ping replies around the
# move (ping -D timestamps): last reply before it to first reply after it.
# Ends with a table (per move: networks, encapsulation, gap in ms), the datapaths the agents
# logged, and the line "demo: N moves, N recovered"; exit status 0 only if every move recovered.
# Packages it needs (iproute2 iputils-ping nftables libnftables1 openssl) are apt-get installed.
# Env: MA_DEMO_VM_TIMEOUT (s, default 600) limits the --vm run.
set -uo pipefail

usage() { sed -n '2,/^set -uo/{/^set -uo/d;s/^# \{0,1\}//;p}' "$0"; }

DATAPATH=auto BUILD=1 VM=0 KEEP=0 CLEAN=0 CHECK_NET=0 GUEST=0 MOVE_TIMEOUT="" LOGS="" CONFIG=Release
while [ $# -gt 0 ]; do
  case $1 in
    --datapath) DATAPATH=${2:-}; shift;;
    --datapath=*) DATAPATH=${1#*=};;
    --no-build) BUILD=0;;
    --vm) VM=1;;
    --keep) KEEP=1;;
    --clean) CLEAN=1;;
    --check-network) CHECK_NET=1;;
    --move-timeout) MOVE_TIMEOUT=${2:-}; shift;;
    --logs) LOGS=${2:-}; shift;;
    -c|--configuration) CONFIG=${2:-}; shift;;
    --guest) GUEST=1;;    # internal: this run is the one inside the VM
    -h|--help) usage; exit 0;;
    *) echo "lab: unknown option $1 (try --help)" >&2; exit 2;;
  esac
  shift
done
case $DATAPATH in auto|kernel|userspace) ;; *) echo "lab: --datapath must be auto, kernel or userspace" >&2; exit 2;; esac
case $CONFIG in Release|Debug) ;; *) echo "lab: --configuration must be Release or Debug" >&2; exit 2;; esac
[ -n "$MOVE_TIMEOUT" ] || { if [ $VM = 1 ] || [ $GUEST = 1 ]; then MOVE_TIMEOUT=60; else MOVE_TIMEOUT=20; fi; }
[[ $MOVE_TIMEOUT =~ ^[0-9]+$ ]] && [ "$MOVE_TIMEOUT" -gt 0 ] || { echo "lab: --move-timeout needs seconds" >&2; exit 2; }
[ $VM = 0 ] || [ $KEEP = 0 ] || { echo "lab: --keep cannot be used with --vm (the VM powers off at the end)" >&2; exit 2; }
[ $VM = 0 ] || [ -z "$LOGS" ] || { echo "lab: --logs cannot be used with --vm (the guest's files vanish with it; failures print the agents' last log lines)" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "lab: needs root (network namespaces): sudo $0 $*" >&2; exit 2; }

# The repository: MA_DEMO_ROOT (set for the VM run), else this script's parent folder, else the
# working directory (in the VM the script is a copy under /ma-vm, started in the repository).
ROOT=${MA_DEMO_ROOT:-}
if [ -z "$ROOT" ]; then
  ROOT=$(cd "$(dirname "$0")/.." 2>/dev/null && pwd)
  [ -f "$ROOT/MobilityAgents.sln" ] || ROOT=$PWD
fi
[ -f "$ROOT/MobilityAgents.sln" ] || { echo "lab: cannot find the repository (MobilityAgents.sln); run it as demo/lab.sh from the repository" >&2; exit 2; }
cd "$ROOT" || exit 2
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

START=$(date +%s.%N)
say()  { printf '[%6.1fs] %s\n' "$(awk -v s="$START" -v n="$(date +%s.%N)" 'BEGIN{print n-s}')" "$*"; }
warn() { echo "lab: $*" >&2; }

P=ma-demo
NAMESPACES=(lan gw net nat1 nat2 laptop)
HA_DLL=src/MobilityAgents.HomeAgent/bin/$CONFIG/net10.0/MobilityAgents.HomeAgent.dll
MA_DLL=src/MobilityAgents.MobileAgent/bin/$CONFIG/net10.0/MobilityAgents.MobileAgent.dll
HOME_ADDR=192.0.2.77 LAN_HOST=192.0.2.10 HA_ADDR=198.51.100.1

# Networks the laptop visits: name, interface, its address, the router (default route), expected
# encapsulation (what the home agent should choose there).
declare -A IFACE=([A]=wlan-a [B]=wlan-b [C]=wlan-c)
declare -A ADDR=([A]=203.0.113.10 [B]=10.1.0.10 [C]=10.2.0.10)
declare -A ROUTER=([A]=203.0.113.1 [B]=10.1.0.1 [C]=10.2.0.1)
declare -A WHAT=([A]="network A (public address)" [B]="network B (behind NAT 1)" [C]="network C (behind NAT 2)")
declare -A EXPECT=([A]=ipip [B]=UDP [C]=UDP)
ROUTE=(A B C A)

# --- cleanup ------------------------------------------------------------------------------------
# Kills what runs in our namespaces (agents, ping: only the lab's processes live there), by pid,
# politely first (the agents remove their kernel state on SIGTERM), then deletes the namespaces.
kill_in_namespaces() {  # kill_in_namespaces GRACE_SECONDS
  local grace=$1 pids="" n p i
  for n in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$P-" || true); do
    pids="$pids $(ip netns pids "$n" 2>/dev/null | tr '\n' ' ')"
  done
  pids=$(echo $pids)
  [ -n "$pids" ] || return 0
  for p in $pids; do kill -TERM "$p" 2>/dev/null || true; done
  for ((i = 0; i < grace * 10; i++)); do
    local alive=0
    for p in $pids; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive = 1 ] || return 0
    sleep 0.1
  done
  for p in $pids; do kill -KILL "$p" 2>/dev/null || true; done
  sleep 0.2
}
delete_namespaces() {
  local n
  for n in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$P-" || true); do
    ip netns del "$n" 2>/dev/null || warn "could not delete namespace $n"
  done
}
# Leftovers of an earlier run that was killed or kept: processes, namespaces, temp folders
# (a folder whose owner lab.sh is still alive belongs to a running lab: left alone).
clean_leftovers() {
  local found=0 d owner
  if ip netns list 2>/dev/null | awk '{print $1}' | grep -q "^$P-"; then
    found=1
    echo "lab: removing an earlier lab's namespaces: $(ip netns list | awk '{print $1}' | grep "^$P-" | tr '\n' ' ')"
    kill_in_namespaces 5
    delete_namespaces
  fi
  for d in /tmp/$P.*; do
    [ -d "$d" ] || continue
    owner=$(cat "$d/owner" 2>/dev/null || true)
    if [ -n "$owner" ] && [ "$owner" != $$ ] && [ -d "/proc/$owner" ] && grep -qa lab "/proc/$owner/cmdline" 2>/dev/null; then continue; fi
    found=1; rm -rf "$d"
  done
  return $found
}

T="" PING_PID="" HA_PID="" MA_PID="" FINISHED=0 RESULT=1
teardown() {
  [ -n "$T" ] || return 0
  if [ $KEEP = 1 ] && [ $FINISHED = 1 ]; then
    [ -z "$PING_PID" ] || kill -TERM "$PING_PID" 2>/dev/null
    echo
    echo "The lab is still up (--keep): namespaces $(printf "$P-%s " "${NAMESPACES[@]}" | sed "s/ $//"), agents running."
    echo "  logs and configs:  $T  (home-agent.log, mobile-agent.log)"
    echo "  poke it:           ip netns exec $P-lan ping $HOME_ADDR"
    echo "                     ip -n $P-laptop -br addr; ip -n $P-gw -d link show; ip netns exec $P-gw nft list ruleset"
    echo "  clean up:          sudo $ROOT/demo/lab.sh --clean"
    return 0
  fi
  # Mobile agent first (it deregisters), then the home agent, then whatever is left.
  [ -z "$PING_PID" ] || kill -TERM "$PING_PID" 2>/dev/null
  [ -z "$MA_PID" ] || { kill -TERM "$MA_PID" 2>/dev/null; for _ in $(seq 50); do kill -0 "$MA_PID" 2>/dev/null || break; sleep 0.1; done; }
  [ -z "$HA_PID" ] || { kill -TERM "$HA_PID" 2>/dev/null; for _ in $(seq 50); do kill -0 "$HA_PID" 2>/dev/null || break; sleep 0.1; done; }
  kill_in_namespaces 3
  delete_namespaces
  if [ -n "$LOGS" ]; then mkdir -p "$LOGS" && cp -a "$T"/*.log "$T"/*.json "$LOGS"/ 2>/dev/null; fi
  rm -rf "$T"
  T=""
  local left; left=$(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$P-" || true)
  [ -z "$left" ] || warn "namespaces left behind: $left"
}
on_signal() {
  trap - INT TERM HUP
  echo; say "interrupted (SIG$1): stopping the agents and removing the lab"
  KEEP=0
  teardown
  case $1 in INT) exit 130;; HUP) exit 129;; *) exit 143;; esac
}

if [ $CLEAN = 1 ]; then
  if clean_leftovers; then echo "lab: nothing to clean"; else echo "lab: cleaned"; fi
  exit 0
fi

# --- packages and build (on the host; the VM guest uses the host's) ------------------------------
if [ $GUEST = 0 ]; then
  need=()
  command -v ip >/dev/null || need+=(iproute2)
  command -v ping >/dev/null || need+=(iputils-ping)
  command -v nft >/dev/null || need+=(nftables)
  ldconfig -p | grep -q 'libnftables.so.1 ' || need+=(libnftables1)
  command -v openssl >/dev/null || need+=(openssl)
  if [ ${#need[@]} -gt 0 ]; then
    echo "lab: installing ${need[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null \
      || { echo "lab: apt-get install ${need[*]} failed" >&2; exit 1; }
  fi
  command -v dotnet >/dev/null || { echo "lab: the .NET 10 SDK (dotnet) is not on PATH" >&2; exit 1; }
  if [ $BUILD = 1 ] && [ $CHECK_NET = 0 ]; then
    echo "lab: building the agents (dotnet build -c $CONFIG; --no-build skips this)"
    dotnet build MobilityAgents.sln -c "$CONFIG" -nologo -clp:NoSummary -v:q || { echo "lab: build failed" >&2; exit 1; }
  fi
else
  for c in ip ping nft openssl dotnet setsid stdbuf; do
    command -v $c >/dev/null || { echo "lab: '$c' is missing in the VM (install it on the host)" >&2; exit 1; }
  done
fi

if [ $VM = 1 ]; then
  args=(--guest --no-build --datapath "$DATAPATH" --move-timeout "$MOVE_TIMEOUT" -c "$CONFIG")
  [ $CHECK_NET = 0 ] || args+=(--check-network)
  echo "lab: starting the kernel VM (Debian's stock kernel under QEMU, software emulation: .NET runs ~30x slower there)"
  MA_DEMO_ROOT=$ROOT exec tests/kernel-vm/run-in-vm.sh --hostfs --cwd "$ROOT" --timeout "${MA_DEMO_VM_TIMEOUT:-600}" \
    demo/lab.sh "${args[@]}"
fi

if [ $CHECK_NET = 0 ]; then
  for f in "$HA_DLL" "$MA_DLL"; do
    [ -f "$f" ] || { echo "lab: $f is missing: build first (drop --no-build)" >&2; exit 1; }
  done
fi

# One lab at a time (the namespace names are fixed). The processes it starts do not inherit the lock.
exec 9>/run/$P.lock
flock -n 9 || { echo "lab: another demo/lab.sh is running (lock /run/$P.lock)" >&2; exit 1; }
clean_leftovers || true

T=$(mktemp -d /tmp/$P.XXXXXX) || exit 1
echo $$ > "$T/owner"
trap 'teardown' EXIT
trap 'on_signal INT' INT
trap 'on_signal TERM' TERM
trap 'on_signal HUP' HUP

MOVES=$(( ${#ROUTE[@]} - 1 ))
now_us() { echo "${EPOCHREALTIME/./}"; }
# Wait loops use the wall clock (in the VM one round of checks takes most of a second).
deadline() { echo $(( $(now_us) + $1 * 1000000 )); }   # deadline SECONDS: when to give up, in us
before() { [ "$(now_us)" -lt "$1" ]; }
fail() {  # the lab cannot go on: say why; the closing line still comes, for machines
  say "FAILED: $*"
  [ $CHECK_NET = 1 ] || echo "demo: $MOVES moves, 0 recovered"
  exit 1
}
nsx() { local n=$1; shift; ip netns exec "$P-$n" "$@"; }

# --- the world -----------------------------------------------------------------------------------
say "Building the world in network namespaces: home LAN, home gateway, the internet, two NAT boxes, a laptop with three Wi-Fi networks"
setup_topology() {
  local n
  for n in "${NAMESPACES[@]}"; do ip netns add "$P-$n" || return 1; done
  ip -n $P-gw link add lan0 type veth peer name eth0 netns $P-lan || return 1
  ip -n $P-gw link add wan0 type veth peer name to-gw netns $P-net || return 1
  ip -n $P-net link add to-neta type veth peer name wlan-a netns $P-laptop || return 1
  ip -n $P-net link add to-nat1 type veth peer name wan0 netns $P-nat1 || return 1
  ip -n $P-net link add to-nat2 type veth peer name wan0 netns $P-nat2 || return 1
  ip -n $P-nat1 link add lan0 type veth peer name wlan-b netns $P-laptop || return 1
  ip -n $P-nat2 link add lan0 type veth peer name wlan-c netns $P-laptop || return 1
  ip -n $P-lan -batch - <<EOF || return 1
link set lo up
addr add $LAN_HOST/24 dev eth0
link set eth0 up
route add default via 192.0.2.1
EOF
  ip -n $P-gw -batch - <<EOF || return 1
link set lo up
addr add 192.0.2.1/24 dev lan0
link set lan0 up
addr add $HA_ADDR/24 dev wan0
link set wan0 up
route add default via 198.51.100.254
EOF
  ip -n $P-net -batch - <<EOF || return 1
link set lo up
addr add 198.51.100.254/24 dev to-gw
link set to-gw up
addr add 203.0.113.1/26 dev to-neta
link set to-neta up
addr add 203.0.113.65/26 dev to-nat1
link set to-nat1 up
addr add 203.0.113.129/26 dev to-nat2
link set to-nat2 up
EOF
  local i out in
  for i in 1 2; do
    if [ $i = 1 ]; then out=203.0.113.66 in=10.1.0.1; else out=203.0.113.130 in=10.2.0.1; fi
    ip -n $P-nat$i -batch - <<EOF || return 1
link set lo up
addr add $out/26 dev wan0
link set wan0 up
route add default via ${out%.*}.$(( ${out##*.} - 1 ))
addr add $in/24 dev lan0
link set lan0 up
EOF
    # A home-router NAT: the inside is masqueraded behind the outside address; from outside
    # only replies (conntrack established/related) get in.
    nsx nat$i nft -f - <<EOF || return 1
table ip ma-demo-nat {
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "wan0" counter masquerade
  }
  chain forward {
    type filter hook forward priority filter; policy accept;
    iifname "wan0" ct state != { established, related } drop
  }
}
EOF
  done
  # The laptop: all three Wi-Fi interfaces configured, only network A's up (with its default route).
  ip -n $P-laptop -batch - <<EOF || return 1
link set lo up
addr add ${ADDR[A]}/26 dev wlan-a
addr add ${ADDR[B]}/24 dev wlan-b
addr add ${ADDR[C]}/24 dev wlan-c
link set wlan-a up
route add default via ${ROUTER[A]}
EOF
  for n in gw net nat1 nat2; do nsx $n sysctl -qw net.ipv4.ip_forward=1 || return 1; done
}
setup_topology || fail "could not build the namespaces (see above)"
say "The laptop's interfaces (ip -br addr in $P-laptop): it is on network A"
ip -n $P-laptop -br addr | grep '^wlan' | sed 's/^/           /'

# A move: the current wlan goes down, the next one comes up with its default route (one batch).
# Prints "T0 T1": the wall clock (as ping -D prints it) just before and just after.
CUR=A
move_laptop() {  # move_laptop TO
  local to=$1 t0 t1
  t0=$(date +%s.%N)
  ip -n $P-laptop -batch - <<EOF || return 1
link set ${IFACE[$CUR]} down
link set ${IFACE[$to]} up
route replace default via ${ROUTER[$to]} dev ${IFACE[$to]}
EOF
  t1=$(date +%s.%N)
  CUR=$to
  MOVE_T0=$t0 MOVE_T1=$t1
}

# Without MobilityAgents: from every network the laptop reaches the home gateway's public
# address. From B and C that works only through the NAT (the internet has no route to 10.x).
say "Checking the networks without MobilityAgents: the laptop pings the home gateway $HA_ADDR from each network"
for to in A B C A; do
  if [ $to != "$CUR" ]; then move_laptop $to || fail "could not move the laptop to ${WHAT[$to]}"; fi
  if nsx laptop ping -q -c 1 -W 3 $HA_ADDR >/dev/null 2>&1 || nsx laptop ping -q -c 2 -W 3 $HA_ADDR >/dev/null 2>&1; then
    say "  from ${WHAT[$to]}, as ${ADDR[$to]}: the gateway answers"
  else
    fail "from ${WHAT[$to]} the laptop cannot reach $HA_ADDR (topology broken)"
  fi
  if [ $to != A ] && nsx gw ping -q -c 1 -W 1 ${ADDR[$to]} >/dev/null 2>&1; then
    fail "the gateway reaches ${ADDR[$to]} directly: the NAT is not hiding ${WHAT[$to]}"
  fi
done
say "  behind the NATs the laptop's own address is unreachable from the gateway (the internet has no route to 10.x): only the NAT's answers"
if [ $CHECK_NET = 1 ]; then
  say "network check passed (--check-network: no agents started)"
  RESULT=0; FINISHED=1
  exit 0
fi

# --- certificates and configuration ----------------------------------------------------------------
say "Making certificates (certs/make-certs.sh): a private CA, the home agent's server certificate for $HA_ADDR, alice's client certificate"
{ certs/make-certs.sh -d "$T" ca && certs/make-certs.sh -d "$T" server home-agent $HA_ADDR && certs/make-certs.sh -d "$T" client alice; } \
  > "$T/certs.log" 2>&1 || { cat "$T/certs.log"; fail "certs/make-certs.sh failed"; }

cat > "$T/home-agent.json" <<EOF
{
  "Listen": "$HA_ADDR:4433",
  "Certificate": "$T/home-agent.pem",
  "PrivateKey": "$T/home-agent.key",
  "ClientCa": "$T/ca.pem",
  "HomePrefix": "192.0.2.0/24",
  "OuterAddress": "$HA_ADDR",
  "LanInterface": "lan0",
  "Authorizations": { "alice": ["$HOME_ADDR"] },
  "MinimumLifetimeSeconds": 6,
  "Datapath": "$DATAPATH",
  "UdpPort": 4433
}
EOF
cat > "$T/mobile-agent.json" <<EOF
{
  "HomeAgent": "https://$HA_ADDR:4433",
  "Certificate": "$T/alice.pem",
  "PrivateKey": "$T/alice.key",
  "Ca": "$T/ca.pem",
  "HomeAddress": "$HOME_ADDR",
  "DeviceId": "alice-demo-laptop",
  "LifetimeSeconds": 12,
  "Datapath": "$DATAPATH",
  "Encapsulation": "auto"
}
EOF

# --- the agents ------------------------------------------------------------------------------------
HA_LOG=$T/home-agent.log MA_LOG=$T/mobile-agent.log PING_LOG=$T/ping.log
size() { stat -c %s "$1" 2>/dev/null || echo 0; }
log_tail() {  # log_tail FILE: its last lines, indented
  echo "           --- last lines of $(basename "$1") ---"
  tail -n "${2:-15}" "$1" 2>/dev/null | cut -c1-220 | sed 's/^/           /'
}
agent_died() {  # agent_died NAME PID LOG
  kill -0 "$2" 2>/dev/null && return 1
  local rc=0; wait "$2" 2>/dev/null || rc=$?
  say "the $1 stopped (exit status $rc)"
  log_tail "$3"
  return 0
}
# Waits until FILE has a line matching REGEX (or the agent died, or S seconds passed).
wait_log() {  # wait_log FILE REGEX SECONDS NAME PID
  local dl; dl=$(deadline "$3")
  while before "$dl"; do
    grep -qE "$2" "$1" 2>/dev/null && return 0
    agent_died "$4" "$5" "$1" && return 1
    sleep 0.1
  done
  say "the $4 did not log /$2/ within $3 s"; log_tail "$1"
  return 1
}
AGENT_WAIT=30; [ $GUEST = 1 ] && AGENT_WAIT=240

T_AGENTS=$(date +%s.%N)
say "Starting the home agent on the home gateway (datapath $DATAPATH, gRPC over mutual TLS on $HA_ADDR:4433)"
nsx gw setsid dotnet "$HA_DLL" --config "$T/home-agent.json" > "$HA_LOG" 2>&1 9>&- &
HA_PID=$!
wait_log "$HA_LOG" 'Listening on' $AGENT_WAIT "home agent" $HA_PID || fail "the home agent did not start (log: above)"
HA_OFF0=$(size "$HA_LOG")
say "  $(grep -m1 -o 'Listening on.*' "$HA_LOG" | cut -c1-120)"

say "Starting the mobile agent on the laptop (alice, home address $HOME_ADDR, datapath $DATAPATH, encapsulation auto)"
nsx laptop setsid dotnet "$MA_DLL" --config "$T/mobile-agent.json" > "$MA_LOG" 2>&1 9>&- &
MA_PID=$!

say "The LAN host $LAN_HOST starts pinging the laptop's home address $HOME_ADDR every 20 ms"
nsx lan setsid stdbuf -oL ping -D -n -i 0.02 $HOME_ADDR > "$PING_LOG" 2>&1 9>&- &
PING_PID=$!

# Reply timestamps of ping -D ("[1732500000.123456] 64 bytes from ...").
# recovery T0 T1: after a change at T0..T1, prints "GAP_MS" once 3 replies came after T1 (the gap
# is the longest silence between consecutive replies from the last one before T0 on), else nothing.
# "GAP_MS*" when no reply came in the second before T0 (an earlier move failed): measured from T0.
recovery() {
  awk -v t0="$1" -v t1="$2" '
    / bytes from / { ts = substr($1, 2, length($1) - 2) + 0
      if (ts <= t0) { last = ts; next }
      if (!started) { started = 1; stale = (last < t0 - 1); prev = (stale ? t0 : last); gap = 0 }
      if (ts - prev > gap) gap = ts - prev
      prev = ts
      if (ts > t1 && ++after >= 3) { printf "%.0f%s\n", gap * 1000, (stale ? "*" : ""); exit } }' "$PING_LOG"
}
replies_since() { awk -v t="$1" '/ bytes from / { if (substr($1, 2, length($1) - 2) + 0 > t) n++ } END { print n + 0 }' "$PING_LOG"; }

# The encapsulation in effect, loosely, from what the agents logged since byte offsets HA_OFF MA_OFF:
# the last registration/binding line naming UDP (or fou) or ipip.
encapsulation_since() {
  local lines line
  lines=$( { tail -c +$(( $1 + 1 )) "$HA_LOG"; tail -c +$(( $2 + 1 )) "$MA_LOG"; } 2>/dev/null | grep -iE 'udp|fou|ipip')
  line=$(grep -iE 'regist|binding|encap' <<<"$lines" | tail -1)
  [ -n "$line" ] || line=$(tail -1 <<<"$lines")
  if grep -qiE 'udp|fou' <<<"$line"; then echo UDP; elif grep -qi 'ipip' <<<"$line"; then echo ipip; else echo '?'; fi
}

START_WAIT=60; [ $GUEST = 1 ] && START_WAIT=300
say "Waiting for the laptop to register and the first reply to come back through the tunnel (up to $START_WAIT s)"
ok=0 dl=$(deadline $START_WAIT)
while before "$dl"; do
  if [ "$(replies_since "$T_AGENTS")" -ge 3 ]; then ok=1; break; fi
  agent_died "home agent" $HA_PID "$HA_LOG" && break
  agent_died "mobile agent" $MA_PID "$MA_LOG" && break
  sleep 0.1
done
declare -a ROW_FROM ROW_TO ROW_ENC ROW_EXP ROW_GAP ROW_OK
RECOVERED=0
if [ $ok = 1 ]; then
  first=$(awk -v t="$T_AGENTS" '/ bytes from / { ts = substr($1, 2, length($1) - 2) + 0; if (ts > t) { printf "%.6f\n", ts; exit } }' "$PING_LOG")
  say "  the laptop answers at home address $HOME_ADDR from ${WHAT[A]}: first reply $(awk -v a="$T_AGENTS" -v b="$first" 'BEGIN{printf "%.1f", b-a}') s after the agents started (encapsulation: $(encapsulation_since "$HA_OFF0" 0))"
else
  say "  no reply from $HOME_ADDR within $START_WAIT s of starting the agents: the laptop never got through"
  log_tail "$HA_LOG" 10; log_tail "$MA_LOG" 10
fi

# --- the moves -------------------------------------------------------------------------------------
DWELL=2
for ((m = 1; m <= MOVES; m++)); do
  from=${ROUTE[m-1]} to=${ROUTE[m]}
  ROW_FROM[m]=$from ROW_TO[m]=$to ROW_EXP[m]=${EXPECT[$to]} ROW_ENC[m]='-' ROW_GAP[m]='-' ROW_OK[m]=no
  if [ $ok = 0 ]; then continue; fi          # never reachable: the moves cannot show anything
  sleep $DWELL
  n=$(replies_since "$(awk -v n="$(date +%s.%N)" 'BEGIN{printf "%.6f", n-1}')")
  if [ "$n" -gt 0 ]; then n="replies flowing"; else n="no replies flowing before it"; fi
  ha_off=$(size "$HA_LOG") ma_off=$(size "$MA_LOG")
  say "Move $m/$MOVES: the laptop leaves ${WHAT[$from]} for ${WHAT[$to]}: ${IFACE[$from]} down, ${IFACE[$to]} up as ${ADDR[$to]} ($n)"
  move_laptop "$to" || { say "  could not change the laptop's interfaces"; continue; }
  gap="" dl=$(deadline "$MOVE_TIMEOUT")
  while before "$dl"; do
    gap=$(recovery "$MOVE_T0" "$MOVE_T1")
    [ -z "$gap" ] || break
    agent_died "home agent" $HA_PID "$HA_LOG" && break
    agent_died "mobile agent" $MA_PID "$MA_LOG" && break
    sleep 0.1
  done
  sleep 0.3   # let the agents finish their log lines
  ROW_ENC[m]=$(encapsulation_since "$ha_off" "$ma_off")
  if [ -n "$gap" ]; then
    ROW_GAP[m]=$gap ROW_OK[m]=yes RECOVERED=$((RECOVERED + 1))
    say "  replies are back: $HOME_ADDR answers from ${WHAT[$to]} after a gap of $gap ms (encapsulation: ${ROW_ENC[m]})"
  else
    say "  no replies within $MOVE_TIMEOUT s of the move: move $m failed"
    log_tail "$HA_LOG" 8; log_tail "$MA_LOG" 8
    kill -0 $HA_PID 2>/dev/null && kill -0 $MA_PID 2>/dev/null || ok=0
  fi
done

# --- summary -------------------------------------------------------------------------------------
datapath_of() {  # what the agent logged about its datapath: a message "Datapath ..." (else any naming it)
  local msgs line
  msgs=$(sed -n 's/^[^]]*\] //p' "$1" 2>/dev/null)
  line=$(grep -m1 '^Datapath' <<<"$msgs")
  [ -n "$line" ] || line=$(grep -i -m1 'datapath' <<<"$msgs" | grep -io 'datapath.*')
  line=${line%% (*}
  echo "${line:0:100}" | sed 's/^$/?/'
}
echo
echo "Summary (ping every 20 ms from the home LAN to $HOME_ADDR; gap = last reply before the move to first reply after it)"
printf '  %-4s  %-30s  %-30s  %-13s  %-8s  %8s  %s\n' move from to encapsulation expected gap recovered
for ((m = 1; m <= MOVES; m++)); do
  f=${ROW_FROM[m]} t=${ROW_TO[m]}
  g=${ROW_GAP[m]}; [ "$g" = - ] || g="${g%\*} ms${g//[0-9]/}"
  printf '  %-4s  %-30s  %-30s  %-13s  %-8s  %8s  %s\n' "$m" "$f: ${ADDR[$f]}" "$t: ${ADDR[$t]}" "${ROW_ENC[m]}" "${ROW_EXP[m]}" "$g" "${ROW_OK[m]}"
done
if [[ "${ROW_GAP[*]}" == *"*"* ]]; then echo "  * no replies were flowing before this move (the one before failed): time from the move to the first reply"; fi
echo "  networks: A = ${ADDR[A]} (public), B = ${ADDR[B]} behind NAT 1 (203.0.113.66), C = ${ADDR[C]} behind NAT 2 (203.0.113.130)"
echo "  datapath asked for: $DATAPATH (kernel $(uname -r)); what the agents chose:"
echo "  home agent:   $(datapath_of "$HA_LOG")"
echo "  mobile agent: $(datapath_of "$MA_LOG")"
if [ -n "$LOGS" ]; then echo "  logs: $LOGS"; fi
echo "demo: $MOVES moves, $RECOVERED recovered"
FINISHED=1
[ "$RECOVERED" = "$MOVES" ] && RESULT=0
exit $RESULT
