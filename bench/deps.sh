#!/usr/bin/env bash
# Installs the Debian packages `make bench` needs, only those that are missing
# (the same way `make deps` does for the build).
set -euo pipefail
pkgs="wrk nginx libnginx-mod-http-lua libnginx-mod-http-modsecurity modsecurity-crs lua-nginx-websocket haproxy openssl procps util-linux curl python3-jwt python3-cryptography"
missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "bench: installing:$missing"
    SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
    # policy-rc.d or not, the packaged nginx/haproxy services are not needed: the
    # bench starts its own instances on loopback ports 18080-18093.
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi
