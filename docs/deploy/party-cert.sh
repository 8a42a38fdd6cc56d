#!/bin/sh
# Federation TLS certificates from an organisation's own CA, with openssl (see docs/deploy.md).
# Tested by tests/integration/test_own_ca.py (two organisations, each with its own CA).
#
#   party-cert.sh ca   NAME DIR                      a new ECDSA P-256 CA: DIR/ca.key, DIR/ca.pem
#                                                    (only for an organisation that has none)
#   party-cert.sh csr  PARTY DIR                     at the party: DIR/tls.key (0600), DIR/tls.csr
#   party-cert.sh sign PARTY CSR CA_PEM CA_KEY OUT [HOST ...]
#                                                    at the CA: OUT, the party's certificate
#
# The certificate the engine needs (protocols/pki.py makes the same for `vfl certs init`):
#   key            ECDSA P-256 (ECDSA keys are what keeps every TLS 1.2 handshake refused)
#   subject        CN = the party name (the server matches it with the envelope's sender)
#   SAN            DNS:<party> (peers verify the server by it), plus each HOST: the node's
#                  address as IP or DNS, for tools that check the host (openssl, curl, probes)
#   extensions     basicConstraints CA:FALSE; keyUsage digitalSignature;
#                  extendedKeyUsage serverAuth + clientAuth (every node is server and client)
# `sign` takes the party name and hosts from the CA operator, never from the request; it
# checks that the request is signed, names CN = PARTY and holds a P-256 key.
set -eu

days=${DAYS:-365}

die() {
    echo "party-cert.sh: $*" >&2
    exit 2
}

case "${1:-}" in
ca)
    [ $# -eq 3 ] || die "usage: party-cert.sh ca NAME DIR"
    mkdir -p "$3"
    (umask 077 && openssl ecparam -name prime256v1 -genkey -noout |
        openssl pkcs8 -topk8 -nocrypt -out "$3/ca.key")
    openssl req -x509 -new -key "$3/ca.key" -sha256 -days "${CA_DAYS:-1825}" \
        -subj "/CN=$2" -out "$3/ca.pem" \
        -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -addext "subjectKeyIdentifier=hash"
    ;;
csr)
    [ $# -eq 3 ] || die "usage: party-cert.sh csr PARTY DIR"
    mkdir -p "$3"
    (umask 077 && openssl ecparam -name prime256v1 -genkey -noout |
        openssl pkcs8 -topk8 -nocrypt -out "$3/tls.key")
    openssl req -new -key "$3/tls.key" -sha256 -subj "/CN=$2" -out "$3/tls.csr"
    ;;
sign)
    [ $# -ge 6 ] || die "usage: party-cert.sh sign PARTY CSR CA_PEM CA_KEY OUT [HOST ...]"
    party=$2 csr=$3 ca_pem=$4 ca_key=$5 out=$6
    shift 6
    openssl req -in "$csr" -noout -verify 2>/dev/null || die "$csr: bad signature on the request"
    subject=$(openssl req -in "$csr" -noout -subject -nameopt RFC2253)
    [ "$subject" = "subject=CN=$party" ] || die "$csr: subject is '$subject', want CN=$party"
    openssl req -in "$csr" -noout -text | grep -q "prime256v1" ||
        die "$csr: the key must be ECDSA P-256"
    san="DNS:$party"
    for host in "$@"; do
        case "$host" in
        *:*) san="$san,IP:$host" ;;          # IPv6
        *[!0-9.]*) san="$san,DNS:$host" ;;   # a name
        *) san="$san,IP:$host" ;;            # IPv4
        esac
    done
    ext=$(mktemp)
    trap 'rm -f "$ext"' EXIT
    cat >"$ext" <<EOF
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = $san
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
    openssl x509 -req -in "$csr" -CA "$ca_pem" -CAkey "$ca_key" -sha256 -days "$days" \
        -set_serial "0x$(openssl rand -hex 16)" -extfile "$ext" -out "$out"
    ;;
*)
    die "usage: party-cert.sh ca|csr|sign ... (see the comment at the top)"
    ;;
esac
