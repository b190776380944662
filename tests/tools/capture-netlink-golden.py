#!/usr/bin/env python3
"""capture-netlink-golden.py - capture golden rtnetlink bytes from iproute2 and the Linux kernel.

Runs `ip` commands under strace inside fresh network namespaces, takes the exact bytes of the
netlink messages from strace's hex dumps (-e write=all -e read=all) and emits C# golden data
(tests/MobilityAgents.Netlink.Tests/Golden/Captured.*.cs) with every field decoded on its own
line.  The decoder below is independent of the C# encoder; constant names are read from the
kernel UAPI headers in /usr/include/linux.

usage (from the repository root, as root):
  python3 tests/tools/capture-netlink-golden.py                  # capture in the kernel VM, write Golden/
  python3 tests/tools/capture-netlink-golden.py --local          # capture on this host instead
                                                                 #   (needs the dummy, veth and ipip modules)
  python3 tests/tools/capture-netlink-golden.py --from-raw FILE  # re-emit from a saved raw capture
options:
  --save-raw FILE   also write the raw capture (JSON: strace text per command) to FILE
  --out DIR         output folder (default: tests/MobilityAgents.Netlink.Tests/Golden)
  --kvm-dir DIR     writable copy of the kernel-vm harness (default /tmp/kvm-ref; created from
                    --kvm-src, default /work/shared/tools/kernel-vm, when missing)
internal:
  --inner           run the captures here (fresh namespaces, deleted afterwards) and print the
                    raw capture between markers on stdout (this is what runs inside the VM)

Only python3 stdlib, strace and iproute2 are needed.  Every capture runs in a namespace created
by this tool (gcap<pid>-<group>) that is deleted at the end, also on failure; the root network
namespace is never changed (in VM mode the tool sets net.core.fb_tunnels_only_for_init_net=1 in
the throw-away guest so that new namespaces get no tunl0 and ifindexes are lo=1, first link=2).
"""
import argparse
import base64
import errno
import json
import os
import re
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
DEFAULT_OUT = os.path.join(REPO, 'tests', 'MobilityAgents.Netlink.Tests', 'Golden')
TOOL_REL = 'tests/tools/capture-netlink-golden.py'
BEGIN, END = '=====GOLDEN-RAW-BEGIN=====', '=====GOLDEN-RAW-END====='
STRACE_TRACE = 'trace=socket,bind,getsockname,setsockopt,sendmsg,recvmsg,sendto,recvfrom'
STRACE = ['strace', '-f', '-ttt', '-T', '-xx', '-s', '65536', '-e', STRACE_TRACE,
          '-e', 'write=all', '-e', 'read=all']

# --------------------------------------------------------------------------------------------
# what to capture
# --------------------------------------------------------------------------------------------
# cap(name, ip-args, main message type, ...):
#   reply=True      also emit the kernel's answer(s) to the main request (every recvmsg on that
#                   socket until the next send), one capture per recvmsg
#   request=False   do not emit the main request itself
#   probe=True      also emit iproute2's RTM_NEWLINK capability probe (identical for all
#                   `ip link add/set/del`, so emitted once)
#   aux_replies     also emit the answers to the auxiliary requests (lookups)
#   pre=[...]       untraced ip commands run right before this capture


def cap(name, cmd, main, desc, reply=False, request=True, probe=False, aux_replies=False, pre=()):
    return dict(name=name, cmd=cmd, main=main, desc=desc, reply=reply, request=request,
                probe=probe, aux_replies=aux_replies, pre=list(pre))


GROUPS = [
    dict(id='link', kind='Link', setup=['link add d0 type dummy'], captures=[
        cap('LinkAddDummy', 'link add d1 type dummy', 'RTM_NEWLINK',
            'create dummy link d1 (NLM_F_CREATE|NLM_F_EXCL, IFLA_IFNAME + IFLA_LINKINFO/IFLA_INFO_KIND)', probe=True),
        cap('LinkSetUp', 'link set dev d0 up', 'RTM_NEWLINK', 'set d0 (ifindex 2) IFF_UP'),
        cap('LinkSetDown', 'link set dev d0 down', 'RTM_NEWLINK', 'clear IFF_UP on d0 (ifindex 2)'),
        cap('LinkSetMtu', 'link set dev d0 mtu 1400', 'RTM_NEWLINK', 'set IFLA_MTU 1400 on d0 (ifindex 2)'),
        cap('LinkDel', 'link del dev d1', 'RTM_DELLINK', 'delete d1 (ifindex 3)'),
        cap('LinkAddVeth', 'link add va type veth peer name vb', 'RTM_NEWLINK',
            'create veth pair va/vb (VETH_INFO_PEER carries an ifinfomsg + IFLA_IFNAME)'),
        cap('LinkShowLo', 'link show dev lo', 'RTM_GETLINK', 'get link lo (ifindex 1)', reply=True),
        cap('LinkShowDummy', 'link show dev d0', 'RTM_GETLINK', 'get link d0 (dummy, ifindex 2)', reply=True),
    ]),
    dict(id='ipip', kind='Link', setup=['link add d0 type dummy'], captures=[
        cap('IpipAddTunl1', 'link add tunl1 type ipip local 198.51.100.1 remote 198.51.100.2 ttl 64 tos 0 pmtudisc dev d0',
            'RTM_NEWLINK', 'create ipip tunl1 with local/remote/ttl/tos/pmtudisc and underlay link d0'),
        cap('IpipAddTunl2', 'link add tunl2 type ipip local 198.51.100.1 remote 198.51.100.3 nopmtudisc',
            'RTM_NEWLINK', 'create ipip tunl2 with nopmtudisc'),
        cap('IpipAddExternal', 'link add ipip0 type ipip external', 'RTM_NEWLINK',
            'create collect_md (external) ipip0'),
        cap('IpipSetRemote', 'link set dev tunl1 type ipip remote 198.51.100.9', 'RTM_NEWLINK',
            'change the remote of tunl1 in place (ip first fetches the link, then re-sends its parameters)',
            aux_replies=True),
        cap('IpipShowTunl1', '-d link show dev tunl1', 'RTM_GETLINK', 'get link tunl1 with details', reply=True),
        cap('IpipShowExternal', '-d link show dev ipip0', 'RTM_GETLINK', 'get link ipip0 (external) with details',
            reply=True),
    ]),
    dict(id='addr', kind='Address', setup=['link add d0 type dummy'], captures=[
        cap('AddrAdd', 'addr add 192.0.2.1/24 dev d0', 'RTM_NEWADDR', 'add 192.0.2.1/24 to d0 (ifindex 2)'),
        cap('AddrAddPeer', 'addr add 10.0.0.1 peer 10.0.0.2 dev d0', 'RTM_NEWADDR',
            'add point-to-point 10.0.0.1 peer 10.0.0.2 to d0'),
        cap('AddrReplace', 'addr replace 192.0.2.1/24 dev d0', 'RTM_NEWADDR', 'replace 192.0.2.1/24 on d0'),
        cap('AddrShow', '-4 addr show dev d0', 'RTM_GETADDR', 'dump IPv4 addresses of d0 (both present)',
            reply=True),
        cap('AddrDel', 'addr del 192.0.2.1/24 dev d0', 'RTM_DELADDR', 'delete 192.0.2.1/24 from d0'),
    ]),
    dict(id='route', kind='Route',
         setup=['link add d0 type dummy', 'link set dev d0 up', 'addr add 192.0.2.1/24 dev d0'], captures=[
        cap('RouteAddHost', 'route add 192.0.2.10/32 dev d0 table 100 proto 99', 'RTM_NEWROUTE',
            'add host route 192.0.2.10/32 dev d0 (oif 2) table 100 proto 99'),
        cap('RouteAddVia', 'route add 203.0.113.0/24 via 192.0.2.254 dev d0 src 192.0.2.1 table 100 proto 99 metric 50 mtu 1400',
            'RTM_NEWROUTE', 'add 203.0.113.0/24 via 192.0.2.254 with prefsrc, priority and RTA_METRICS/RTAX_MTU'),
        cap('RouteAddScopeLink', 'route add 192.0.2.11/32 dev d0 scope link table 100 proto 99', 'RTM_NEWROUTE',
            'add 192.0.2.11/32 with explicit scope link'),
        cap('RouteReplace', 'route replace 192.0.2.10/32 dev d0 table 100 proto 99', 'RTM_NEWROUTE',
            'replace 192.0.2.10/32 (NLM_F_CREATE|NLM_F_REPLACE)'),
        cap('RouteShowTable', 'route show table 100', 'RTM_GETROUTE', 'dump table 100 (three routes present)',
            reply=True),
        cap('RouteDel', 'route del 192.0.2.10/32 dev d0 table 100', 'RTM_DELROUTE', 'delete 192.0.2.10/32 from table 100'),
        cap('RouteAddDefault', 'route add default dev d0 table 200', 'RTM_NEWROUTE', 'add default dev d0 to table 200'),
    ]),
    dict(id='encap', kind='Route',
         setup=['link add d0 type dummy', 'link add ipip0 type ipip external', 'link set dev ipip0 up'], captures=[
        cap('RouteAddEncapIp', 'route add 192.0.2.20/32 encap ip dst 198.51.100.2 dev ipip0 table 100 proto 99',
            'RTM_NEWROUTE', 'add 192.0.2.20/32 with lightweight tunnel encap ip (RTA_ENCAP_TYPE/RTA_ENCAP) via ipip0 (ifindex 3)'),
        cap('RouteShowTableEncap', 'route show table 100', 'RTM_GETROUTE', 'dump table 100 with the encap route',
            reply=True),
    ]),
    dict(id='rule', kind='Rule', setup=['link add d0 type dummy'], captures=[
        cap('RuleAddFrom', 'rule add from 192.0.2.10 table 200 priority 1000 protocol 99', 'RTM_NEWRULE',
            'add rule from 192.0.2.10 lookup 200 pref 1000 proto 99'),
        cap('RuleAddFwmark', 'rule add fwmark 0x1/0xff table 200 priority 1001', 'RTM_NEWRULE',
            'add rule fwmark 0x1/0xff lookup 200 pref 1001'),
        cap('RuleAddToIif', 'rule add to 203.0.113.0/24 iif lo table 200 priority 1002', 'RTM_NEWRULE',
            'add rule to 203.0.113.0/24 iif lo lookup 200 pref 1002'),
        cap('RuleAddFromOif', 'rule add from 192.0.2.0/24 oif d0 table 200 priority 1003', 'RTM_NEWRULE',
            'add rule from 192.0.2.0/24 oif d0 lookup 200 pref 1003'),
        cap('RuleShow', 'rule show', 'RTM_GETRULE', 'dump IPv4 rules (defaults + the four above)', reply=True),
        cap('RuleDel', 'rule del from 192.0.2.10 table 200 priority 1000', 'RTM_DELRULE', 'delete the pref 1000 rule'),
    ]),
    dict(id='neigh', kind='Neighbour',
         setup=['link add d0 type dummy', 'link set dev d0 up', 'addr add 192.0.2.1/24 dev d0'], captures=[
        cap('NeighAddProxy', 'neigh add proxy 192.0.2.10 dev d0', 'RTM_NEWNEIGH', 'add proxy-ARP entry 192.0.2.10 on d0 (ifindex 2)'),
        cap('NeighShowProxy', 'neigh show proxy', 'RTM_GETNEIGH', 'dump proxy entries (one present)', reply=True),
        cap('NeighDelProxy', 'neigh del proxy 192.0.2.10 dev d0', 'RTM_DELNEIGH', 'delete the proxy entry'),
        cap('NeighAddPermanent', 'neigh add 192.0.2.5 lladdr 02:00:00:00:00:01 dev d0 nud permanent', 'RTM_NEWNEIGH',
            'add permanent neighbour 192.0.2.5 lladdr 02:00:00:00:00:01 on d0'),
        cap('NeighShowDev', 'neigh show dev d0', 'RTM_GETNEIGH', 'dump neighbours of d0 (the permanent entry)',
            reply=True),
    ]),
    dict(id='errors', kind='Errors',
         setup=['link add d0 type dummy', 'link set dev d0 up', 'addr add 192.0.2.1/24 dev d0'], captures=[
        cap('ErrorRouteInvalidGateway', 'route add 203.0.113.0/24 via 198.51.100.77 dev d0 table 100', 'RTM_NEWROUTE',
            'gateway not reachable on d0: NLMSG_ERROR with extended ack message', reply=True),
        cap('ErrorRuleExists', 'rule add from 192.0.2.10 table 200 priority 1000', 'RTM_NEWRULE',
            'duplicate rule: NLMSG_ERROR -EEXIST', reply=True,
            pre=['rule add from 192.0.2.10 table 200 priority 1000']),
        cap('ErrorAddrDelMissing', 'addr del 198.51.100.200/24 dev d0', 'RTM_DELADDR',
            'delete an address that is not there: NLMSG_ERROR -EADDRNOTAVAIL', reply=True),
        cap('AckRouteAdd', 'route add 192.0.2.10/32 dev d0 table 100', 'RTM_NEWROUTE',
            'successful request: NLMSG_ERROR with error 0 (ack)', reply=True),
    ]),
]

EVENTS = dict(id='events', kind='Events', setup=['link add d0 type dummy', 'link set dev d0 up'],
              monitor='monitor link address route rule', triggers=[
    ('LinkAdd', 'link add e1 type dummy'),
    ('AddrAdd', 'addr add 192.0.2.1/24 dev d0'),
    ('RouteAdd', 'route add 203.0.113.0/24 via 192.0.2.254 dev d0 table 100 proto 99'),
    ('RuleAdd', 'rule add from 192.0.2.10 table 100 priority 1000'),
    ('RuleDel', 'rule del from 192.0.2.10 table 100 priority 1000'),
    ('RouteDel', 'route del 203.0.113.0/24 via 192.0.2.254 dev d0 table 100'),
    ('AddrDel', 'addr del 192.0.2.1/24 dev d0'),
    ('LinkDel', 'link del e1'),
])

FILE_ORDER = ['Link', 'Address', 'Route', 'Rule', 'Neighbour', 'Errors', 'Events']

# --------------------------------------------------------------------------------------------
# inner: run the captures (on this machine, in fresh namespaces)
# --------------------------------------------------------------------------------------------
_NAMESPACES = []


def _cleanup_namespaces():
    while _NAMESPACES:
        ns = _NAMESPACES.pop()
        subprocess.run(['ip', 'netns', 'del', ns], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _on_signal(signum, frame):
    _cleanup_namespaces()
    sys.exit(128 + signum)


def sh(argv, check=True, **kw):
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                       timeout=120, **kw)
    if check and p.returncode != 0:
        raise RuntimeError('%s failed (%d): %s' % (' '.join(argv), p.returncode, p.stderr.strip()))
    return p


def new_ns(gid):
    ns = 'gcap%d-%s' % (os.getpid(), gid)
    _NAMESPACES.append(ns)
    sh(['ip', 'netns', 'add', ns])
    return ns


def del_ns(ns):
    sh(['ip', 'netns', 'del', ns], check=False)
    if ns in _NAMESPACES:
        _NAMESPACES.remove(ns)


def links(ns):
    out = sh(['ip', '-n', ns, '-o', 'link', 'show']).stdout
    res = []
    for line in out.splitlines():
        m = re.match(r'^(\d+):\s+([^:@\s]+)', line)
        if m:
            res.append([int(m.group(1)), m.group(2)])
    return res


def run_group(g, tmp):
    ns = new_ns(g['id'])
    history = ['ip netns add NS (fresh namespace)']
    caps = []
    try:
        for c in g['setup']:
            sh(['ip', '-n', ns] + shlex.split(c))
            history.append('ip ' + c)
        for c in g['captures']:
            for p in c['pre']:
                sh(['ip', '-n', ns] + shlex.split(p))
                history.append('ip ' + p)
            before = links(ns)
            out = os.path.join(tmp, c['name'] + '.strace')
            argv = ['ip', 'netns', 'exec', ns] + STRACE + ['-o', out, 'ip'] + shlex.split(c['cmd'])
            p = sh(argv, check=False)
            with open(out) as f:
                trace = f.read()
            caps.append(dict(name=c['name'], cmd='ip ' + c['cmd'], history=list(history), links_before=before,
                             links_after=links(ns), rc=p.returncode, stdout=p.stdout, stderr=p.stderr,
                             strace=trace))
            history.append('ip ' + c['cmd'])
    finally:
        del_ns(ns)
    return dict(id=g['id'], captures=caps)


def run_events(g, tmp):
    ns = new_ns(g['id'])
    history = ['ip netns add NS (fresh namespace)']
    try:
        for c in g['setup']:
            sh(['ip', '-n', ns] + shlex.split(c))
            history.append('ip ' + c)
        time.sleep(3)  # let IPv6 autoconf/DAD on d0 settle before the monitor starts
        out = os.path.join(tmp, 'monitor.strace')
        mon = subprocess.Popen(STRACE + ['-o', out, 'ip', '-n', ns] + shlex.split(g['monitor']),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
        time.sleep(2)
        before = links(ns)
        windows = []
        for tname, tcmd in g['triggers']:
            t0 = time.time()
            p = sh(['ip', '-n', ns] + shlex.split(tcmd), check=False)
            time.sleep(0.7)
            windows.append(dict(name=tname, cmd='ip ' + tcmd, t0=t0, rc=p.returncode, stderr=p.stderr,
                                links=links(ns)))
        time.sleep(1)
        # stop `ip monitor` (strace's child); strace then exits by itself
        kids = []
        try:
            with open('/proc/%d/task/%d/children' % (mon.pid, mon.pid)) as f:
                kids = [int(x) for x in f.read().split()]
        except OSError:
            pass
        for k in kids:
            os.kill(k, signal.SIGTERM)
        try:
            mout, merr = mon.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            mon.kill()
            mout, merr = mon.communicate()
        with open(out) as f:
            trace = f.read()
        return dict(id=g['id'], monitor='ip -n NS ' + g['monitor'], history=history, links_before=before,
                    windows=windows, strace=trace, stdout=mout)
    finally:
        del_ns(ns)


def inner(args):
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    meta = dict(iproute2=sh(['ip', '-V']).stdout.strip(), uname_r=os.uname().release,
                uname_v=os.uname().version, strace=sh(['strace', '-V']).stdout.splitlines()[0],
                where=args.where, date=time.strftime('%Y-%m-%d', time.gmtime()))
    tmp = tempfile.mkdtemp(prefix='gcap')
    try:
        groups = [run_group(g, tmp) for g in GROUPS]
        events = run_events(EVENTS, tmp)
    finally:
        _cleanup_namespaces()
        shutil.rmtree(tmp, ignore_errors=True)
    raw = dict(meta=meta, groups=groups, events=events)
    blob = base64.b64encode(zlib.compress(json.dumps(raw).encode(), 9)).decode()
    sys.stdout.write(BEGIN + '\n')
    for i in range(0, len(blob), 76):
        sys.stdout.write(blob[i:i + 76] + '\n')
    sys.stdout.write(END + '\n')
    sys.stdout.flush()


def parse_blob(text):
    m = re.search(re.escape(BEGIN) + r'\s*\n(.*?)\n' + re.escape(END), text, re.S)
    if not m:
        raise RuntimeError('no raw capture between markers in the output')
    blob = ''.join(l.strip() for l in m.group(1).splitlines() if re.fullmatch(r'[A-Za-z0-9+/=]+', l.strip()))
    return json.loads(zlib.decompress(base64.b64decode(blob)))


def capture_vm(args):
    kvm = args.kvm_dir
    if not os.path.exists(os.path.join(kvm, 'run-in-vm.sh')):
        shutil.copytree(args.kvm_src, kvm)
        for root, dirs, files in os.walk(kvm):
            for n in dirs + files:
                os.chmod(os.path.join(root, n), 0o755 if n.endswith('.sh') or n in dirs else 0o644)
    fd, script = tempfile.mkstemp(prefix='gcap-guest', suffix='.sh')
    with os.fdopen(fd, 'w') as f:
        f.write('set -e\n'
                '# guest only: no fallback tunl0 in new namespaces (ifindex lo=1, first link=2)\n'
                'sysctl -qw net.core.fb_tunnels_only_for_init_net=1\n'
                'exec python3 %s --inner --where vm\n' % shlex.quote(os.path.abspath(__file__)))
    env = dict(os.environ, KERNEL_VM_DIR=kvm)
    try:
        p = subprocess.run([os.path.join(kvm, 'run-in-vm.sh'), '--hostfs', '--timeout', '900', script],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, universal_newlines=True)
    finally:
        os.unlink(script)
    if p.returncode != 0:
        sys.stderr.write(p.stdout[-4000:] + p.stderr[-4000:])
        raise RuntimeError('kernel VM run failed (%d)' % p.returncode)
    return parse_blob(p.stdout)


def capture_local(args):
    p = subprocess.run([sys.executable, os.path.abspath(__file__), '--inner', '--where', 'local'],
                       stdout=subprocess.PIPE, universal_newlines=True)
    if p.returncode != 0:
        raise RuntimeError('local capture failed (%d)' % p.returncode)
    return parse_blob(p.stdout)

# --------------------------------------------------------------------------------------------
# strace output -> syscall events with the exact bytes
# --------------------------------------------------------------------------------------------


class Ev(object):
    def __init__(self, pid, t, call, fd, text):
        self.pid, self.t, self.call, self.fd, self.text = pid, t, call, fd, text
        self.ret = None
        self.t_end = t
        self.data = bytearray()
        self.peek = False


SYSCALL_RE = re.compile(r'^(\d+)\s+(\d+\.\d+)\s+(?:(\w+)\((.*)|<\.\.\. (\w+) resumed>(.*))$')
DUMP_RE = re.compile(r'^ \| [0-9a-f]{5}  ')


def parse_strace(text):
    evs, pending, last = [], {}, None
    for line in text.splitlines():
        if DUMP_RE.match(line):
            if last is not None:
                last.data += bytes.fromhex(' '.join(re.findall(r'[0-9a-f]{2}', line[10:59])))
            continue
        m = SYSCALL_RE.match(line)
        if not m:
            continue
        pid, t = int(m.group(1)), float(m.group(2))
        if m.group(3):
            call, rest = m.group(3), m.group(4)
            if rest.endswith('<unfinished ...>'):
                pending[pid] = (call, t, rest)
                last = None
                continue
        else:
            call, t0, head = pending.pop(pid, (m.group(5), t, ''))
            rest, t = head.replace('<unfinished ...>', '') + m.group(6), t0
        fm = re.match(r'(\d+)', rest)
        ev = Ev(pid, t, call, int(fm.group(1)) if fm else -1, rest)
        rm = re.search(r'\)\s+=\s+(-?\d+)', rest)
        ev.ret = int(rm.group(1)) if rm else None
        dm = re.search(r'<(\d+\.\d+)>\s*$', rest)
        ev.t_end = t + (float(dm.group(1)) if dm else 0.0)
        ev.peek = call in ('recvmsg', 'recvfrom') and bool(re.search(r'\b(?:MSG_PEEK)\b[^{}]*\)\s+=', rest))
        evs.append(ev)
        last = ev
    return evs


def socket_calls(text):
    """per socket (in creation order): its socket/bind/getsockname/setsockopt calls, fd/port ids normalised."""
    seqs, cur = [], {}
    for ev in parse_strace(text):
        if ev.call not in ('socket', 'bind', 'setsockopt', 'getsockname'):
            continue
        line = '%s(%s' % (ev.call, ev.text.rstrip())
        line = re.sub(r'\s*<\d+\.\d+>$', '', line)
        line = re.sub(r'^(\w+\()\d+', r'\1FD', line)
        line = re.sub(r'nl_pid=-?\d+', 'nl_pid=PORTID', line)
        if ev.call == 'socket':
            line = re.sub(r'= \d+$', '= FD', line)
            seq = [line]
            seqs.append(seq)
            if ev.ret is not None:
                cur[ev.ret] = seq
        elif ev.fd in cur:
            cur[ev.fd].append(line)
    return [tuple(x) for x in seqs]


# --------------------------------------------------------------------------------------------
# constants from the UAPI headers
# --------------------------------------------------------------------------------------------
HEADERS = ['netlink.h', 'rtnetlink.h', 'if_link.h', 'if_addr.h', 'fib_rules.h', 'neighbour.h', 'lwtunnel.h',
           'if_tunnel.h', 'veth.h', 'if_arp.h', 'if.h', 'ip.h', 'ipv6.h', 'snmp.h']
CONSTS = {}      # name -> value (in header order: first definition wins)
ORDER = []       # names in header order
ENUMS = []       # lists of (name, value)

AF = {0: 'AF_UNSPEC', 1: 'AF_UNIX', 2: 'AF_INET', 7: 'AF_BRIDGE', 10: 'AF_INET6', 17: 'AF_PACKET', 28: 'AF_MPLS',
      128: 'RTNL_FAMILY_IPMR', 129: 'RTNL_FAMILY_IP6MR'}


def _eval(expr):
    expr = expr.strip()
    if not expr or '"' in expr or "'" in expr:
        return None
    expr = re.sub(r'\b(0[xX][0-9a-fA-F]+|\d+)[uUlL]+\b', r'\1', expr)
    names = re.findall(r'[A-Za-z_]\w*', re.sub(r'\b0[xX][0-9a-fA-F]+\b|\b\d+\b', ' ', expr))
    if any(n not in CONSTS for n in names):
        return None
    try:
        v = eval(expr, {'__builtins__': {}}, dict(CONSTS))  # only known integer constants and operators
    except Exception:
        return None
    return v if isinstance(v, int) else None


def _define(name, value):
    if name not in CONSTS:
        CONSTS[name] = value
        ORDER.append(name)


def load_headers(incdir='/usr/include/linux'):
    tok = re.compile(r'^[ \t]*#[ \t]*define[ \t]+(\w+)(\(?)[ \t]*([^\n]*)$|\benum\b\s*\w*\s*\{(.*?)\}', re.M | re.S)
    for h in HEADERS:
        path = os.path.join(incdir, h)
        if not os.path.exists(path):
            continue
        with open(path) as f:
            text = f.read()
        text = re.sub(r'/\*.*?\*/', ' ', text, flags=re.S)
        text = re.sub(r'//[^\n]*', ' ', text)
        text = re.sub(r'\\\n', ' ', text)
        for m in tok.finditer(text):
            if m.group(1):
                if m.group(2):      # function-like macro
                    continue
                v = _eval(m.group(3))
                if v is not None:
                    _define(m.group(1), v)
            else:
                body = re.sub(r'^[ \t]*#[^\n]*$', '', m.group(4), flags=re.M)
                val, members = -1, []
                for item in body.split(','):
                    item = item.strip()
                    if not item:
                        continue
                    if '=' in item:
                        name, expr = item.split('=', 1)
                        name = name.strip()
                        v = _eval(expr)
                        if v is None:
                            break
                        val = v
                    else:
                        name = item
                        val += 1
                    if not re.fullmatch(r'\w+', name):
                        break
                    _define(name, val)
                    members.append((name, val))
                ENUMS.append(members)


def enum_names(first):
    """value -> name of the enum that has member `first`."""
    for e in ENUMS:
        if any(n == first for n, v in e):
            res = {}
            for n, v in e:
                if not n.startswith('__') and v not in res:
                    res[v] = n
            return res
    return {}


def prefix_names(prefix, exclude=()):
    res = {}
    for n in ORDER:
        if n.startswith(prefix) and not any(n.startswith(x) for x in exclude) and not n.endswith('_MAX'):
            res.setdefault(CONSTS[n], n)
    return res


def flag_names(prefixes, exclude=()):
    res = {}
    for pre in prefixes:
        for n in ORDER:
            v = CONSTS[n]
            if n.startswith(pre) and not any(n.startswith(x) for x in exclude) and v > 0 and v & (v - 1) == 0:
                res.setdefault(v, n)
    return res


def fmt_flags(v, names, width=8):
    parts, rest = [], v
    for bit in sorted(names):
        if v & bit:
            parts.append(names[bit])
            rest &= ~bit
    if rest:
        parts.append('0x%x' % rest)
    return '0x%0*x %s' % (width, v, '|'.join(parts) if parts else '(none)')


_CACHE = {}


def fmt_value(v, spec, size=4):
    """spec: '', 'hex', 'enum=FIRST', 'def=PREFIX' ('def0=' prints 0 bare), 'flags=P1|P2!EXCL', 'af', 'errno'."""
    if not spec:
        return str(v)
    kind, _, arg = spec.partition('=')
    if kind == 'def0':
        if v == 0:
            return '0'
        kind, spec = 'def', 'def=' + arg
    if kind == 'hex':
        return '0x%x (%d)' % (v, v)
    if kind == 'af':
        return '%d %s' % (v, AF.get(v, '(unknown family)'))
    if kind == 'errno':
        return '%d%s' % (v, (' (-%s)' % errno.errorcode[-v]) if v < 0 and -v in errno.errorcode else '')
    key = spec
    if key not in _CACHE:
        if kind == 'enum':
            _CACHE[key] = enum_names(arg)
        elif kind == 'def':
            _CACHE[key] = prefix_names(arg)
        elif kind == 'flags':
            inc, _, exc = arg.partition('!')
            _CACHE[key] = flag_names(inc.split('|'), tuple(x for x in exc.split('|') if x))
    names = _CACHE[key]
    if kind == 'flags':
        return fmt_flags(v, names, 2 * size)
    return '%d %s' % (v, names[v]) if v in names else str(v)

# --------------------------------------------------------------------------------------------
# netlink decoder -> rows (depth, bytes, comment)
# --------------------------------------------------------------------------------------------
NLMSG_HDRLEN = 16
RTM_NAMES = {}


def msg_type_name(t):
    if not RTM_NAMES:
        RTM_NAMES.update(prefix_names('RTM_', exclude=('RTM_BASE', 'RTM_F_', 'RTM_NR_')))
        for n in ('NLMSG_NOOP', 'NLMSG_ERROR', 'NLMSG_DONE', 'NLMSG_OVERRUN'):
            RTM_NAMES[CONSTS[n]] = n
    return RTM_NAMES.get(t, 'type %d' % t)


def nlm_flag_names(typename):
    base = {1: 'NLM_F_REQUEST', 2: 'NLM_F_MULTI', 4: 'NLM_F_ACK', 8: 'NLM_F_ECHO', 0x10: 'NLM_F_DUMP_INTR',
            0x20: 'NLM_F_DUMP_FILTERED'}
    if typename.startswith('RTM_GET'):
        base.update({0x100: 'NLM_F_ROOT', 0x200: 'NLM_F_MATCH', 0x400: 'NLM_F_ATOMIC'})
    elif typename.startswith('RTM_NEW') or typename.startswith('RTM_SET'):
        base.update({0x100: 'NLM_F_REPLACE', 0x200: 'NLM_F_EXCL', 0x400: 'NLM_F_CREATE', 0x800: 'NLM_F_APPEND'})
    elif typename.startswith('RTM_DEL'):
        base.update({0x100: 'NLM_F_NONREC', 0x200: 'NLM_F_BULK'})
    elif typename in ('NLMSG_ERROR', 'NLMSG_DONE'):
        base.update({0x100: 'NLM_F_CAPPED', 0x200: 'NLM_F_ACK_TLVS'})
    return base


def u(fmt, b, off=0):
    return struct.unpack_from('<' + fmt if fmt[0] not in '<>!' else fmt, b, off)[0]


def ip_str(b):
    if len(b) == 4:
        return socket.inet_ntop(socket.AF_INET, bytes(b))
    if len(b) == 16:
        return socket.inet_ntop(socket.AF_INET6, bytes(b))
    return None


def str_repr(b):
    s = ''
    for x in b:
        if x == 0:
            s += '\\0'
        elif 32 <= x < 127 and x != 0x22 and x != 0x5c:
            s += chr(x)
        else:
            s += '\\x%02x' % x
    return s


class Rows(list):
    def add(self, depth, data, comment):
        self.append((depth, bytes(data), comment))

    def note(self, depth, comment):
        self.append((depth, b'', comment))

    def raw(self, depth, data, comment):
        data = bytes(data)
        if not data:
            self.add(depth, b'', comment + ' (empty)')
            return
        for i in range(0, len(data), 16):
            self.add(depth, data[i:i + 16], comment if i == 0 else '(+%d)' % i)


# struct layouts: (field, struct fmt, value spec)
IFINFOMSG = [('ifi_family', 'B', 'af'), ('__ifi_pad', 'B', ''), ('ifi_type', 'H', 'def0=ARPHRD_'),
             ('ifi_index', 'i', ''), ('ifi_flags', 'I', 'flags=IFF_'), ('ifi_change', 'I', 'flags=IFF_')]
IFADDRMSG = [('ifa_family', 'B', 'af'), ('ifa_prefixlen', 'B', ''), ('ifa_flags', 'B', 'flags=IFA_F_'),
             ('ifa_scope', 'B', 'def=RT_SCOPE_'), ('ifa_index', 'I', '')]
RTMSG = [('rtm_family', 'B', 'af'), ('rtm_dst_len', 'B', ''), ('rtm_src_len', 'B', ''), ('rtm_tos', 'B', ''),
         ('rtm_table', 'B', 'def=RT_TABLE_'), ('rtm_protocol', 'B', 'def=RTPROT_'), ('rtm_scope', 'B', 'def=RT_SCOPE_'),
         ('rtm_type', 'B', 'def=RTN_'), ('rtm_flags', 'I', 'flags=RTM_F_|RTNH_F_')]
FIB_RULE_HDR = [('family', 'B', 'af'), ('dst_len', 'B', ''), ('src_len', 'B', ''), ('tos', 'B', ''),
                ('table', 'B', 'def=RT_TABLE_'), ('res1', 'B', ''), ('res2', 'B', ''), ('action', 'B', 'def=FR_ACT_'),
                ('flags', 'I', 'flags=FIB_RULE_')]
NDMSG = [('ndm_family', 'B', 'af'), ('ndm_pad1', 'B', ''), ('ndm_pad2', 'H', ''), ('ndm_ifindex', 'i', ''),
         ('ndm_state', 'H', 'flags=NUD_'), ('ndm_flags', 'B', 'flags=NTF_!NTF_EXT_'), ('ndm_type', 'B', 'def=RTN_')]
IFA_CACHEINFO = [('ifa_prefered', 'I', ''), ('ifa_valid', 'I', ''), ('cstamp', 'I', ''), ('tstamp', 'I', '')]
RTA_CACHEINFO = [('rta_clntref', 'I', ''), ('rta_lastuse', 'I', ''), ('rta_expires', 'i', ''), ('rta_error', 'I', ''),
                 ('rta_used', 'I', ''), ('rta_id', 'I', ''), ('rta_ts', 'I', ''), ('rta_tsage', 'I', '')]
NDA_CACHEINFO = [('ndm_confirmed', 'I', ''), ('ndm_used', 'I', ''), ('ndm_updated', 'I', ''), ('ndm_refcnt', 'I', '')]
IFLA_CACHEINFO = [('max_reasm_len', 'I', ''), ('tstamp', 'I', ''), ('reachable_time', 'I', ''),
                  ('retrans_time', 'I', '')]
IFMAP = [('mem_start', 'Q', ''), ('mem_end', 'Q', ''), ('base_addr', 'Q', ''), ('irq', 'H', ''), ('dma', 'B', ''),
         ('port', 'B', ''), ('(padding)', '4s', '')]
UID_RANGE = [('start', 'I', ''), ('end', 'I', '')]
PORT_RANGE = [('start', 'H', ''), ('end', 'H', '')]
STATS_FIELDS = ['rx_packets', 'tx_packets', 'rx_bytes', 'tx_bytes', 'rx_errors', 'tx_errors', 'rx_dropped',
                'tx_dropped', 'multicast', 'collisions', 'rx_length_errors', 'rx_over_errors', 'rx_crc_errors',
                'rx_frame_errors', 'rx_fifo_errors', 'rx_missed_errors', 'tx_aborted_errors', 'tx_carrier_errors',
                'tx_fifo_errors', 'tx_heartbeat_errors', 'tx_window_errors', 'rx_compressed', 'tx_compressed',
                'rx_nohandler', 'rx_otherhost_dropped']


def do_struct(rows, depth, b, layout, title=None):
    if title:
        rows.note(depth, title)
    off = 0
    for name, fmt, spec in layout:
        n = struct.calcsize('<' + fmt)
        if off + n > len(b):
            break
        if fmt.endswith('s'):
            rows.add(depth, b[off:off + n], name)
        else:
            v = u(fmt, b, off)
            rows.add(depth, b[off:off + n], '%s %s' % (name, fmt_value(v, spec, n)))
        off += n
    if off < len(b):
        rows.raw(depth, b[off:], '(trailing bytes)')
    return off


def do_array(rows, depth, b, size, names, first_index=0, label=''):
    fmt = {4: 'I', 8: 'Q'}[size]
    n = len(b) // size
    for i in range(n):
        idx = first_index + i
        rows.add(depth, b[i * size:(i + 1) * size], '[%d] %s %d' % (idx, names.get(idx, label or '?'), u(fmt, b, i * size)))
    if n * size < len(b):
        rows.raw(depth, b[n * size:], '(trailing bytes)')


# attribute spaces: name of the enum's first member -> {attr name: payload kind}
SPACES = {
    'LINK': ('IFLA_UNSPEC', {
        'IFLA_ADDRESS': 'lladdr', 'IFLA_BROADCAST': 'lladdr', 'IFLA_PERM_ADDRESS': 'lladdr',
        'IFLA_IFNAME': 'str', 'IFLA_QDISC': 'str', 'IFLA_IFALIAS': 'str', 'IFLA_PARENT_DEV_NAME': 'str',
        'IFLA_PARENT_DEV_BUS_NAME': 'str', 'IFLA_ALT_IFNAME': 'str', 'IFLA_PHYS_PORT_NAME': 'str',
        'IFLA_MTU': 'u32', 'IFLA_LINK': 'u32', 'IFLA_MASTER': 'u32', 'IFLA_TXQLEN': 'u32', 'IFLA_WEIGHT': 'u32',
        'IFLA_NET_NS_PID': 'u32', 'IFLA_NET_NS_FD': 'u32', 'IFLA_NUM_VF': 'u32', 'IFLA_GROUP': 'u32',
        'IFLA_PROMISCUITY': 'u32', 'IFLA_NUM_TX_QUEUES': 'u32', 'IFLA_NUM_RX_QUEUES': 'u32',
        'IFLA_CARRIER_CHANGES': 'u32', 'IFLA_GSO_MAX_SEGS': 'u32', 'IFLA_GSO_MAX_SIZE': 'u32',
        'IFLA_CARRIER_UP_COUNT': 'u32', 'IFLA_CARRIER_DOWN_COUNT': 'u32', 'IFLA_MIN_MTU': 'u32',
        'IFLA_MAX_MTU': 'u32', 'IFLA_TSO_MAX_SIZE': 'u32', 'IFLA_TSO_MAX_SEGS': 'u32', 'IFLA_GRO_MAX_SIZE': 'u32',
        'IFLA_ALLMULTI': 'u32', 'IFLA_GSO_IPV4_MAX_SIZE': 'u32', 'IFLA_GRO_IPV4_MAX_SIZE': 'u32',
        'IFLA_NEW_IFINDEX': 's32', 'IFLA_IF_NETNSID': 's32', 'IFLA_LINK_NETNSID': 's32', 'IFLA_TARGET_NETNSID': 's32',
        'IFLA_NEW_NETNSID': 's32', 'IFLA_EVENT': ('u32', 'enum=IFLA_EVENT_NONE'),
        'IFLA_OPERSTATE': ('u8', 'enum=IF_OPER_UNKNOWN'), 'IFLA_LINKMODE': ('u8', 'enum=IF_LINK_MODE_DEFAULT'),
        'IFLA_CARRIER': 'u8', 'IFLA_PROTO_DOWN': 'u8',
        'IFLA_EXT_MASK': ('u32', 'flags=RTEXT_FILTER_'),
        'IFLA_LINKINFO': ('nest', 'LINKINFO'), 'IFLA_AF_SPEC': 'af_spec', 'IFLA_XDP': ('nest', 'XDP'),
        'IFLA_PROP_LIST': ('nest', 'LINK'),
        'IFLA_STATS': ('stats', 4), 'IFLA_STATS64': ('stats', 8), 'IFLA_MAP': ('struct', IFMAP, 'struct rtnl_link_ifmap'),
    }),
    'LINKINFO': ('IFLA_INFO_UNSPEC', {
        'IFLA_INFO_KIND': 'str', 'IFLA_INFO_SLAVE_KIND': 'str', 'IFLA_INFO_DATA': 'info_data',
    }),
    'IPTUN': ('IFLA_IPTUN_UNSPEC', {
        'IFLA_IPTUN_LINK': 'u32', 'IFLA_IPTUN_LOCAL': 'ip', 'IFLA_IPTUN_REMOTE': 'ip', 'IFLA_IPTUN_TTL': 'u8',
        'IFLA_IPTUN_TOS': 'u8', 'IFLA_IPTUN_ENCAP_LIMIT': 'u8', 'IFLA_IPTUN_FLOWINFO': ('be32', 'hex'),
        'IFLA_IPTUN_FLAGS': ('u16', 'hex'), 'IFLA_IPTUN_PROTO': 'u8', 'IFLA_IPTUN_PMTUDISC': 'u8',
        'IFLA_IPTUN_6RD_PREFIX': 'ip', 'IFLA_IPTUN_6RD_RELAY_PREFIX': 'ip', 'IFLA_IPTUN_6RD_PREFIXLEN': 'u16',
        'IFLA_IPTUN_6RD_RELAY_PREFIXLEN': 'u16', 'IFLA_IPTUN_ENCAP_TYPE': ('u16', 'enum=TUNNEL_ENCAP_NONE'),
        'IFLA_IPTUN_ENCAP_FLAGS': ('u16', 'flags=TUNNEL_ENCAP_FLAG_'), 'IFLA_IPTUN_ENCAP_SPORT': 'be16',
        'IFLA_IPTUN_ENCAP_DPORT': 'be16', 'IFLA_IPTUN_COLLECT_METADATA': 'flag', 'IFLA_IPTUN_FWMARK': 'u32',
    }),
    'VETH': ('VETH_INFO_UNSPEC', {'VETH_INFO_PEER': 'veth_peer'}),
    'XDP': ('IFLA_XDP_UNSPEC', {
        'IFLA_XDP_FD': 's32', 'IFLA_XDP_ATTACHED': ('u8', 'enum=XDP_ATTACHED_NONE'), 'IFLA_XDP_FLAGS': ('u32', 'hex'),
        'IFLA_XDP_PROG_ID': 'u32', 'IFLA_XDP_DRV_PROG_ID': 'u32', 'IFLA_XDP_SKB_PROG_ID': 'u32',
        'IFLA_XDP_HW_PROG_ID': 'u32', 'IFLA_XDP_EXPECTED_FD': 's32',
    }),
    'INET': ('IFLA_INET_UNSPEC', {'IFLA_INET_CONF': ('array', 4, 'IPV4_DEVCONF_FORWARDING', 1)}),
    'INET6': ('IFLA_INET6_UNSPEC', {
        'IFLA_INET6_FLAGS': ('u32', 'hex'), 'IFLA_INET6_CONF': ('array', 4, 'DEVCONF_FORWARDING', 0),
        'IFLA_INET6_STATS': ('array', 8, 'IPSTATS_MIB_NUM', 0), 'IFLA_INET6_ICMP6STATS': ('array', 8, 'ICMP6_MIB_NUM', 0),
        'IFLA_INET6_CACHEINFO': ('struct', IFLA_CACHEINFO, 'struct ifla_cacheinfo'), 'IFLA_INET6_TOKEN': 'ip',
        'IFLA_INET6_ADDR_GEN_MODE': ('u8', 'enum=IN6_ADDR_GEN_MODE_EUI64'), 'IFLA_INET6_RA_MTU': 'u32',
    }),
    'ADDR': ('IFA_UNSPEC', {
        'IFA_ADDRESS': 'ip', 'IFA_LOCAL': 'ip', 'IFA_LABEL': 'str', 'IFA_BROADCAST': 'ip', 'IFA_ANYCAST': 'ip',
        'IFA_CACHEINFO': ('struct', IFA_CACHEINFO, 'struct ifa_cacheinfo'), 'IFA_MULTICAST': 'ip',
        'IFA_FLAGS': ('u32', 'flags=IFA_F_'), 'IFA_RT_PRIORITY': 'u32', 'IFA_TARGET_NETNSID': 's32',
        'IFA_PROTO': ('u8', 'def=IFAPROT_'),
    }),
    'ROUTE': ('RTA_UNSPEC', {
        'RTA_DST': 'ip', 'RTA_SRC': 'ip', 'RTA_IIF': 'u32', 'RTA_OIF': 'u32', 'RTA_GATEWAY': 'ip',
        'RTA_PRIORITY': 'u32', 'RTA_PREFSRC': 'ip', 'RTA_METRICS': ('nest', 'METRICS'), 'RTA_FLOW': 'u32',
        'RTA_CACHEINFO': ('struct', RTA_CACHEINFO, 'struct rta_cacheinfo'), 'RTA_TABLE': ('u32', 'def=RT_TABLE_'),
        'RTA_MARK': ('u32', 'hex'), 'RTA_PREF': 'u8', 'RTA_ENCAP_TYPE': ('u16', 'enum=LWTUNNEL_ENCAP_NONE'),
        'RTA_ENCAP': 'encap', 'RTA_EXPIRES': 'u32', 'RTA_UID': 'u32', 'RTA_TTL_PROPAGATE': 'u8',
        'RTA_IP_PROTO': 'u8', 'RTA_SPORT': 'be16', 'RTA_DPORT': 'be16', 'RTA_NH_ID': 'u32',
    }),
    'METRICS': ('RTAX_UNSPEC', {'*': 'u32', 'RTAX_CC_ALGO': 'str', 'RTAX_FEATURES': ('u32', 'flags=RTAX_FEATURE_')}),
    'ENCAP_IP': ('LWTUNNEL_IP_UNSPEC', {
        'LWTUNNEL_IP_ID': 'be64', 'LWTUNNEL_IP_DST': 'ip', 'LWTUNNEL_IP_SRC': 'ip', 'LWTUNNEL_IP_TTL': 'u8',
        'LWTUNNEL_IP_TOS': 'u8', 'LWTUNNEL_IP_FLAGS': ('be16', 'hex'),
    }),
    'RULE': ('FRA_UNSPEC', {
        'FRA_DST': 'ip', 'FRA_SRC': 'ip', 'FRA_IIFNAME': 'str', 'FRA_OIFNAME': 'str', 'FRA_GOTO': 'u32',
        'FRA_PRIORITY': 'u32', 'FRA_FWMARK': ('u32', 'hex'), 'FRA_FWMASK': ('u32', 'hex'), 'FRA_FLOW': 'u32',
        'FRA_TUN_ID': 'be64', 'FRA_SUPPRESS_IFGROUP': ('u32', 'hex'), 'FRA_SUPPRESS_PREFIXLEN': ('u32', 'hex'),
        'FRA_TABLE': ('u32', 'def=RT_TABLE_'), 'FRA_L3MDEV': 'u8',
        'FRA_UID_RANGE': ('struct', UID_RANGE, 'struct fib_rule_uid_range'), 'FRA_PROTOCOL': ('u8', 'def=RTPROT_'),
        'FRA_IP_PROTO': 'u8', 'FRA_SPORT_RANGE': ('struct', PORT_RANGE, 'struct fib_rule_port_range'),
        'FRA_DPORT_RANGE': ('struct', PORT_RANGE, 'struct fib_rule_port_range'),
    }),
    'NEIGH': ('NDA_UNSPEC', {
        'NDA_DST': 'ip', 'NDA_LLADDR': 'lladdr', 'NDA_CACHEINFO': ('struct', NDA_CACHEINFO, 'struct nda_cacheinfo'),
        'NDA_PROBES': 'u32', 'NDA_VLAN': 'u16', 'NDA_PORT': 'be16', 'NDA_VNI': 'u32', 'NDA_IFINDEX': 'u32',
        'NDA_MASTER': 'u32', 'NDA_LINK_NETNSID': 's32', 'NDA_SRC_VNI': 'u32', 'NDA_PROTOCOL': ('u8', 'def=RTPROT_'),
        'NDA_NH_ID': 'u32', 'NDA_FLAGS_EXT': ('u32', 'flags=NTF_EXT_'),
    }),
    'ERR': ('NLMSGERR_ATTR_MSG', {
        'NLMSGERR_ATTR_MSG': 'str', 'NLMSGERR_ATTR_OFFS': 'u32', 'NLMSGERR_ATTR_MISS_TYPE': 'u32',
        'NLMSGERR_ATTR_MISS_NEST': 'u32',
    }),
}

SCALARS = {'u8': ('B', 1), 'u16': ('<H', 2), 'u32': ('<I', 4), 'u64': ('<Q', 8), 's32': ('<i', 4),
           'be16': ('>H', 2), 'be32': ('>I', 4), 'be64': ('>Q', 8)}


def attr_name(space, t):
    key = 'space=' + space
    if key not in _CACHE:
        _CACHE[key] = enum_names(SPACES[space][0])
    return _CACHE[key].get(t)


def split_attrs(b):
    res, off = [], 0
    while off + 4 <= len(b):
        ln, ty = u('H', b, off), u('H', b, off + 2)
        if ln < 4 or off + ln > len(b):
            break
        res.append((off, ln, ty))
        off += (ln + 3) & ~3
    return res


def decode_attrs(rows, depth, b, space):
    attrs = split_attrs(b)
    siblings = {}
    for off, ln, ty in attrs:
        n = attr_name(space, ty & 0x3fff)
        if n:
            siblings[n] = b[off + 4:off + ln]
    end = 0
    for off, ln, ty in attrs:
        t = ty & 0x3fff
        name = attr_name(space, t) or '%d (unknown %s attribute)' % (t, SPACES[space][0].rsplit('_', 1)[0] + '_*')
        fl = []
        if ty & 0x8000:
            fl.append('NLA_F_NESTED')
        if ty & 0x4000:
            fl.append('NLA_F_NET_BYTEORDER')
        rows.add(depth, b[off:off + 4], 'nla_len %d, %s%s' % (ln, name, (' | ' + ' | '.join(fl)) if fl else ''))
        decode_payload(rows, depth + 1, b[off + 4:off + ln], space, name, siblings)
        pad = ((ln + 3) & ~3) - ln
        if pad and off + ln + pad <= len(b):
            rows.add(depth, b[off + ln:off + ln + pad], 'padding')
        end = off + ((ln + 3) & ~3)
    if end < len(b):
        rows.raw(depth, b[end:], '(bytes that do not form an attribute)')


def decode_payload(rows, depth, p, space, name, siblings):
    kinds = SPACES[space][1]
    kind = kinds.get(name, kinds.get('*', 'raw'))
    spec = ''
    if isinstance(kind, tuple) and kind[0] in SCALARS:
        kind, spec = kind
    if isinstance(kind, str) and kind in SCALARS:
        fmt, n = SCALARS[kind]
        if len(p) == n:
            rows.add(depth, p, fmt_value(u(fmt, p), spec, n) + (' (big-endian)' if kind.startswith('be') else ''))
            return
        kind = 'raw'
    if kind == 'flag' and not p:
        rows.note(depth, '(flag attribute: no payload)')
        return
    if kind == 'str':
        rows.add(depth, p, '"%s"' % str_repr(p)) if len(p) <= 16 else rows.raw(depth, p, '"%s"' % str_repr(p))
        return
    if kind == 'ip' and ip_str(p):
        rows.add(depth, p, ip_str(p))
        return
    if kind == 'lladdr':
        if len(p) == 6:
            rows.add(depth, p, ':'.join('%02x' % x for x in p))
            return
        if len(p) == 4:
            rows.add(depth, p, '%s (4-byte hardware address of a tunnel: IPv4)' % ip_str(p))
            return
    if isinstance(kind, tuple) and kind[0] == 'nest':
        decode_attrs(rows, depth, p, kind[1])
        return
    if isinstance(kind, tuple) and kind[0] == 'struct':
        do_struct(rows, depth, p, kind[1], kind[2])
        return
    if isinstance(kind, tuple) and kind[0] == 'stats':
        size = kind[1]
        do_array(rows, depth, p, size, dict(enumerate(STATS_FIELDS)), 0)
        return
    if isinstance(kind, tuple) and kind[0] == 'array':
        _, size, first, base = kind
        do_array(rows, depth, p, size, enum_names(first), base)
        return
    if kind == 'af_spec':
        for off, ln, ty in split_attrs(p):
            fam = ty & 0x3fff
            rows.add(depth, p[off:off + 4], 'nla_len %d, %s%s' % (ln, AF.get(fam, 'family %d' % fam),
                                                                   ' | NLA_F_NESTED' if ty & 0x8000 else ''))
            sub = {2: 'INET', 10: 'INET6'}.get(fam)
            if sub:
                decode_attrs(rows, depth + 1, p[off + 4:off + ln], sub)
            else:
                rows.raw(depth + 1, p[off + 4:off + ln], 'raw (%d bytes)' % (ln - 4))
            pad = ((ln + 3) & ~3) - ln
            if pad:
                rows.add(depth, p[off + ln:off + ln + pad], 'padding')
        return
    if kind == 'info_data':
        k = siblings.get('IFLA_INFO_KIND', b'').rstrip(b'\0').decode('ascii', 'replace')
        sub = {'ipip': 'IPTUN', 'veth': 'VETH', 'sit': 'IPTUN'}.get(k)
        if sub:
            decode_attrs(rows, depth, p, sub)
            return
    if kind == 'veth_peer' and len(p) >= 16:
        do_struct(rows, depth, p[:16], IFINFOMSG, 'struct ifinfomsg (of the peer)')
        decode_attrs(rows, depth, p[16:], 'LINK')
        return
    if kind == 'encap':
        et = siblings.get('RTA_ENCAP_TYPE')
        if et is not None and len(et) == 2 and u('H', et) == CONSTS.get('LWTUNNEL_ENCAP_IP'):
            decode_attrs(rows, depth, p, 'ENCAP_IP')
            return
    rows.raw(depth, p, 'raw (%d bytes)' % len(p))


FAMILY_HDR = {'LINK': (IFINFOMSG, 'struct ifinfomsg', 'LINK'), 'ADDR': (IFADDRMSG, 'struct ifaddrmsg', 'ADDR'),
              'ROUTE': (RTMSG, 'struct rtmsg', 'ROUTE'), 'RULE': (FIB_RULE_HDR, 'struct fib_rule_hdr', 'RULE'),
              'NEIGH': (NDMSG, 'struct ndmsg', 'NEIGH')}


def family_of(typename):
    for suffix, fam in (('LINK', 'LINK'), ('ADDR', 'ADDR'), ('ROUTE', 'ROUTE'), ('RULE', 'RULE'), ('NEIGH', 'NEIGH')):
        if typename.startswith('RTM_') and typename.endswith(suffix):
            return fam
    return None


def decode_message(rows, depth, b, embedded=False):
    """decode one netlink message (b may be shorter than nlmsg_len for an echoed, capped header)."""
    ln, ty, fl, seq, pid = struct.unpack_from('<IHHII', b, 0)
    tn = msg_type_name(ty)
    rows.note(depth, 'struct nlmsghdr' + (' (of the original request, echoed)' if embedded else ''))
    rows.add(depth, b[0:4], 'nlmsg_len %d' % ln)
    rows.add(depth, b[4:6], 'nlmsg_type %d %s' % (ty, tn))
    rows.add(depth, b[6:8], 'nlmsg_flags ' + fmt_flags(fl, nlm_flag_names(tn), 4) +
             (' (= NLM_F_DUMP)' if tn.startswith('RTM_GET') and fl & 0x300 == 0x300 else ''))
    rows.add(depth, b[8:12], 'nlmsg_seq %d' % seq)
    rows.add(depth, b[12:16], 'nlmsg_pid %d' % pid)
    body = b[16:min(ln, len(b))]
    if embedded and len(b) < ln:
        rows.note(depth, '(payload of the original request not echoed)')
    if not body:
        return
    if tn in ('NLMSG_ERROR', 'NLMSG_DONE'):
        rows.note(depth, 'struct nlmsgerr' if tn == 'NLMSG_ERROR' else 'NLMSG_DONE payload')
        e = u('i', body)
        rows.add(depth, body[0:4], ('error ' if tn == 'NLMSG_ERROR' else 'int ') + fmt_value(e, 'errno'))
        rest = body[4:]
        if tn == 'NLMSG_ERROR' and len(rest) >= 16:
            olen = u('I', rest)
            elen = 16 if fl & 0x100 else min((olen + 3) & ~3, len(rest))
            decode_message(rows, depth + 1, rest[:min(olen, elen)], embedded=True)
            if elen > olen:
                rows.add(depth + 1, rest[olen:elen], 'padding')
            rest = rest[elen:]
        if rest:
            if fl & 0x200:
                rows.note(depth, 'extended ack attributes (NLM_F_ACK_TLVS)')
                decode_attrs(rows, depth, rest, 'ERR')
            else:
                rows.raw(depth, rest, 'raw (%d bytes)' % len(rest))
        return
    fam = family_of(tn)
    if fam is None:
        rows.raw(depth, body, 'payload, raw (%d bytes)' % len(body))
        return
    layout, title, space = FAMILY_HDR[fam]
    hl = struct.calcsize('<' + ''.join(f for _, f, _ in layout))
    if len(body) < hl:
        rows.note(depth, '(payload shorter than %s)' % title)
        rows.raw(depth, body, 'raw (%d bytes)' % len(body))
        return
    do_struct(rows, depth, body[:hl], layout, title)
    if len(body) > hl:
        rows.note(depth, 'attributes')
        decode_attrs(rows, depth, body[hl:], space)


def split_messages(b):
    res, off = [], 0
    while off + NLMSG_HDRLEN <= len(b):
        ln = u('I', b, off)
        if ln < NLMSG_HDRLEN or off + ln > len(b):
            break
        res.append((off, ln))
        off += (ln + 3) & ~3
    return res, off


def decode_buffer(b):
    rows = Rows()
    msgs, end = split_messages(b)
    for i, (off, ln) in enumerate(msgs):
        ty = u('H', b, off + 4)
        rows.note(0, '---- message %d of %d: %s ----' % (i + 1, len(msgs), msg_type_name(ty)))
        decode_message(rows, 0, b[off:off + ln])
        pad = ((ln + 3) & ~3) - ln
        if pad:
            rows.add(0, b[off + ln:off + ln + pad], 'padding (message alignment)')
    if end < len(b):
        tail = b[end:]
        rows.raw(0, tail, '%d trailing bytes after the last message: ip sent sizeof(req), the message ends at nlmsg_len'
                 % len(tail) if not any(tail) else '(bytes that do not form a netlink message)')
    assert b''.join(r[1] for r in rows) == bytes(b), 'decoder lost bytes'
    return rows, msgs


def first_type(b):
    return msg_type_name(u('H', b, 4)) if len(b) >= 6 else '?'

# --------------------------------------------------------------------------------------------
# selection of the interesting syscalls
# --------------------------------------------------------------------------------------------


def is_probe(ev):
    b = ev.data
    return (len(b) == 32 and first_type(b) == 'RTM_NEWLINK' and u('I', b, 8) == 0 and b[16:] == bytes(16))


def select(spec, cap):
    evs = parse_strace(cap['strace'])
    sends = [e for e in evs if e.call in ('sendmsg', 'sendto') and e.data]
    recvs = [e for e in evs if e.call in ('recvmsg', 'recvfrom') and e.data and not e.peek]
    # The main request goes out on ip's own rtnl handle, the first netlink socket it opens (rtnl_open
    # at start-up). Name/index lookups (ll_name_to_index, ll_index_to_name: ll_link_get) open a
    # socket of their own each, so the last message of the main type on *any* socket can be such a
    # lookup: `ip -d link show dev tunl1` resolves its underlay (IFLA_LINK 2, printed as "@d0") with
    # an RTM_GETLINK after the real one.
    rth = next(((e.pid, e.ret) for e in evs if e.call == 'socket' and 'AF_NETLINK' in e.text and e.ret is not None), None)
    own = [i for i, e in enumerate(sends) if first_type(e.data) == spec['main'] and (e.pid, e.fd) == rth]
    main = max(own or [i for i, e in enumerate(sends) if first_type(e.data) == spec['main']], default=None)
    if main is None:
        raise RuntimeError('%s: no %s sent' % (spec['name'], spec['main']))

    def replies(i):
        s = sends[i]
        nxt = min([e.t for e in sends[i + 1:] if e.fd == s.fd and e.pid == s.pid], default=float('inf'))
        return [r for r in recvs if r.fd == s.fd and r.pid == s.pid and s.t <= r.t < nxt]

    items, nlook, nextra = [], 0, 0
    for i, s in enumerate(sends):
        t = first_type(s.data)
        if i == main:
            role, label = 'main', 'Request'
            if spec['request']:
                items.append(dict(label=label, role=role, ev=s, dir='sendmsg' if s.call == 'sendmsg' else 'sendto'))
            if spec['reply']:
                rs = replies(i)
                for k, r in enumerate(rs):
                    items.append(dict(label='Reply' + (str(k + 1) if len(rs) > 1 else ''), role='reply',
                                      ev=r, dir=r.call, of='main request', part=(k + 1, len(rs))))
            continue
        if is_probe(s):
            if spec['probe']:
                items.append(dict(label='Probe', role='probe', ev=s, dir=s.call))
            continue
        if not spec['request']:
            continue
        if i < main:
            nlook += 1
            label, role = 'Lookup%d' % nlook, 'lookup'
        else:
            nextra += 1
            label, role = 'After%d' % nextra, 'after'
        items.append(dict(label=label, role=role, ev=s, dir=s.call, type=t))
        if spec['aux_replies']:
            rs = replies(i)
            for k, r in enumerate(rs):
                items.append(dict(label=label + 'Reply' + (str(k + 1) if len(rs) > 1 else ''), role='aux_reply',
                                  ev=r, dir=r.call, of=label, part=(k + 1, len(rs))))
    return items, evs

# --------------------------------------------------------------------------------------------
# C# emission
# --------------------------------------------------------------------------------------------


def xml(s):
    return s.replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;')


def fmt_links(ls):
    return ', '.join('%s=%d' % (n, i) for i, n in ls)


def render_rows(rows):
    out = []
    codes = []
    for depth, data, comment in rows:
        ind = ' ' * (8 + 4 * depth)
        code = ind + ' '.join('0x%02X,' % x for x in data) if data else ''
        codes.append(code)
    width = max([len(c) for c, (d, data, _) in zip(codes, rows) if 0 < len(data) <= 8] or [40]) + 1
    for code, (depth, data, comment) in zip(codes, rows):
        if data:
            out.append(code.ljust(width) + ' ' * (len(code) >= width) + '// ' + comment)
        else:
            out.append(' ' * (8 + 4 * depth) + '// ' + comment)
    return out


def role_text(item, spec):
    r = item['role']
    if r == 'main':
        return 'the main request (%s) that ip sends' % spec['main']
    if r == 'probe':
        return ('iproute2\'s RTM_NEWLINK capability probe (iplink_have_newlink: empty ifinfomsg, seq 0, '
                'sent with send() before any `ip link add/set/del`; the kernel answers -ENODEV)')
    if r == 'lookup':
        return 'auxiliary request %s sent before the main request (%s)' % (item['label'], item['type'])
    if r == 'after':
        return 'auxiliary request %s sent after the main request (%s)' % (item['label'], item['type'])
    part = item['part']
    p = '' if part[1] == 1 else ', recvmsg %d of %d' % part
    return "the kernel's answer to the %s%s" % (item['of'], p)


def doc_lines(meta, item, spec, cap, nmsgs, extra=()):
    ev = item['ev']
    direction = 'sendmsg' if ev.call in ('sendmsg', 'sendto') else 'recvmsg'
    sysc = ev.call if ev.call == direction else '%s (%s)' % (direction, ev.call)
    L = ['/// <summary>',
         '/// <c>%s</c>: %s (%s). %s.' % (xml(cap['cmd']), xml(role_text(item, spec)), direction, xml(spec['desc'])),
         '/// </summary>', '/// <remarks>']
    L.append('/// <para>Captured with strace: %s on fd %d, %d netlink message%s, %d bytes.</para>'
             % (sysc, ev.fd, nmsgs, '' if nmsgs == 1 else 's', len(ev.data)))
    L.append('/// <para>Namespace: %s.</para>' % xml('; '.join(cap['history'])))
    L.append('/// <para>Links before: %s.%s</para>' % (fmt_links(cap['links_before']),
             (' After: %s.' % fmt_links(cap['links_after'])) if cap['links_after'] != cap['links_before'] else ''))
    if cap.get('rc'):
        L.append('/// <para>ip exit status %d, stderr: <c>%s</c></para>' % (cap['rc'], xml(cap['stderr'].strip())))
    for e in extra:
        L.append('/// <para>%s</para>' % xml(e))
    L.append('/// <para>%s; kernel %s %s (%s); %s.</para>' % (
        xml(meta['iproute2']), xml(meta['uname_r']), xml(meta['uname_v']),
        'QEMU/TCG guest' if meta['where'] == 'vm' else 'host', xml(meta['strace'])))
    L.append('/// </remarks>')
    return L


def emit_prop(name, doc, data):
    rows, msgs = decode_buffer(data)
    L = ['    ' + l for l in doc]
    L.append('    public static ReadOnlySpan<byte> %s =>' % name)
    L.append('    [')
    L += render_rows(rows)
    L.append('    ];')
    return L, len(msgs)


FILE_HEAD = '''// <auto-generated>
// Generated by {tool} from strace captures of iproute2 talking to the Linux kernel.
// Do not edit by hand: re-run the tool (see Golden/README.md).
// Bytes are exactly what iproute2 sent (sendmsg/sendto) or the kernel returned (recvmsg);
// the per-field comments come from the tool's own decoder (not from the C# encoder).
// </auto-generated>
'''


def write_file(out_dir, kind, props, header_comment=()):
    path = os.path.join(out_dir, 'Captured.%s.cs' % kind)
    L = [FILE_HEAD.format(tool=TOOL_REL).rstrip('\n')]
    L += ['// ' + l if l else '//' for l in header_comment]
    L += ['', 'namespace MobilityAgents.Netlink.Tests.Golden;', '',
          'internal static partial class Captured', '{']
    for i, p in enumerate(props):
        if i:
            L.append('')
        L += p
    L.append('}')
    with open(path, 'w') as f:
        f.write('\n'.join(L) + '\n')
    return path


def verify_written(path, expected):
    """re-read a generated file and check every property's bytes against the captured bytes."""
    with open(path) as f:
        text = f.read()
    found = {}
    for m in re.finditer(r'ReadOnlySpan<byte> (\w+) =>\s*\[(.*?)\n    \];', text, re.S):
        body = '\n'.join(l.split('//', 1)[0] for l in m.group(2).splitlines())
        found[m.group(1)] = bytes(int(x, 16) for x in re.findall(r'0x([0-9A-F]{2}),', body))
    for name, data in expected.items():
        if found.get(name) != bytes(data):
            raise RuntimeError('%s: %s does not round-trip' % (path, name))
    if set(found) != set(expected):
        raise RuntimeError('%s: unexpected properties %s' % (path, set(found) ^ set(expected)))


def emit(raw, out_dir):
    load_headers()
    meta = raw['meta']
    os.makedirs(out_dir, exist_ok=True)
    files = {k: [] for k in FILE_ORDER}
    index = []           # (kind, name, direction, cmd, text)
    sockets = {}         # command -> socket setup lines
    specs = {g['id']: {c['name']: c for c in g['captures']} for g in GROUPS}
    names = set()
    datas = {}
    for g, graw in zip(GROUPS, raw['groups']):
        for cap_raw in graw['captures']:
            spec = specs[g['id']][cap_raw['name']]
            items, evs = select(spec, cap_raw)
            sockets[cap_raw['cmd']] = socket_calls(cap_raw['strace'])
            for it in items:
                name = spec['name'] + it['label']
                assert name not in names, name
                names.add(name)
                nm = len(split_messages(it['ev'].data)[0])
                doc = doc_lines(meta, it, spec, cap_raw, nm)
                prop, _ = emit_prop(name, doc, it['ev'].data)
                files[g['kind']].append(prop)
                datas.setdefault(g['kind'], {})[name] = it['ev'].data
                index.append((g['kind'], name, 'sendmsg' if it['ev'].call.startswith('send') else 'recvmsg',
                              cap_raw['cmd'], role_text(it, spec)))
    # events
    e = raw['events']
    evs = parse_strace(e['strace'])
    recvs = [x for x in evs if x.call in ('recvmsg', 'recvfrom') and x.data and not x.peek]
    wins = e['windows']
    for wi, w in enumerate(wins):
        t1 = wins[wi + 1]['t0'] if wi + 1 < len(wins) else float('inf')
        got = [r for r in recvs if w['t0'] <= r.t_end < t1]   # a blocking recvmsg starts before the event
        types = [first_type(r.data) for r in got]
        seen = {}
        for r, t in zip(got, types):
            short = ''.join(p.capitalize() for p in t.replace('RTM_', '').split('_'))
            short = {'Newlink': 'NewLink', 'Dellink': 'DelLink', 'Newaddr': 'NewAddr', 'Deladdr': 'DelAddr',
                     'Newroute': 'NewRoute', 'Delroute': 'DelRoute', 'Newrule': 'NewRule', 'Delrule': 'DelRule',
                     'Newneigh': 'NewNeigh', 'Delneigh': 'DelNeigh'}.get(short, short)
            seen[short] = seen.get(short, 0) + 1
            k = seen[short]
            total = types.count(t)
            name = 'Event%s%s%s' % (w['name'], short, str(k) if total > 1 else '')
            assert name not in names, name
            names.add(name)
            nm = len(split_messages(r.data)[0])
            doc = ['/// <summary>',
                   '/// Event (recvmsg on the <c>%s</c> socket) caused by <c>%s</c>: %s%s.' % (
                       xml(e['monitor'].replace('ip -n NS ', 'ip ')), xml(w['cmd']), t,
                       '' if total == 1 else ' (%d of %d)' % (k, total)),
                   '/// </summary>', '/// <remarks>',
                   '/// <para>Captured with strace: recvmsg on fd %d of <c>%s</c>, %d netlink message%s, %d bytes; '
                   'event %d of %d received while this trigger ran.</para>' % (
                       r.fd, xml(e['monitor']), nm, '' if nm == 1 else 's', len(r.data), got.index(r) + 1, len(got)),
                   '/// <para>Namespace: %s; then ip monitor started; triggers (in order, untraced, '
                   '<c>ip -n NS ...</c>): %s.</para>' % (
                       xml('; '.join(e['history'])), xml('; '.join(x['cmd'] for x in wins))),
                   '/// <para>Links before the triggers: %s; after this trigger: %s.</para>' % (
                       fmt_links(e['links_before']), fmt_links(w['links'])),
                   '/// <para>%s; kernel %s %s (%s); %s.</para>' % (
                       xml(meta['iproute2']), xml(meta['uname_r']), xml(meta['uname_v']),
                       'QEMU/TCG guest' if meta['where'] == 'vm' else 'host', xml(meta['strace'])),
                   '/// </remarks>']
            prop, _ = emit_prop(name, doc, r.data)
            files['Events'].append(prop)
            datas.setdefault('Events', {})[name] = r.data
            index.append(('Events', name, 'recvmsg', w['cmd'], 'event %s' % t))
    sockets[e['monitor']] = socket_calls(e['strace'])
    sock_summary = socket_summary(sockets)
    written = []
    for kind in FILE_ORDER:
        if files[kind]:
            hc = []
            if kind == 'Errors':
                hc = ['Socket setup of iproute2 %s, as seen by strace (rtnl_open and friends):' % meta['iproute2']] + \
                     ['  ' + l for l in sock_summary] + \
                     ['NETLINK_EXT_ACK is set on every socket, so error replies carry NLMSGERR_ATTR_* TLVs',
                      '(NLM_F_ACK_TLVS). NETLINK_CAP_ACK is not set, so error replies echo the whole request;',
                      'successful acks (error 0) are NLM_F_CAPPED anyway (the kernel echoes only the nlmsghdr).']
            written.append(write_file(out_dir, kind, files[kind], hc))
            verify_written(written[-1], datas[kind])
    write_readme(out_dir, meta, index, sock_summary)
    return written


def socket_summary(sockets):
    """distinct per-socket setups, each with the commands that created such a socket."""
    order, users = [], {}
    for cmd, seqs in sockets.items():
        for i, seq in enumerate(seqs):
            if seq not in users:
                order.append(seq)
                users[seq] = []
            users[seq].append('%s (socket %d)' % (cmd, i + 1))
    out = []
    for seq in order:
        u_ = users[seq]
        out.append('socket setup seen in %d command(s), e.g. %s:' % (len(u_), '; '.join(u_[:3])))
        out += ['  ' + l for l in seq]
    return out


def write_readme(out_dir, meta, index, sock_summary):
    L = ['# Golden rtnetlink captures', '',
         'The `Captured.*.cs` files in this folder hold netlink bytes taken from **iproute2 and the Linux kernel**, '
         'never from our own encoder. They are generated; do not edit them by hand.', '',
         '## How they were captured', '',
         '`%s` runs each `ip` command as' % TOOL_REL, '',
         '```', 'ip netns exec NS strace %s -o FILE ip ARGS' % ' '.join(shlex.quote(a) for a in STRACE[1:]), '```', '',
         'inside a fresh network namespace it creates for every group of captures (deleted afterwards, also on '
         'failure), parses strace\'s hex dumps (`-e write=all -e read=all`) of `sendmsg`/`sendto` (what ip sent) '
         'and `recvmsg` (what the kernel answered; `MSG_PEEK` calls skipped), decodes every field with its own '
         'decoder (constant names read from `/usr/include/linux/*.h`) and writes one C# file per object kind. '
         'Every decoded row is checked to add up to the captured bytes.', '',
         'The kernel-side captures need the `dummy`, `veth` and `ipip` modules and lightweight-tunnel support, '
         'which the development host does not have, so by default everything runs in the reference kernel VM '
         '(`/work/shared/tools/kernel-vm`, Debian kernel under QEMU/TCG, host root shared read-only). In the '
         'throw-away guest the tool sets `net.core.fb_tunnels_only_for_init_net=1` so a new namespace gets no '
         '`tunl0`: interface indexes are lo=1, first created link=2, and so on (each capture\'s doc comment lists '
         'the links and their ifindexes before/after, and every command that ran in its namespace before it).', '',
         'Regenerate (as root, from the repository root; 2-3 minutes under TCG, the first VM build ~25 s more):', '',
         '```', 'python3 %s                     # kernel VM (default)' % TOOL_REL,
         'python3 %s --save-raw /tmp/golden-raw.json   # also keep the raw strace text' % TOOL_REL,
         'python3 %s --from-raw /tmp/golden-raw.json   # re-emit without capturing' % TOOL_REL,
         'python3 %s --local             # capture on this host (needs dummy/veth/ipip)' % TOOL_REL,
         '```', '',
         '## Versions', '',
         '- iproute2: `%s`' % meta['iproute2'],
         '- kernel: `%s` `%s` (%s)' % (meta['uname_r'], meta['uname_v'],
                                        'QEMU/TCG guest' if meta['where'] == 'vm' else 'host'),
         '- strace: `%s`' % meta['strace'],
         '- captured: %s' % meta['date'], '',
         '## Things to know when using the bytes', '',
         '- `nlmsg_seq` of iproute2 requests is `time(NULL)` at socket open (+1 per request), so it differs between '
         'regenerations; kernel replies echo it. `nlmsg_pid` of kernel replies is ip\'s netlink port id (its '
         'pid for the first socket, a kernel-chosen negative number for later ones). Compare those fields '
         'separately or mask them.',
         '- MAC addresses of dummy/veth links, `IFA_CACHEINFO`/`RTA_CACHEINFO`/`NDA_CACHEINFO` timestamps and '
         'statistics are whatever the kernel had at capture time.',
         '- `Reply` captures are one `recvmsg` each, whole (a dump can hold several messages; `NLMSG_DONE` may '
         'share the buffer or come in its own `recvmsg`).', '',
         '## Socket setup used by iproute2', '',
         'Seen by strace across all captures (FD/PORTID normalised):', '', '```'] + sock_summary + ['```', '',
         '## Captures', '',
         '| File | Name | Direction | Command | What |', '|---|---|---|---|---|']
    for kind, name, direction, cmd, what in index:
        L.append('| %s | `%s` | %s | `%s` | %s |' % (kind, name, direction, cmd, what.replace('|', '\\|')))
    with open(os.path.join(out_dir, 'README.md'), 'w') as f:
        f.write('\n'.join(L) + '\n')

# --------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--inner', action='store_true')
    ap.add_argument('--where', default='local')
    ap.add_argument('--local', action='store_true')
    ap.add_argument('--from-raw')
    ap.add_argument('--save-raw')
    ap.add_argument('--out', default=DEFAULT_OUT)
    ap.add_argument('--kvm-dir', default='/tmp/kvm-ref')
    ap.add_argument('--kvm-src', default='/work/shared/tools/kernel-vm')
    args = ap.parse_args()
    if args.inner:
        inner(args)
        return
    if args.from_raw:
        with open(args.from_raw) as f:
            raw = json.load(f)
    elif args.local:
        raw = capture_local(args)
    else:
        raw = capture_vm(args)
    if args.save_raw:
        with open(args.save_raw, 'w') as f:
            json.dump(raw, f, indent=1)
    for p in emit(raw, args.out):
        print(p)


if __name__ == '__main__':
    main()
