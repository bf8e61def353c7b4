#!/bin/sh
# Generates the test PKI of tests/unit/test_tls.c (and of any test that needs one) into
# DIR with the openssl CLI:
#   root.pem                 test root CA (EC P-256), managed by `openssl ca` in root/
#   inter.pem                intermediate CA issued by root, managed by `openssl ca` in inter/
#   inter2.pem               a second intermediate, revoked by root.crl.pem
#   trust.pem                truststore: inter + root;  trust2.pem: inter + inter2 + root
#   default|api|other.pem    server certificates (ECDSA P-256) for default.test (365 days),
#                            api.test (90 days) and other.test (29 days: inside the 30-day
#                            warning even when the gateway starts in the same second), each with .key
#   client.pem               CN=client,O=Moongate Test, issued by inter, serial 0xA1B2C3;
#                            client.chain.pem = client + inter
#   expired, future, revoked client certificates issued by inter (+ .chain.pem)
#   inter.crl.pem            inter's CRL revoking revoked.pem (inter.crl0.pem: the one before);
#                            root.crl.pem revokes inter2;
#                            crl_all.pem = both;  client2.pem is issued by the revoked inter2
#   rogue.pem                a client certificate from an unknown CA (rogue_root.pem)
#   weak_rsa.pem, weak_ec.pem  RSA-1024 and EC P-224 client certificates; sha1.pem: a
#                            client certificate signed with SHA-1
#   deep2..4.pem             clients under 2, 3 and 4 intermediates (d1..d4); deeptrust.pem
#                            holds d4..d1 + root
# Usage: sh tls_certs.sh DIR
set -eu
D=$1
cd "$D"
exec 2>gen.log

cat >ca.cnf <<'EOF'
[ req ]
distinguished_name = req_dn
[ req_dn ]
[ ca ]
default_ca = ca_default
[ ca_default ]
dir = $ENV::CADIR
database = $dir/index.txt
new_certs_dir = $dir/new
serial = $dir/serial
crlnumber = $dir/crlnumber
certificate = $dir/ca.pem
private_key = $dir/ca.key
default_md = sha256
default_days = 365
default_crl_days = 30
policy = policy_any
preserve = yes
unique_subject = no
email_in_dn = no
[ policy_any ]
organizationName = optional
commonName = supplied
[ v3_ca ]
basicConstraints = critical,CA:true
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[ client ]
basicConstraints = CA:false
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ server ]
basicConstraints = CA:false
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:$ENV::SAN
EOF
export CADIR="$D/root" SAN=none

ec() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key"; }
rsa() { openssl genpkey -algorithm RSA -pkeyopt "rsa_keygen_bits:$2" -out "$1.key"; }

# A CA directory for `openssl ca`: cadir NAME (NAME.key and NAME.pem must exist).
cadir() {
    mkdir -p "$1/new"
    : >"$1/index.txt"
    openssl rand -hex 8 >"$1/serial"
    echo 01 >"$1/crlnumber"
    cp "$1.key" "$1/ca.key"
    cp "$1.pem" "$1/ca.pem"
}

# issue CA NAME SUBJECT EXTENSIONS [openssl ca options]: NAME.key -> NAME.pem, signed by CA.
issue() {
    ca=$1 name=$2 subj=$3 ext=$4
    shift 4
    openssl req -new -config ca.cnf -key "$name.key" -subj "$subj" -out "$name.csr"
    CADIR="$D/$ca" openssl ca -config ca.cnf -batch -notext -in "$name.csr" -out "$name.pem" \
        -extensions "$ext" "$@"
}

# sign CA NAME SUBJECT EXTENSIONS [openssl x509 options]: for CAs that keep no database.
sign() {
    ca=$1 name=$2 subj=$3 ext=$4
    shift 4
    openssl req -new -config ca.cnf -key "$name.key" -subj "$subj" -out "$name.csr"
    openssl x509 -req -in "$name.csr" -CA "$ca.pem" -CAkey "$ca.key" -out "$name.pem" \
        -extfile ca.cnf -extensions "$ext" "$@"
}

selfsigned() {
    openssl req -new -x509 -config ca.cnf -extensions v3_ca -key "$1.key" -subj "$2" \
        -days 3650 -sha256 -out "$1.pem"
}

O="/O=Moongate Test"

ec root
selfsigned root "$O/CN=Moongate Test Root"
cadir root
ec inter
issue root inter "$O/CN=Moongate Test Intermediate" v3_ca -days 1825
cadir inter
ec inter2
issue root inter2 "$O/CN=Moongate Test Intermediate 2" v3_ca -days 1825
cat inter.pem root.pem >trust.pem
cat inter.pem inter2.pem root.pem >trust2.pem

for s in default:365 api:90 other:29; do
    n=${s%%:*}
    ec "$n"
    SAN="$n.test" issue root "$n" "/CN=$n.test" server -days "${s#*:}"
done

ec client
sign inter client "$O/CN=client" client -days 365 -sha256 -set_serial 0xA1B2C3
ec expired
issue inter expired "$O/CN=expired" client -startdate 20200101000000Z -enddate 20210101000000Z
ec future
issue inter future "$O/CN=future" client -startdate 20400101000000Z -enddate 20410101000000Z
ec revoked
issue inter revoked "$O/CN=revoked" client -days 365
ec client2
sign inter2 client2 "$O/CN=client2" client -days 365 -sha256 -set_serial 0x0102
# a 70-byte serial: RFC 5280 allows 20, but CAs do not always keep to it
ec longserial
sign inter longserial "$O/CN=long serial" client -days 365 -sha256 -set_serial "0x$(printf 'ab%.0s' $(seq 70))"
for n in client expired future revoked longserial; do cat "$n.pem" inter.pem >"$n.chain.pem"; done
cat client2.pem inter2.pem >client2.chain.pem

CADIR="$D/inter" openssl ca -config ca.cnf -batch -gencrl -out inter.crl0.pem
CADIR="$D/inter" openssl ca -config ca.cnf -batch -revoke revoked.pem -crl_reason keyCompromise
CADIR="$D/inter" openssl ca -config ca.cnf -batch -gencrl -out inter.crl.pem
CADIR="$D/root" openssl ca -config ca.cnf -batch -revoke inter2.pem -crl_reason cACompromise
CADIR="$D/root" openssl ca -config ca.cnf -batch -gencrl -out root.crl.pem
cat root.crl.pem inter.crl.pem >crl_all.pem

ec rogue_root
selfsigned rogue_root "$O/CN=Rogue Root"
ec rogue
sign rogue_root rogue "$O/CN=rogue" client -days 365 -sha256 -set_serial 7
cat rogue.pem rogue_root.pem >rogue.chain.pem

rsa weak_rsa 1024
sign inter weak_rsa "$O/CN=weak rsa" client -days 365 -sha256 -set_serial 8
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-224 -out weak_ec.key
sign inter weak_ec "$O/CN=weak ec" client -days 365 -sha256 -set_serial 10
ec sha1
sign inter sha1 "$O/CN=sha1" client -days 365 -sha1 -set_serial 9
for n in weak_rsa weak_ec sha1; do cat "$n.pem" inter.pem >"$n.chain.pem"; done

# root -> d1 -> d2 -> d3 -> d4; deep2 is issued by d2 (3 CAs), deep3 by d3 (4 CAs), deep4
# by d4 (5 CAs).
prev=root
for i in 1 2 3 4; do
    ec "d$i"
    sign "$prev" "d$i" "$O/CN=Deep $i" v3_ca -days 365 -sha256 -set_serial "$((20 + i))"
    prev=d$i
done
ec deep2
sign d2 deep2 "$O/CN=deep2" client -days 365 -sha256 -set_serial 22
ec deep3
sign d3 deep3 "$O/CN=deep3" client -days 365 -sha256 -set_serial 33
ec deep4
sign d4 deep4 "$O/CN=deep4" client -days 365 -sha256 -set_serial 44
cat d4.pem d3.pem d2.pem d1.pem root.pem >deeptrust.pem

# Not a certificate, for the error paths.
echo "not a pem file" >garbage.pem
