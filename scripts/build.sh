#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Configures and builds one configuration: scripts/build.sh DIR [cmake -D options...]
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$1
shift
cmake -S . -B "$dir" -G Ninja "$@" >/dev/null
ninja -C "$dir"
