// SPDX-License-Identifier: MIT
// The peer "node ws" over TLS (bench/tls.sh): node_ws_broadcast.js's routes on
// Node's https server, so wss:// subscribers and https:// publishers reach the
// same ws.send() loop. Usage: node node_wss_broadcast.js PORT CERT KEY
'use strict';
const fs = require('fs');
const https = require('https');
const { serve } = require('./node_ws_broadcast.js');

const [port, cert, key] = process.argv.slice(2);
if (!port || !cert || !key) {
  console.error('usage: node node_wss_broadcast.js PORT CERT KEY');
  process.exit(2);
}
serve(https.createServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key) }), Number(port));
