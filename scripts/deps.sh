#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs the Debian 12 packages Ferry needs to build, run and test, then the interop tests' npm
# packages (scripts/interop-deps.sh). Idempotent: asks apt only for what is missing, never prompts,
# prints nothing when nothing is missing. Runs as root, or through sudo (non-interactive) otherwise.
set -euo pipefail

pkgs=(
    build-essential cmake pkg-config
    libevent-dev libleveldb-dev
    libcmocka-dev libjansson-dev python3
    # authentication: PBKDF2-SHA512 password files (broker/auth.c, ferryctl passwd); TLS
    # (broker/tls.c); the TLS tests make certificates with the openssl CLI and call curl
    libssl-dev openssl curl
    # MQTT over WebSocket: frames (adapters/mqtt/mqtt_ws.c)
    libwslay-dev
    clang libclang-rt-14-dev
    # interop tests (interop/): third-party MQTT brokers, clients and libraries
    mosquitto mosquitto-clients libmosquitto-dev python3-paho-mqtt
    # the AMQP 1.0 adapter (qpid-proton-c) and its interop tests (python3-qpid-proton)
    libqpid-proton11-dev python3-qpid-proton
    # the web console's browser test (interop/console): headless Chromium
    chromium
)

missing=()
for p in "${pkgs[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
        missing+=("$p")
    fi
done
# node and npm may come from elsewhere than Debian (nodesource, nvm): ask for the commands.
if ! command -v node >/dev/null 2>&1; then
    missing+=(nodejs)
fi
if ! command -v npm >/dev/null 2>&1; then
    missing+=(npm)
fi

if [ ${#missing[@]} -gt 0 ]; then
    echo "deps: installing ${missing[*]}" >&2
    if [ "$(id -u)" -eq 0 ]; then
        as_root=()
    elif command -v sudo >/dev/null 2>&1; then
        as_root=(sudo -n)
    else
        echo "deps: need root (or sudo) to install: ${missing[*]}" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    "${as_root[@]}" apt-get update -qq || echo "deps: apt-get update failed, trying the install anyway" >&2
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}"
fi

"$(dirname "$0")/interop-deps.sh"
