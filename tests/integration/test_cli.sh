#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# ringcast-cli against the real server: pub over HTTP, sub over WebSocket, errors.
set -u
server=$1 cli=$2
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
log=$(mktemp)
"$server" --listen 127.0.0.1:$port --threads 2 --no-pin --demo-feed >"$log" 2>&1 &
pid=$!
passed=0 failed=0
check() { if eval "$2"; then passed=$((passed+1)); else failed=$((failed+1)); echo "FAIL: $1"; fi; }
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.05; done

out=$(timeout 10 "$cli" sub "ws://127.0.0.1:$port/ws?topics=quotes.AAPL" --count 3)
check "sub prints three demo quotes" '[ "$(printf "%s\n" "$out" | grep -c "\"topic\":\"quotes.AAPL\"")" = 3 ]'

timeout 10 "$cli" sub "ws://127.0.0.1:$port/ws?topics=cli.t&format=raw" --count 1 >"$log.sub" &
sub=$!
sleep 0.3
check "pub succeeds" '"$cli" pub "http://127.0.0.1:$port" cli.t "hello from the cli" >/dev/null'
wait $sub
check "sub receives the raw payload" '[ "$(cat "$log.sub")" = "hello from the cli" ]'
check "pub reads stdin with -" 'echo piped | "$cli" pub "http://127.0.0.1:$port" cli.t - >/dev/null'
check "invalid topic exits 2" '"$cli" pub "http://127.0.0.1:$port" "bad topic" x 2>/dev/null; [ $? = 2 ]'
check "bad URL exits 2" '"$cli" sub "nope://x" 2>/dev/null; [ $? = 2 ]'
check "refused upgrade exits 1 with the reason" '"$cli" sub "ws://127.0.0.1:$port/ws?topics=a,b&format=raw" 2>&1 | grep -q "exactly one topic"'
check "help" '"$cli" --help | grep -q "ringcast-cli sub URL"'
check "server --help lists every flag" 'for f in --listen --admin-listen --threads --cpus --no-pin --max-conns --max-conns-per-ip --max-handshakes-per-ip --connect-rate-per-ip --max-message --max-queue --max-memory --max-backlog --max-topics --max-command-bytes --max-commands-per-sec --demo-feed --log-level; do "$server" --help | grep -q -- "$f" || exit 1; done'
check "server rejects a bad flag value with status 2" '"$server" --threads x 2>/dev/null; [ $? = 2 ]'

kill -TERM $pid
wait $pid
check "server exits 0 on SIGTERM" '[ $? = 0 ]'
rm -f "$log" "$log.sub"
echo "$passed passed, $failed failed"
[ $failed = 0 ]
