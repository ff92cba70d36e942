// SPDX-License-Identifier: MIT
// The peer "node ws" in bench/run.sh --peers: the idiomatic topic broadcaster on
// Node's `ws` (Debian's node-ws), speaking the same routes as ringcast so the same
// bench drives both: GET /ws?topics=a upgrades and subscribes, POST /publish/<topic>
// publishes the body, POST /publish takes ringcast's batch format. Each message is
// sent to every subscriber with ws.send(), as ws's own broadcast example does.
// node_wss_broadcast.js serves the same over TLS through serve().
'use strict';
const http = require('http');
const WebSocket = require('ws');

const topics = new Map(); // name -> Set of sockets

function publish(topic, payload) {
  const subs = topics.get(topic);
  if (!subs) return;
  for (const ws of subs) if (ws.readyState === WebSocket.OPEN) ws.send(payload);
}

function parseBatch(buf) {
  const out = [];
  let pos = 0;
  while (pos < buf.length) {
    const sp = buf.indexOf(0x20, pos);
    const nl = buf.indexOf(0x0a, sp);
    if (sp < 0 || nl < 0) throw new Error('bad batch');
    const topic = buf.toString('utf8', pos, sp);
    const len = Number(buf.toString('utf8', sp + 1, nl));
    out.push([topic, buf.subarray(nl + 1, nl + 1 + len)]);
    pos = nl + 1 + len + 1;
  }
  return out;
}

function onRequest(req, res) {
  if (req.method !== 'POST' || !req.url.startsWith('/publish')) {
    res.writeHead(req.url === '/healthz' ? 200 : 404);
    res.end();
    return;
  }
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    let n = 1;
    if (req.url === '/publish') {
      const recs = parseBatch(body);
      for (const [t, p] of recs) publish(t, p.toString());
      n = recs.length;
    } else {
      publish(decodeURIComponent(req.url.slice('/publish/'.length)), body.toString());
    }
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(`{"ok":true,"published":${n}}\n`);
  });
}

const wss = new WebSocket.Server({ noServer: true, perMessageDeflate: false });

function onUpgrade(req, socket, head) {
  const url = new URL(req.url, 'http://x');
  const topic = url.searchParams.get('topics');
  wss.handleUpgrade(req, socket, head, (ws) => {
    if (!topics.has(topic)) topics.set(topic, new Set());
    topics.get(topic).add(ws);
    ws.on('close', () => topics.get(topic).delete(ws));
    ws.on('error', () => {});
  });
}

// Serves the routes on `server` (made by http.createServer or https.createServer
// without a handler) at 127.0.0.1:port.
function serve(server, port) {
  server.on('request', onRequest);
  server.on('upgrade', onUpgrade);
  server.listen(port, '127.0.0.1');
}

module.exports = { serve };
if (require.main === module) serve(http.createServer(), Number(process.argv[2] || 8081));
