#!/usr/bin/env bash
# make-certs.sh - the certificates of a MobilityAgents deployment, made with openssl alone:
# a private CA, the home agent's TLS server certificate, and one client certificate per laptop
# (or operator application). A client's identity is its certificate's subject CN.
#
# usage: certs/make-certs.sh [-d DIR] [-days N] COMMAND
#   ca                         the CA: ca.pem (give to every agent), ca.key (keep offline)
#   server NAME ADDR...        the home agent: NAME.pem, NAME.key; each ADDR (IPv4 address or DNS
#                              name) goes into subjectAltName: what laptops connect to
#   client IDENTITY            a laptop or operator: IDENTITY.pem, IDENTITY.key with CN=IDENTITY
#   demo                       ca, server home-agent 127.0.0.1 localhost, clients alice, bob, mailserver
#
# DIR defaults to the current directory. Private keys are EC P-256, PKCS#8 PEM, mode 0600.
# Existing files are never overwritten. See certs/README.md for where each file goes.
set -euo pipefail
umask 077

DIR=. DAYS=
while [ $# -gt 0 ]; do
  case $1 in
    -d) DIR=$2; shift 2;;
    -days) DAYS=$2; shift 2;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0;;
    *) break;;
  esac
done
[ $# -gt 0 ] || { sed -n '5,12p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
command -v openssl >/dev/null || { echo "make-certs: openssl is not installed (apt-get install openssl)" >&2; exit 1; }
mkdir -p "$DIR"
cd "$DIR"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

die() { echo "make-certs: $*" >&2; exit 1; }
fresh() { for f in "$@"; do [ ! -e "$f" ] || die "$DIR/$f exists: not overwriting it (move it away first)"; done; }
name_ok() { [[ $1 =~ ^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$ ]] || die "'$1' is not a usable name (letters, digits, . _ @ -; at most 64)"; }
newkey() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; chmod 600 "$1"; }
serial() { echo "0x$(openssl rand -hex 16)"; }

# sign NAME DAYS EXTENSIONS...: NAME.key -> NAME.pem, signed by ca.pem/ca.key with these v3 extensions.
sign() {
  local name=$1 days=$2; shift 2
  [ -e ca.pem ] && [ -e ca.key ] || die "no ca.pem/ca.key in $DIR: run '$0 -d $DIR ca' first"
  printf '%s\n' "$@" > "$TMP/ext.cnf"
  openssl req -new -key "$name.key" -subj "/CN=$name" -out "$TMP/$name.csr"
  openssl x509 -req -in "$TMP/$name.csr" -CA ca.pem -CAkey ca.key -set_serial "$(serial)" \
    -days "$days" -sha256 -extfile "$TMP/ext.cnf" -out "$name.pem"
  chmod 644 "$name.pem"
  echo "made $DIR/$name.pem ($(openssl x509 -in "$name.pem" -noout -subject), until $(openssl x509 -in "$name.pem" -noout -enddate | cut -d= -f2)) and $DIR/$name.key"
}

make_ca() {
  fresh ca.pem ca.key
  newkey ca.key
  cat > "$TMP/ca.cnf" <<CNF
[req]
prompt = no
distinguished_name = dn
x509_extensions = ext
[dn]
CN = MobilityAgents CA
[ext]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
CNF
  openssl req -x509 -new -config "$TMP/ca.cnf" -key ca.key -set_serial "$(serial)" -days "${DAYS:-3650}" -sha256 -out ca.pem
  chmod 644 ca.pem
  echo "made $DIR/ca.pem and $DIR/ca.key (keep ca.key off the gateway and the laptops)"
}

make_server() {
  local name=$1; shift
  name_ok "$name"
  [ $# -gt 0 ] || die "server $name: give the address(es) or DNS name(s) laptops connect to"
  local san=() a
  for a in "$@"; do
    if [[ $a =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ ]]; then san+=("IP:$a"); else san+=("DNS:$a"); fi
  done
  fresh "$name.pem" "$name.key"
  newkey "$name.key"
  sign "$name" "${DAYS:-825}" \
    "basicConstraints = critical, CA:FALSE" \
    "keyUsage = critical, digitalSignature" \
    "extendedKeyUsage = serverAuth" \
    "subjectAltName = $(IFS=,; echo "${san[*]}")" \
    "subjectKeyIdentifier = hash" \
    "authorityKeyIdentifier = keyid"
}

make_client() {
  local identity=$1
  name_ok "$identity"
  fresh "$identity.pem" "$identity.key"
  newkey "$identity.key"
  sign "$identity" "${DAYS:-825}" \
    "basicConstraints = critical, CA:FALSE" \
    "keyUsage = critical, digitalSignature" \
    "extendedKeyUsage = clientAuth" \
    "subjectKeyIdentifier = hash" \
    "authorityKeyIdentifier = keyid"
}

case $1 in
  ca) make_ca;;
  server) [ $# -ge 2 ] || die "usage: server NAME ADDR..."; shift; make_server "$@";;
  client) [ $# -eq 2 ] || die "usage: client IDENTITY"; make_client "$2";;
  demo) make_ca; make_server home-agent 127.0.0.1 localhost; for c in alice bob mailserver; do make_client "$c"; done;;
  *) die "unknown command '$1' (try --help)";;
esac
