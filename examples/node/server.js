'use strict';
// A Node.js HTTP server on the socket preforkd passes as fd 3 (systemd socket activation).
const http = require('node:http');

if (process.env.LISTEN_PID !== String(process.pid) || !(Number(process.env.LISTEN_FDS) >= 1)) {
  console.error('server.js: no socket from preforkd (LISTEN_FDS/LISTEN_PID not set for this process)');
  process.exit(1);
}

const slot = process.env.PREFORK_WORKER_ID;
const server = http.createServer((req, res) => {
  const answer = () => {
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    res.end(`hello from node, slot ${slot} pid ${process.pid}\n`);
  };
  if (req.url.startsWith('/slow')) setTimeout(answer, 1000);
  else answer();
});

server.listen({ fd: 3 }, () => console.log(`slot ${slot}: serving on fd 3`));

// Graceful stop: stop accepting, let requests in flight finish, then exit.
process.on('SIGTERM', () => {
  server.close(() => process.exit(0));
  server.closeIdleConnections();
});
