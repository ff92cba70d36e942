// SPDX-License-Identifier: MIT
// The normal conformance cases through Node's `ws`: every length form up to
// 16 MiB, fragmented messages, ping payloads up to 125 bytes and the close
// handshake, through GET /echo.
'use strict';
const { spawn } = require('child_process');
const crypto = require('crypto');
const http = require('http');
const net = require('net');
const WebSocket = require('ws');

const BIN = process.env.RINGCAST_BIN || `${__dirname}/../../build/ringcast`;
let passed = 0, failed = 0;
const check = (cond, what) => { if (cond) passed++; else { failed++; console.error(`FAIL: ${what}`); } };

const freePort = () => new Promise((resolve) => {
  const s = net.createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
});
const healthy = (port) => new Promise((resolve) => {
  http.get({ host: '127.0.0.1', port, path: '/healthz' }, (res) => { res.resume(); resolve(res.statusCode === 200); })
    .on('error', () => resolve(false));
});

async function main() {
  const port = await freePort();
  const srv = spawn(BIN, ['--listen', `127.0.0.1:${port}`, '--threads', '2', '--no-pin', '--drain-seconds', '0', '--echo',
    '--max-message', '17m', '--max-queue', '64m'], { stdio: 'inherit' });
  try {
    for (let i = 0; i < 200 && !(await healthy(port)); i++) await new Promise((r) => setTimeout(r, 50));
    const ws = new WebSocket(`ws://127.0.0.1:${port}/echo`, { maxPayload: 0 });
    await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
    const next = () => new Promise((resolve) => ws.once('message', (data, isBinary) => resolve({ data, isBinary })));
    for (const n of [0, 125, 126, 65535, 65536, 16 << 20]) {
      const blob = crypto.randomBytes(n);
      ws.send(blob);
      let m = await next();
      check(m.isBinary && Buffer.compare(m.data, blob) === 0, `binary of ${n} bytes`);
      const text = 'x'.repeat(n);
      ws.send(text);
      m = await next();
      check(!m.isBinary && m.data.toString() === text, `text of ${n} bytes`);
    }
    ws.send('frag', { fin: false });
    ws.send('men', { fin: false });
    ws.send('ted', { fin: true });
    const m = await next();
    check(m.data.toString() === 'fragmented', 'fragmented text');
    for (const n of [0, 1, 100, 125]) {
      const payload = crypto.randomBytes(n);
      const pong = new Promise((resolve) => ws.once('pong', resolve));
      ws.ping(payload);
      check(Buffer.compare(await pong, payload) === 0, `pong echoes a ${n}-byte ping`);
    }
    const closed = new Promise((resolve) => ws.once('close', (code) => resolve(code)));
    ws.close(1000, 'done');
    check((await closed) === 1000, 'close handshake echoes 1000');
  } finally {
    srv.kill('SIGTERM');
    await new Promise((r) => srv.once('exit', r));
  }
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}
main().catch((e) => { console.error(e); console.log(`${passed} passed, ${failed + 1} failed`); process.exit(1); });
