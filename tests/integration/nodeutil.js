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

module.exports = { BIN, freePort, open, tally };
