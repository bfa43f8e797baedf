#!/usr/bin/env bash
# Install what certfleet needs to build, test and benchmark, from Debian's
# archive only, skipping what is already installed.
set -euo pipefail

pkgs=(
    # build
    cmake make gcc pkg-config clang-format binutils
    libuv1-dev libc-ares-dev liblmdb-dev lmdb-utils libjansson-dev libpsl-dev publicsuffix
    libidn2-dev libcmocka-dev
    # the bench's mock CA: HTTP/2 framing (its TLS is the crypto backend's libssl)
    libnghttp2-dev
    # BoringSSL with curl's GnuTLS build (DESIGN.md §6) ...
    android-libboringssl-dev libcurl4-gnutls-dev
    # ... and the OpenSSL 3 build: libssl-dev with curl's OpenSSL runtime library
    libssl-dev libcurl4
    # test servers and tools
    pebble knot knot-dnsutils unbound dnsperf openssl valgrind python3 procps iproute2
    # libFuzzer (clang and its runtime library)
    clang libclang-rt-14-dev
    # h2load, to measure the mock CA's request rate (bench/README.md)
    nghttp2-client
    # certfleet-bench --plot (bench/README.md "Load harness")
    gnuplot-nox
)

missing=()
for p in "${pkgs[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done
if ((${#missing[@]})); then
    echo "deps: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # Packaged services (knot, unbound) must not start on install: the tests
    # start their own instances on loopback ports.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "deps: all present"
