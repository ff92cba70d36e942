// SPDX-License-Identifier: MIT
// What the node integration tests share: the binary, a free port, a WebSocket
// opened as a promise, and a tally of checks that ends the process with the
// runner's summary line.
'use strict';
const net = require('net');
const WebSocket = require('ws');

const BIN = process.env.RINGCAST_BIN || `${__dirname}/../../build/ringcast`;

function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = s.address().port;
      s.close(() => resolve(port));
    });
  });
}

function open(url, options) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, options);
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

// Opens a WebSocket subscribed at connect (?topics=...) and resolves with
// { ws, acks } once every topic's subscribe ack is in: {"type":"ack",
// "op":"subscribe","topic":T,"seq":N,"epoch":"<16 hex>"}, by topic, in any
// order; a format=raw connection gets none and resolves at open. onMessage,
// listening from the start, gets every frame after the acks.
function subscribe(url, topics, onMessage, options) {
  const raw = /[?&]format=raw(&|$)/.test(url);
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, options);
    const acks = {};
    let pending = raw ? 0 : topics.length;
    ws.on('message', (data, isBinary) => {
      if (pending === 0) return onMessage(data, isBinary);
      const a = JSON.parse(data.toString());
      const keys = Object.keys(a).sort().join();
      if (keys !== 'epoch,op,seq,topic,type' || a.type !== 'ack' || a.op !== 'subscribe' ||
          !topics.includes(a.topic) || a.topic in acks || !Number.isInteger(a.seq) ||
          !/^[0-9a-f]{16}$/.test(a.epoch)) {
        ws.terminate();
        reject(new Error(`expected a subscribe ack for one of ${topics}, got ${data}`));
        return;
      }
      acks[a.topic] = a;
      if (--pending === 0) resolve({ ws, acks });
    });
    ws.once('open', () => { if (pending === 0) resolve({ ws, acks }); });
    ws.once('error', reject);
  });
}

// check(cond, what) counts; finish(error) prints "N passed, M failed" and exits.
function tally() {
  let passed = 0, failed = 0;
  return {
    check(cond, what) {
      if (cond) passed++;
      else { failed++; console.error(`FAIL: ${what}`); }
    },
    finish(error) {
      if (error) { console.error(error); failed++; }
      console.log(`${passed} passed, ${failed} failed`);
      process.exit(failed ? 1 : 0);
    },
  };
}

module.exports = { BIN, freePort, open, subscribe, tally };
