#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs, with apt, whatever ringcast needs to build and test that is missing.
set -euo pipefail
packages=(build-essential cmake ninja-build pkg-config curl openssl chromium python3 nodejs
          liburing-dev libwolfssl-dev libjemalloc-dev libcjson-dev libcriterion-dev
          python3-websockets python3-jwt python3-cryptography node-ws clang-14 libclang-rt-14-dev
          prometheus nginx systemd redis-server redis-tools libhiredis-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
