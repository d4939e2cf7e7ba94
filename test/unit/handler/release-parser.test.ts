/**
 * releaseHttpParser: a raw-written stream hold detaches its connection from node:http to
 * save memory per held connection. These checks use a bare node:http server on loopback
 * (no gripd), because what matters is how node:http's own socket machinery behaves.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import net, { type AddressInfo, type Socket } from 'node:net';
import { once } from 'node:events';
import { releaseHttpParser } from '../../../src/proxy/listeners.js';

/** Bound on waiting for any one event in these tests. */
const EVENT_DEADLINE_MS = 5000;

function within<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), EVENT_DEADLINE_MS);
  });
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
}

interface Held { req: IncomingMessage; res: ServerResponse; released: boolean }

/** A server whose handler writes a raw stream head, then (after a turn) releases the parser. */
async function startServer(): Promise<{ server: http.Server; port: number; held: Held[]; next(): Promise<Held>; requests: () => number }> {
  const held: Held[] = [];
  let requests = 0;
  const waiters: Array<(h: Held) => void> = [];
  const server = http.createServer({ keepAlive: true }, (req, res) => {
    requests++;
    // As gripd: the hold starts after the backend answered, i.e. in a later turn.
    setImmediate(() => {
      const sock = res.socket;
      if (sock === null) return;
      sock.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n');
      const h: Held = { req, res, released: releaseHttpParser(req, res) };
      held.push(h);
      waiters.shift()?.(h);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return {
    server, port, held,
    next: () => within(new Promise<Held>((r) => waiters.push(r)), 'a held request'),
    requests: () => requests,
  };
}

async function connect(port: number): Promise<Socket> {
  const c = net.connect(port, '127.0.0.1');
  await within(once(c, 'connect'), 'connect');
  return c;
}

/** Reads from `c` until `text` has arrived. */
function readUntil(c: Socket, text: string): Promise<string> {
  let got = '';
  return within(new Promise<string>((resolve) => {
    const onData = (d: Buffer): void => {
      got += d.toString('latin1');
      if (got.includes(text)) {
        c.off('data', onData);
        resolve(got);
      }
    };
    c.on('data', onData);
  }), `'${text}'`);
}

describe('releaseHttpParser', () => {
  test('release: a complete GET is released; raw writes still reach the client and the parser is gone', async () => {
    const s = await startServer();
    try {
      const c = await connect(s.port);
      const head = readUntil(c, '\r\n\r\n');
      c.write('GET /stream HTTP/1.1\r\nHost: x\r\n\r\n');
      const h = await s.next();
      await head;
      assert.equal(h.released, true);
      const sock = h.res.socket as Socket & { parser?: unknown };
      assert.equal(sock.parser, null);
      const got = readUntil(c, 'hello');
      sock.write('5\r\nhello\r\n');
      await got;
      c.destroy();
    } finally {
      s.server.closeAllConnections();
      s.server.close();
    }
  });

  test('release: the response still emits close when the client goes away', async () => {
    const s = await startServer();
    try {
      const c = await connect(s.port);
      c.write('GET /stream HTTP/1.1\r\nHost: x\r\n\r\n');
      const h = await s.next();
      assert.equal(h.released, true);
      const closed = within(once(h.res, 'close'), 'res close');
      c.destroy();
      await closed;
    } finally {
      s.server.close();
    }
  });

  test('release: a client FIN ends the connection (as node:http without half-open)', async () => {
    const s = await startServer();
    try {
      const c = await connect(s.port);
      c.write('GET /stream HTTP/1.1\r\nHost: x\r\n\r\n');
      const h = await s.next();
      assert.equal(h.released, true);
      const ended = within(once(c, 'end'), 'server FIN');
      const closed = within(once(h.res, 'close'), 'res close');
      c.resume();
      c.end();
      await ended;
      await closed;
    } finally {
      s.server.close();
    }
  });

  test('release: later client input is discarded, not parsed as a new request', async () => {
    const s = await startServer();
    try {
      const c = await connect(s.port);
      c.write('GET /stream HTTP/1.1\r\nHost: x\r\n\r\n');
      const h = await s.next();
      assert.equal(h.released, true);
      c.write('GET /again HTTP/1.1\r\nHost: x\r\n\r\n' + 'x'.repeat(100_000));
      // A round trip on the same socket proves the input was read past.
      const got = readUntil(c, 'pong');
      (h.res.socket as Socket).write('4\r\npong\r\n');
      await got;
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(s.requests(), 1);
      assert.equal((h.res.socket as Socket).destroyed, false);
      c.destroy();
    } finally {
      s.server.closeAllConnections();
      s.server.close();
    }
  });

  test('release: refused while the request body is still arriving', async () => {
    const s = await startServer();
    try {
      const c = await connect(s.port);
      c.write('POST /stream HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc');
      const h = await s.next();
      assert.equal(h.released, false);
      assert.notEqual((h.res.socket as Socket & { parser?: unknown }).parser, null);
      c.destroy();
    } finally {
      s.server.closeAllConnections();
      s.server.close();
    }
  });

  test('release: refused when a pipelined request follows on the connection', async () => {
    const s = await startServer();
    try {
      const c = await connect(s.port);
      c.write('GET /one HTTP/1.1\r\nHost: x\r\n\r\nGET /two HTTP/1.1\r\nHost: x\r\n\r\n');
      const h = await s.next();
      assert.equal(h.released, false);
      c.destroy();
    } finally {
      s.server.closeAllConnections();
      s.server.close();
    }
  });

  test('release: refused once the response was finished through node:http', async () => {
    let released: boolean | undefined;
    const server = http.createServer((req, res) => {
      res.end('done');
      setImmediate(() => { released = releaseHttpParser(req, res); });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const port = (server.address() as AddressInfo).port;
      const r = await within(fetch(`http://127.0.0.1:${port}/`).then((x) => x.text()), 'response');
      assert.equal(r, 'done');
      for (let i = 0; i < 100 && released === undefined; i++) await new Promise((res) => setTimeout(res, 10));
      assert.equal(released, false);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
});
