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
AAPL MSFT NVDA ... BTC-USD ETH-USD).

  Status page: http://localhost:$port/  (live connections, messages/s, latency, shards)

Try, in another terminal:

  build/ringcast-cli sub 'ws://localhost:$port/ws?topics=quotes.AAPL,trades.AAPL'
  build/ringcast-cli sub 'ws://localhost:$port/ws?topics=trades.NVDA&snapshot=1'

The server keeps the last 1,000 messages of each topic (--history 1000): every
subscription's ack carries its topic's seq and epoch, and a client that comes back
with since=TOPIC:EPOCH:SEQ gets what it missed. Quiet topics (trades.SYM trade a
few times a second) send {"type":"hb"} heartbeats after a second of silence.
  curl -d '{"hello":"world"}' http://localhost:$port/publish/alerts
  curl -s http://localhost:$port/metrics | grep -v '^#'

Stop it with Ctrl-C.

MSG
exec build/ringcast --listen "0.0.0.0:$port" --demo-feed --history 1000 --topic-heartbeat 1 "$@"
