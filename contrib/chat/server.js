'use strict';
// A small chat server with no npm packages: messages are POSTed to /messages and pushed to
// every open page with Server-Sent Events (/events); /health answers svcd's health check.
//
// Listening socket: the one svcd passes (LISTEN_FDS=1 and LISTEN_PID = this process: fd 3), or
// else 127.0.0.1:$PORT (default 3000). SIGTERM (or SIGINT) ends it gracefully: the event
// streams are ended, the server closed, and the process exits 0.

const http = require('node:http');
const fs = require('node:fs');
const path = require('node:path');

const HISTORY = 50; // messages kept for pages that connect later (lost on restart)
const MAX_BODY = 4096; // bytes of one POSTed message
const MAX_TEXT = 1000; // characters of one message
const MAX_NAME = 40;
const HEARTBEAT_MS = 20000; // a comment line keeps idle streams open through proxies

const page = fs.readFileSync(path.join(__dirname, 'index.html'));
const streams = new Set();
const history = [];
let nextId = 1;

const log = (line) => console.log(line);

function send(res, status, type, body) {
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

function openStream(req, res) {
  res.writeHead(200, {
    'Content-Type': 'text/event-stream',
    'Cache-Control': 'no-cache',
    // Not kept alive: when the stream ends (shutdown) the connection goes with it.
    Connection: 'close',
    // For nginx, in case its config buffers: this response must not be.
    'X-Accel-Buffering': 'no',
  });
  // Pages reconnect a second after losing the stream (a restart of this server).
  res.write('retry: 1000\n\n');
  for (const message of history) res.write(event(message));
  streams.add(res);
  const forwarded = req.headers['x-forwarded-for'];
  log(`stream opened${forwarded ? ` for ${forwarded}` : ''}, ${streams.size} open`);
  res.on('close', () => {
    if (streams.delete(res)) log(`stream closed, ${streams.size} open`);
  });
}

function event(message) {
  return `id: ${message.id}\ndata: ${JSON.stringify(message)}\n\n`;
}

function postMessage(req, res) {
  const chunks = [];
  let size = 0;
  let refused = false;
  req.on('data', (chunk) => {
    size += chunk.length;
    if (size > MAX_BODY) {
      if (!refused) send(res, 413, 'text/plain', `a message is at most ${MAX_BODY} bytes\n`);
      refused = true;
      return;
    }
    chunks.push(chunk);
  });
  req.on('end', () => {
    if (refused) return;
    let input;
    try {
      input = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      send(res, 400, 'text/plain', 'expected JSON: {"name": "...", "text": "..."}\n');
      return;
    }
    const text = typeof input?.text === 'string' ? input.text.trim() : '';
    const name = typeof input?.name === 'string' ? input.name.trim() : '';
    if (!text || text.length > MAX_TEXT) {
      send(res, 400, 'text/plain', `"text" must be 1 to ${MAX_TEXT} characters\n`);
      return;
    }
    const message = {
      id: nextId++,
      name: (name || 'anonymous').slice(0, MAX_NAME),
      text,
      at: new Date().toISOString(),
    };
    history.push(message);
    if (history.length > HISTORY) history.shift();
    const data = event(message);
    for (const stream of streams) stream.write(data);
    res.writeHead(204);
    res.end();
  });
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://localhost');
  const route = `${req.method} ${url.pathname}`;
  switch (route) {
    case 'GET /':
    case 'HEAD /':
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Length': page.length });
      res.end(req.method === 'HEAD' ? undefined : page);
      return;
    case 'GET /health':
      send(res, 200, 'application/json', `${JSON.stringify({ status: 'ok', streams: streams.size })}\n`);
      return;
    case 'GET /events':
      openStream(req, res);
      return;
    case 'POST /messages':
      postMessage(req, res);
      return;
    default:
      send(res, 404, 'text/plain', `no ${route} here\n`);
  }
});

server.on('connection', (socket) => {
  log(`connection from ${socket.remoteAddress}:${socket.remotePort}`);
});

server.on('error', (error) => {
  console.error(`cannot listen: ${error.message}`);
  process.exit(1);
});

const heartbeat = setInterval(() => {
  for (const stream of streams) stream.write(': ping\n\n');
}, HEARTBEAT_MS);

function shutdown(signal) {
  log(`${signal}: ending ${streams.size} event streams and closing the server`);
  clearInterval(heartbeat);
  server.close(() => {
    log('closed; exiting');
    process.exit(0);
  });
  for (const stream of streams) stream.end();
  streams.clear();
  server.closeIdleConnections();
  // A request that does not finish in time does not hold the stop up.
  setTimeout(() => {
    log('connections still open after 5s; exiting');
    process.exit(0);
  }, 5000).unref();
}
process.once('SIGTERM', () => shutdown('SIGTERM'));
process.once('SIGINT', () => shutdown('SIGINT'));

const passed =
  Number(process.env.LISTEN_FDS) >= 1 && Number(process.env.LISTEN_PID) === process.pid;
delete process.env.LISTEN_FDS;
delete process.env.LISTEN_PID;
delete process.env.LISTEN_FDNAMES;
const port = Number(process.env.PORT || 3000);
if (!passed && !(Number.isInteger(port) && port >= 0 && port <= 65535)) {
  console.error(`PORT must be a port number, not ${JSON.stringify(process.env.PORT)}`);
  process.exit(2);
}
const where = passed ? { fd: 3 } : { host: '127.0.0.1', port };
server.listen(where, () => {
  const address = server.address();
  const own = typeof address === 'object' && address ? `http://127.0.0.1:${address.port}/` : 'fd 3';
  // The first line: where to point a browser (PUBLIC_URL is the proxy in front, if any).
  log(`open ${process.env.PUBLIC_URL || own} in a browser (chat server on ${passed ? 'fd 3 from svcd' : own})`);
});
