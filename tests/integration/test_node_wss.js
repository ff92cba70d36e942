// SPDX-License-Identifier: MIT
// Node's `ws` over wss:// and node's https publishing: 100 subscribers on two
// topics over TLS (ECDSA P-256 certificate made here with the openssl command
// line), publishes over a wss client's commands and over https with keep-alive;
// every subscriber must see contiguous sequence numbers in one order per topic.
'use strict';
const { spawn, execFileSync } = require('child_process');
const fs = require('fs');
const https = require('https');
const os = require('os');
const path = require('path');
const { BIN, freePort, open, subscribe, tally } = require('./nodeutil');

const TOPICS = ['nodetls.a', 'nodetls.b'];
const SUBS = 100;
const PER_PATH = 25;
const { check, finish } = tally();

function makeCert(dir) {
  const key = path.join(dir, 'ec.key'), crt = path.join(dir, 'ec.crt');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', key, '-out', crt, '-days', '2', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { stdio: 'ignore' });
  return { key, crt, ca: fs.readFileSync(crt) };
}

function request(port, ca, agent, method, p, body) {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: 'localhost', port, method, path: p, ca, agent }, (res) => {
      let data = '';
      res.on('data', (c) => (data += c));
      res.on('end', () => resolve({ status: res.statusCode, body: data, reused: req.reusedSocket }));
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

async function waitHealthy(port, ca, agent) {
  for (let i = 0; i < 200; i++) {
    try {
      if ((await request(port, ca, agent, 'GET', '/healthz')).status === 200) return;
    } catch (e) { /* not up yet */ }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('ringcast did not start');
}


async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringcast-nodetls-'));
  const cert = makeCert(dir);
  const port = await freePort();
  const srv = spawn(BIN, ['--listen', `127.0.0.1:${port},tls`, '--tls-cert', cert.crt, '--tls-key', cert.key,
    '--threads', '2', '--no-pin', '--drain-seconds', '0'], { stdio: 'inherit' });
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    await waitHealthy(port, cert.ca, agent);
    const expected = PER_PATH * 2;
    const subs = [];
    const epochs = {};
    for (let i = 0; i < SUBS; i++) {
      const topic = TOPICS[i % TOPICS.length];
      const got = [];
      let arrived;
      const done = new Promise((resolve) => (arrived = resolve));
      const { ws, acks } = await subscribe(`wss://localhost:${port}/ws?topics=${topic}`, [topic], (data) => {
        got.push(JSON.parse(data.toString()));
        if (got.length === expected) arrived();
      }, { ca: cert.ca });
      check(acks[topic].seq === 0, `a ${topic} subscriber's ack over wss: seq 0 before any publish`);
      if (!(topic in epochs)) epochs[topic] = acks[topic].epoch;
      check(acks[topic].epoch === epochs[topic], `one epoch for ${topic}`);
      subs.push({ ws, topic, got, done });
    }
    const pub = await open(`wss://localhost:${port}/ws`, { ca: cert.ca });
    let reused = 0;
    for (let k = 0; k < PER_PATH; k++) {
      for (const t of TOPICS) {
        pub.send(JSON.stringify({ op: 'publish', topic: t, data: { via: 'wss', k, t } }));
        const r = await request(port, cert.ca, agent, 'POST', `/publish/${t}`, JSON.stringify({ via: 'https', k, t }));
        check(r.status === 200, `https publish ${t} ${k}: ${r.status}`);
        if (r.reused) reused++;
      }
    }
    check(reused >= PER_PATH * TOPICS.length - 1, `https publishes kept their connection alive (${reused})`);
    await Promise.race([Promise.all(subs.map((s) => s.done)),
      new Promise((_, rej) => setTimeout(() => rej(new Error('timed out waiting for messages')), 30000))]);
    const order = {};
    for (const s of subs) {
      check(s.got.every((m, i) => m.seq === i + 1 && m.topic === s.topic), `contiguous seq for a ${s.topic} subscriber`);
      const datas = JSON.stringify(s.got.map((m) => m.data));
      if (!(s.topic in order)) order[s.topic] = datas;
      check(order[s.topic] === datas, 'one order per topic');
    }
    for (const s of subs) s.ws.close();
    pub.close();
  } finally {
    agent.destroy();
    srv.kill('SIGTERM');
    await new Promise((r) => srv.once('exit', r));
    fs.rmSync(dir, { recursive: true, force: true });
  }
  finish();
}

main().catch((e) => finish(e));
