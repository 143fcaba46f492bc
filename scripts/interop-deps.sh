#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs the npm packages of the interop tests, each pinned in package.json and package-lock.json:
# MQTT.js in interop/mqttjs, rhea (AMQP 1.0) in interop/rhea, puppeteer-core (drives Debian's
# chromium for the web console's test) in interop/console. Runs `npm ci` in a folder only when its
# node_modules lacks the package. Quiet when there is nothing to do. Never fails the build: without
# npm or the registry it says so, and those interop tests then exit 77 (their client is absent).
set -uo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"

# install DIR PACKAGE WHAT
install() {
    local dir="$root/interop/$1" pkg="$2" what="$3"
    if [ -d "$dir/node_modules/$pkg" ]; then
        return 0
    fi
    if ! command -v npm >/dev/null 2>&1; then
        echo "interop-deps: npm not found: $what interop tests will be skipped" >&2
        return 0
    fi
    echo "interop-deps: npm ci in interop/$1" >&2
    if ! (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null); then
        echo "interop-deps: npm ci failed (no registry?): $what interop tests will be skipped" >&2
        rm -rf "$dir/node_modules"
    fi
}

install mqttjs mqtt MQTT.js
install rhea rhea rhea
install console puppeteer-core "the web console's browser"
exit 0
