// SPDX-License-Identifier: MIT
// Node's `ws` clients against the real server: 300 subscribers over three topics
// on three shards, publishes over a ws client's commands and over HTTP, and every
// subscriber must see contiguous sequence numbers in one order; raw format too.
'use strict';
const { spawn } = require('child_process');
const http = require('http');
const { BIN, freePort, open, subscribe, tally } = require('./nodeutil');

const TOPICS = ['node.a', 'node.b', 'node.c'];
const SUBS = 300;
const PER_PATH = 30;
const { check, finish } = tally();

function request(port, method, path, body) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path }, (res) => {
      let data = '';
      res.on('data', (c) => (data += c));
      res.on('end', () => resolve({ status: res.statusCode, body: data }));
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

async function waitHealthy(port) {
  for (let i = 0; i < 200; i++) {
    try {
      if ((await request(port, 'GET', '/healthz')).status === 200) return;
    } catch (e) { /* not up yet */ }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('ringcast did not start');
}


async function main() {
  const port = await freePort();
  const srv = spawn(BIN, ['--listen', `127.0.0.1:${port}`, '--threads', '3', '--no-pin', '--drain-seconds', '0'], { stdio: 'inherit' });
  try {
    await waitHealthy(port);
    const expected = PER_PATH * 2;
    const subs = [];
    const epochs = {};
    for (let i = 0; i < SUBS; i++) {
      const topic = TOPICS[i % TOPICS.length];
      const raw = i % 50 === 0;
      const got = [];
      let arrived;
      const done = new Promise((resolve) => (arrived = resolve));
      const { ws, acks } = await subscribe(`ws://127.0.0.1:${port}/ws?topics=${topic}${raw ? '&format=raw' : ''}`,
        [topic], (data) => {
          got.push(data.toString());
          if (got.length === expected) arrived();
        });
      if (!raw) {
        check(acks[topic].seq === 0, `a ${topic} subscriber's ack: seq 0 before any publish`);
        if (!(topic in epochs)) epochs[topic] = acks[topic].epoch;
        check(acks[topic].epoch === epochs[topic], `one epoch for ${topic}`);
      }
      subs.push({ ws, topic, raw, got, done });
    }
    const pub = await open(`ws://127.0.0.1:${port}/ws`);
    const acks = [];
    const acked = new Promise((resolve) => pub.on('message', (d) => {
      acks.push(JSON.parse(d.toString()));
      if (acks.length === PER_PATH * TOPICS.length) resolve();
    }));
    for (let k = 0; k < PER_PATH; k++) {
      for (const t of TOPICS) {
        pub.send(JSON.stringify({ op: 'publish', topic: t, id: `${t}-${k}`, data: { via: 'ws', k, t } }));
        const r = await request(port, 'POST', `/publish/${t}`, JSON.stringify({ via: 'http', k, t }));
        check(r.status === 200, `HTTP publish ${t} ${k}: ${r.status}`);
      }
    }
    await Promise.race([Promise.all(subs.map((s) => s.done)),
      new Promise((_, rej) => setTimeout(() => rej(new Error('timed out waiting for messages')), 30000))]);
    // An ack comes once the topic's home shard stamped the message: it may trail
    // the deliveries, and it carries the seq the subscribers saw.
    await Promise.race([acked, new Promise((_, rej) => setTimeout(() => rej(new Error('timed out waiting for acks')), 30000))]);
    check(acks.length === PER_PATH * TOPICS.length && acks.every((a) => a.type === 'ack' && a.seq >= 1),
      'every publish acknowledged with its seq');
    const order = {};
    for (const s of subs.filter((x) => !x.raw)) {
      const msgs = s.got.map((x) => JSON.parse(x));
      check(msgs.every((m, i) => m.seq === i + 1 && m.topic === s.topic), `contiguous seq for a ${s.topic} subscriber`);
      const datas = JSON.stringify(msgs.map((m) => m.data));
      if (!(s.topic in order)) order[s.topic] = datas;
      check(order[s.topic] === datas, 'one order per topic');
    }
    for (const s of subs.filter((x) => x.raw)) {
      check(JSON.stringify(s.got.map((x) => JSON.parse(x))) === order[s.topic], 'raw subscribers get the payloads in the same order');
    }
    for (const s of subs) s.ws.close();
    pub.close();
  } finally {
    srv.kill('SIGTERM');
    await new Promise((r) => srv.once('exit', r));
  }
  finish();
}

main().catch((e) => finish(e));
