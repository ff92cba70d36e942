#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs what is missing, builds, and starts ringcast on port 8080 with the live
# demo feed. Extra arguments go to ringcast (e.g. --threads 4).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh build -DCMAKE_BUILD_TYPE=Release >/dev/null
port=${PORT:-8080}
cat <<MSG

ringcast is starting on port $port with the demo feed (quotes.SYM and trades.SYM for
AAPL MSFT NVDA ... BTC-USD ETH-USD). Try, in another terminal:

  build/ringcast-cli sub 'ws://localhost:$port/ws?topics=quotes.AAPL,trades.AAPL'
  curl -d '{"hello":"world"}' http://localhost:$port/publish/alerts
  curl -s http://localhost:$port/metrics | grep -v '^#'

Stop it with Ctrl-C.

MSG
exec build/ringcast --listen "0.0.0.0:$port" --demo-feed "$@"
