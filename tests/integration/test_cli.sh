#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# ringcast-cli against the real server: pub over HTTP, sub over WebSocket, errors;
# then over TLS (wss://, https://, --ca, --insecure) with a publish key (--token).
set -u
server=$1 cli=$2
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
log=$(mktemp)
"$server" --listen 127.0.0.1:$port --threads 2 --no-pin --demo-feed >"$log" 2>&1 &
pid=$!
passed=0 failed=0
check() { if eval "$2"; then passed=$((passed+1)); else failed=$((failed+1)); echo "FAIL: $1"; fi; }
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.05; done

out=$(timeout 10 "$cli" sub "ws://127.0.0.1:$port/ws?topics=quotes.AAPL" --count 3 2>"$log.err")
check "sub prints three demo quotes" '[ "$(printf "%s\n" "$out" | grep -c "^{\"type\":\"msg\",\"topic\":\"quotes.AAPL\"")" = 3 ]'
check "sub prints nothing but messages on stdout" '[ "$(printf "%s\n" "$out" | wc -l)" = 3 ]'
check "sub shows the subscribe ack on stderr" 'grep -q "^ringcast-cli: {\"type\":\"ack\",\"op\":\"subscribe\",\"topic\":\"quotes.AAPL\",\"seq\":[0-9]*,\"epoch\":\"[0-9a-f]\{16\}\"}$" "$log.err"'

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
check "server --help lists every flag" 'for f in --listen --admin-listen --threads --cpus --no-pin --max-conns --max-conns-per-ip --max-handshakes-per-ip --connect-rate-per-ip --max-message --max-queue --max-memory --max-backlog --max-topics --max-command-bytes --max-commands-per-sec --demo-feed --log-level --tls-cert --tls-key --jwt-key --jwt-leeway --jwt-audience --jwt-issuer --jwt-cookie --publish-key-file --allow-origin --trust-proxy --drain-seconds --takeover --control-socket --pid-file; do "$server" --help | grep -q -- "$f" || exit 1; done'
check "server rejects a bad flag value with status 2" '"$server" --threads x 2>/dev/null; [ $? = 2 ]'

kill -TERM $pid
wait $pid
check "server exits 0 on SIGTERM" '[ $? = 0 ]'

# Over TLS, with a publish key required.
dir=$(mktemp -d)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$dir/k" -out "$dir/c" \
  -days 2 -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$dir/k2" -out "$dir/other" \
  -days 2 -subj /CN=localhost 2>/dev/null
echo "cli-publish-key-0123456789" >"$dir/keys"
tport=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$server" --listen 127.0.0.1:$tport,tls --tls-cert "$dir/c" --tls-key "$dir/k" --publish-key-file "$dir/keys" \
  --threads 1 --no-pin >"$log" 2>&1 &
pid=$!
for _ in $(seq 100); do curl -skf "https://127.0.0.1:$tport/healthz" >/dev/null 2>&1 && break; sleep 0.05; done
key=cli-publish-key-0123456789
timeout 10 "$cli" sub "wss://localhost:$tport/ws?topics=cli.tls&format=raw" --count 1 --ca "$dir/c" --token $key >"$log.sub" &
sub=$!
sleep 0.5
check "pub over https with --ca and --token" '"$cli" pub "https://localhost:$tport" cli.tls "over tls" --ca "$dir/c" --token $key >/dev/null'
wait $sub
check "sub over wss receives it" '[ "$(cat "$log.sub")" = "over tls" ]'
check "pub without the key gets 401, exit 1" '"$cli" pub "https://localhost:$tport" cli.tls x --insecure 2>&1 | grep -q "credential is needed"'
check "an untrusted certificate fails the handshake" '"$cli" pub "https://localhost:$tport" cli.tls x --ca "$dir/other" --token $key 2>/dev/null; [ $? = 1 ]'
check "--insecure skips the check" '"$cli" pub "https://localhost:$tport" cli.tls x --insecure --token $key >/dev/null'
check "an unreadable --ca exits 2" '"$cli" pub "https://localhost:$tport" cli.tls x --ca /nonexistent 2>/dev/null; [ $? = 2 ]'
kill -TERM $pid
wait $pid
check "TLS server exits 0 on SIGTERM" '[ $? = 0 ]'
rm -rf "$dir"
rm -f "$log" "$log.sub" "$log.err"
echo "$passed passed, $failed failed"
[ $failed = 0 ]
