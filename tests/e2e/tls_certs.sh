#!/bin/sh
# The test PKI of tests/e2e/tls_spec.lua, generated into DIR with the openssl CLI:
# everything tests/unit/tls_certs.sh makes (root and intermediate CAs, api.test and
# other.test server certificates, client (serial 0xA1B2C3), expired, revoked + CRL,
# rogue from an unknown CA, ... see that file), plus, issued by the root:
#   localhost.pem/.key   server certificate for localhost and 127.0.0.1 (a listener's
#                        default certificate and the local https backends')
#   req.test.pem/.key    server certificate for req.test (a mode = "request" domain)
#   trust_ab.pem         truststore with CA A (trust.pem: intermediate + root) and
#                        CA B (rogue_root.pem, which issued rogue.pem)
# Usage: sh tls_certs.sh DIR
set -eu
D=$1
sh "$(dirname "$0")/../unit/tls_certs.sh" "$D"
cd "$D"
exec 2>>gen.log

export CADIR="$D/root" SAN=none
server() {
    name=$1 san=$2
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$name.key"
    openssl req -new -config ca.cnf -key "$name.key" -subj "/CN=$name" -out "$name.csr"
    SAN=$san openssl ca -config ca.cnf -batch -notext -in "$name.csr" -out "$name.pem" \
        -extensions server -days 365
}
server localhost "localhost,IP:127.0.0.1"
server req.test "req.test"
cat trust.pem rogue_root.pem >trust_ab.pem
