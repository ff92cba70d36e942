#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds the uWebSockets peer of bench/run.sh --peers from the two public repositories:
#
#   bench/peers/build_uws.sh UWS_DIR USOCKETS_DIR OUT
#
# UWS_DIR       a checkout of https://github.com/uNetworking/uWebSockets (its src/)
# USOCKETS_DIR  a checkout of https://github.com/uNetworking/uSockets (its src/); the
#               commit uWebSockets' uSockets submodule names is the one it is tested with
# OUT           the binary to write, e.g. build/peers/uws_broadcast
#
# uSockets is compiled as the epoll backend without SSL (LIBUS_NO_SSL), into OUT's
# folder (the source trees are only read), and linked with bench/peers/uws_broadcast.cpp
# at -O3, C++20, with LTO as uWebSockets' own build does. Needs g++ and zlib's headers
# (Debian zlib1g-dev, installed with apt if missing).
set -euo pipefail
if [ $# -ne 3 ]; then sed -n '3,15p' "$0" >&2; exit 2; fi
uws=$(cd "$1" && pwd) usockets=$(cd "$2" && pwd) out=$3
app=$(cd "$(dirname "$0")" && pwd)/uws_broadcast.cpp
[ -f "$uws/src/App.h" ] || { echo "build_uws.sh: $uws/src/App.h not found (not a uWebSockets checkout)" >&2; exit 2; }
[ -f "$usockets/src/libusockets.h" ] || { echo "build_uws.sh: $usockets/src/libusockets.h not found (not a uSockets checkout)" >&2; exit 2; }

need=()
command -v g++ >/dev/null || need+=(g++)
command -v gcc >/dev/null || need+=(gcc)
[ -f /usr/include/zlib.h ] || need+=(zlib1g-dev)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi

mkdir -p "$(dirname "$out")"
obj=$(mktemp -d "$(dirname "$out")/.uws-obj.XXXXXX")
trap 'rm -rf "$obj"' EXIT
flags=(-O3 -flto=auto -DLIBUS_NO_SSL -I"$usockets/src")
pids=()
for f in "$usockets"/src/*.c "$usockets"/src/eventing/*.c "$usockets"/src/crypto/*.c; do
  gcc "${flags[@]}" -std=c11 -c "$f" -o "$obj/$(basename "${f%.c}").o" & pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
g++ "${flags[@]}" -std=c++20 -I"$uws/src" "$app" "$obj"/*.o -lz -o "$out"
echo "build_uws.sh: built $out (uWebSockets $(git -C "$uws" describe --tags --always 2>/dev/null || echo '?'), uSockets $(git -C "$usockets" describe --tags --always 2>/dev/null || echo '?'))" >&2
