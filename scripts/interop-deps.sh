#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs the npm packages of the interop tests (interop/mqttjs: MQTT.js pinned in package.json and
# package-lock.json) when interop/mqttjs/node_modules is missing. Quiet when there is nothing to do.
# Never fails the build: without npm or the registry it says so, and the MQTT.js tests then exit 77
# (their client is absent).
set -uo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
dir="$root/interop/mqttjs"

if [ -d "$dir/node_modules/mqtt" ]; then
    exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
    echo "interop-deps: npm not found: MQTT.js interop tests will be skipped" >&2
    exit 0
fi
echo "interop-deps: npm ci in interop/mqttjs" >&2
if ! (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null); then
    echo "interop-deps: npm ci failed (no registry?): MQTT.js interop tests will be skipped" >&2
    rm -rf "$dir/node_modules"
fi
exit 0
