/**
 * gripd extensions for WebSockets (docs/websockets.md, "gripd extensions"):
 * - a publish item with `connection-id` instead of `channel` reaches, or closes, just that
 *   connection (HTTP publish API, command socket `publish`);
 * - the command socket methods `gripd-send` and `gripd-close`;
 * each with workers=1 and workers=2 (clients on both workers, one targeted on each).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as zmq from 'zeromq';
import { startGripd, type GripdInstance, workerPids } from '../helpers/gripd.js';
import { holdsSocket, tcpSocketInodes } from '../helpers/proc-sockets.js';
import { decodeCommandResponse, encodeCommandRequest } from '../../src/zmq/command-packet.js';
import type { TnetEncodable } from '../../src/zmq/tnetstring.js';
import { connect, ev, publish, startWohBackend, waitFor, type Client, type WohBackend } from './ws-helpers.js';

/** Connections per run; with workers=2 round-robin hands half of them to each worker. */
const CLIENTS = 6;

async function publishRaw(publishUrl: string, body: unknown): Promise<{ status: number; text: string }> {
  const r = await fetch(`${publishUrl}/publish/`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  return { status: r.status, text: await r.text() };
}

/** One command over a fresh REQ socket; resolves with the decoded reply. */
async function command(port: number, method: string, args?: Record<string, TnetEncodable>): Promise<ReturnType<typeof decodeCommandResponse>> {
  const req = new zmq.Request({ linger: 0, receiveTimeout: 10_000 });
  req.connect(`tcp://127.0.0.1:${port}`);
  try {
    await req.send(encodeCommandRequest({ id: 'x', method, ...(args !== undefined ? { args } : {}) }));
    const [reply] = await req.receive();
    return decodeCommandResponse(reply!);
  } finally {
    req.close();
  }
}

/**
 * Which worker holds a client connection (Linux): finds gripd's end of the TCP connection
 * in /proc/net/tcp (local port `serverPort`, remote port the client's) and the worker
 * process that has that socket open. Undefined when not found.
 */
function workerOfClient(c: Client, serverPort: number, pids: Map<number, number>): number | undefined {
  const clientPort = (c.ws as unknown as { _socket: { localPort: number } })._socket.localPort;
  const inodes = tcpSocketInodes((e) => e.localPort === serverPort && e.remotePort === clientPort);
  if (inodes.size === 0) return undefined;
  for (const [index, pid] of pids) if (holdsSocket(pid, inodes)) return index;
  return undefined;
}

for (const workers of [1, 2]) {
  describe(`ws extensions: one connection by Connection-Id (workers=${workers})`, () => {
    let gripd: GripdInstance;
    let backend: WohBackend;
    let clients: Array<{ path: string; client: Client; cid: string }> = [];

    before(async () => {
      backend = await startWohBackend((r) => (r.body.startsWith('OPEN') ? { body: ev('OPEN') } : { body: '' }));
      gripd = await startGripd({ routes: [`* 127.0.0.1:${backend.port},over_http`], sections: { proxy: [`workers=${workers}`] } });
      if (workers > 1) await waitFor(() => new RegExp(`gripd ready: .*${workers} workers`).test(gripd.output()), 'workers ready', 20_000);
    });
    after(async () => {
      for (const c of clients) c.client.ws.terminate();
      await gripd.stop();
      await backend.close();
    });

    /** Opens CLIENTS connections on /c0../cN and learns their ids from the backend's OPEN requests. */
    async function openClients(): Promise<void> {
      for (const c of clients) c.client.ws.terminate();
      clients = [];
      const base = gripd.url.replace(/^http/, 'ws');
      for (let i = 0; i < CLIENTS; i++) {
        const path = `/c${i}`;
        const client = connect(`${base}${path}`);
        await client.opened;
        const open = backend.requests.filter((r) => r.url === path && r.body.startsWith('OPEN')).at(-1);
        assert.ok(open !== undefined, `OPEN for ${path}`);
        clients.push({ path, client, cid: String(open.headers['connection-id']) });
      }
    }

    /** One client per worker (with workers=1, the first two clients). */
    async function onePerWorker(): Promise<Array<{ path: string; client: Client; cid: string }>> {
      if (workers === 1) return clients.slice(0, 2);
      const pids = workerPids(gripd.output());
      const per = new Map<string, number | undefined>(clients.map((c) => [c.path, workerOfClient(c.client, gripd.httpPort, pids)]));
      const picked: Array<{ path: string; client: Client; cid: string }> = [];
      for (let w = 1; w <= workers; w++) {
        const c = clients.find((x) => per.get(x.path) === w);
        assert.ok(c !== undefined, `a client on worker ${w}: ${JSON.stringify([...per])}`);
        picked.push(c);
      }
      return picked;
    }

    test('http publish: an item with connection-id reaches only that connection, in batch order', async () => {
      await openClients();
      const targets = await onePerWorker();
      await publish(gripd.publishUrl, targets.map((t) => ({ 'connection-id': t.cid, formats: { 'ws-message': { content: `only-${t.path}` } } })));
      // A marker to every connection, after the targeted items: once all have it, nothing else is coming.
      await publish(gripd.publishUrl, clients.map((c) => ({ 'connection-id': c.cid, 'ws-message': { content: 'end' } })));
      await waitFor(() => clients.every((c) => c.client.texts().includes('end')), 'marker at every client');
      for (const c of clients) {
        const expected = targets.includes(c) ? [`only-${c.path}`, 'end'] : ['end'];
        assert.deepEqual(c.client.texts(), expected, c.path);
      }
    });

    test('http publish: binary content and a mixed batch (channel items keep working)', async () => {
      const [t] = clients;
      await publish(gripd.publishUrl, [
        { channel: 'nobody-listens', formats: { 'ws-message': { content: 'x' } } },
        { 'connection-id': t!.cid, formats: { 'ws-message': { 'content-bin': Buffer.from([1, 2, 3]).toString('base64') } } },
      ]);
      await waitFor(() => t!.client.messages.some((m) => m.binary), 'binary message');
      assert.deepEqual([...t!.client.messages.find((m) => m.binary)!.data], [1, 2, 3]);
    });

    test('command socket: gripd-send answers success on each worker, item-not-found for an unknown id', async () => {
      const targets = await onePerWorker();
      for (const t of targets) {
        const r = await command(gripd.commandPort, 'gripd-send', { cid: t.cid, 'ws-message': { content: `cmd-${t.path}` } });
        assert.deepEqual(r, { id: Buffer.from('x'), success: true, value: null }, t.path);
        await waitFor(() => t.client.texts().includes(`cmd-${t.path}`), `command message at ${t.path}`);
      }
      for (const c of clients) if (!targets.includes(c)) assert.ok(!c.client.texts().some((s) => s.startsWith('cmd-')), c.path);
      const missing = await command(gripd.commandPort, 'gripd-send', { cid: 'no-such-connection', 'ws-message': { content: 'x' } });
      assert.equal(missing.success, false);
      assert.equal(missing.condition, 'item-not-found');
    });

    test('command socket: publish with connection-id items reaches that connection', async () => {
      const [, t] = clients;
      const r = await command(gripd.commandPort, 'publish', { items: [{ 'connection-id': t!.cid, formats: { 'ws-message': { content: 'via-command-publish' } } }] });
      assert.equal(r.success, true);
      await waitFor(() => t!.client.texts().includes('via-command-publish'), 'command publish message');
    });

    test('command socket: gripd-send and gripd-close refuse bad args with bad-request naming the field', async () => {
      const cid = clients[0]!.cid;
      const cases: Array<[string, Record<string, TnetEncodable>, RegExp]> = [
        ['gripd-send', { 'ws-message': { content: 'x' } }, /'cid'/],
        ['gripd-send', { cid }, /'ws-message'/],
        ['gripd-send', { cid: 5, 'ws-message': { content: 'x' } }, /'cid' with wrong type/],
        ['gripd-send', { cid, 'ws-message': { type: 'bogus', content: 'x' } }, /'type' with unknown value/],
        ['gripd-send', { cid, 'ws-message': { action: 'close', code: 1005 } }, /'code' with invalid value/],
        ['gripd-close', { cid, code: 1006 }, /'code' with invalid value/],
        ['gripd-close', { cid, code: 'x' }, /'code' with wrong type/],
        ['gripd-close', { cid, reason: 'no code' }, /'reason' without 'code'/],
        ['gripd-close', { cid, code: 4000, reason: 'r'.repeat(124) }, /'reason' with invalid value/],
        ['gripd-close', { cid: '' }, /'cid' with invalid value/],
      ];
      for (const [method, args, re] of cases) {
        const r = await command(gripd.commandPort, method, args);
        assert.equal(r.success, false, `${method} ${JSON.stringify(args)}`);
        assert.equal(r.condition, 'bad-request');
        assert.match(String(r.value), re, `${method} ${JSON.stringify(args)}`);
      }
      // Nothing was sent or closed by the refused commands.
      assert.equal(clients[0]!.client.ws.readyState, 1);
    });

    test('http publish: connection-id items are validated strictly (400 naming the field)', async () => {
      const cid = clients[0]!.cid;
      const cases: Array<[unknown, RegExp]> = [
        [{ channel: 'a', 'connection-id': cid, formats: { 'ws-message': { content: 'x' } } }, /both 'channel' and 'connection-id'/],
        [{ 'connection-id': cid, formats: { 'http-stream': { content: 'x' } } }, /accepts only the 'ws-message' format/],
        [{ 'connection-id': cid, formats: { 'ws-message': { content: 'x' }, 'http-response': { body: 'x' } } }, /accepts only the 'ws-message' format/],
        [{ 'connection-id': cid, formats: {} }, /does not contain 'ws-message'/],
        [{ 'connection-id': cid, 'prev-id': 'a', formats: { 'ws-message': { content: 'x' } } }, /'prev-id' with 'connection-id'/],
        [{ 'connection-id': '', formats: { 'ws-message': { content: 'x' } } }, /'connection-id' with invalid value \(empty\)/],
        [{ 'connection-id': 7, formats: { 'ws-message': { content: 'x' } } }, /'connection-id' with wrong type/],
        [{ 'connection-id': 'a\nb', formats: { 'ws-message': { content: 'x' } } }, /control character/],
        [{ 'connection-id': 'x'.repeat(257), formats: { 'ws-message': { content: 'x' } } }, /longer than 256 bytes/],
        [{ 'connection-id': cid, formats: { 'ws-message': { action: 'hint' } } }, /does nothing for one connection/],
        [{ 'connection-id': cid, formats: { 'ws-message': { action: 'close', code: 1005 } } }, /'code' with invalid value/],
      ];
      for (const [item, re] of cases) {
        const r = await publishRaw(gripd.publishUrl, { items: [{ 'connection-id': cid, formats: { 'ws-message': { content: 'never' } } }, item] });
        assert.equal(r.status, 400, JSON.stringify(item));
        assert.match(r.text, /^Invalid format: /);
        assert.match(r.text, re, JSON.stringify(item));
      }
      // A rejected batch publishes nothing, not even its valid items.
      await publish(gripd.publishUrl, [{ 'connection-id': cid, formats: { 'ws-message': { content: 'after-400' } } }]);
      await waitFor(() => clients[0]!.client.texts().includes('after-400'), 'message after the refused batches');
      assert.ok(!clients[0]!.client.texts().includes('never'));
    });

    test('close by id: http publish action close and gripd-close close just that connection with the code', async () => {
      await openClients();
      const [a, b] = await onePerWorker();
      await publish(gripd.publishUrl, [{ 'connection-id': a!.cid, formats: { 'ws-message': { action: 'close', code: 4001, reason: 'bye-http' } } }]);
      assert.deepEqual(await a!.client.closed, { code: 4001, reason: 'bye-http' });
      const r = await command(gripd.commandPort, 'gripd-close', { cid: b!.cid, code: 4002, reason: 'bye-cmd' });
      assert.deepEqual(r, { id: Buffer.from('x'), success: true, value: null });
      assert.deepEqual(await b!.client.closed, { code: 4002, reason: 'bye-cmd' });
      // The backend hears that each connection closed.
      await waitFor(() => [a!, b!].every((t) => backend.bodies(t.cid).some((body) => body.startsWith('CLOSE'))), 'CLOSE events at the backend');
      // Once gripd has let the connection go (conncheck no longer lists it), the id is unknown.
      const deadline = Date.now() + 10_000;
      for (;;) {
        const alive = await command(gripd.commandPort, 'conncheck', { ids: [a!.cid, b!.cid] });
        if (Array.isArray(alive.value) && alive.value.length === 0) break;
        if (Date.now() > deadline) throw new Error(`connections still alive: ${String(alive.value)}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      const again = await command(gripd.commandPort, 'gripd-close', { cid: b!.cid });
      assert.equal(again.condition, 'item-not-found');
      // The others stay open and served.
      const rest = clients.filter((c) => c !== a && c !== b);
      await publish(gripd.publishUrl, rest.map((c) => ({ 'connection-id': c.cid, formats: { 'ws-message': { content: 'still-here' } } })));
      await waitFor(() => rest.every((c) => c.client.texts().includes('still-here')), 'the others still served');
    });
  });
}

describe('ws extensions: reliable delivery (prev-id gaps ask the backend to resend with Grip-Last)', () => {
  let gripd: GripdInstance;
  let backend: WohBackend;
  let wsUrl: string;
  const ctrl = (o: unknown): string => ev('TEXT', 'c:' + JSON.stringify(o));

  before(async () => {
    backend = await startWohBackend((r) => {
      if (r.body.startsWith('OPEN')) {
        const path = r.url.split('?')[0];
        const sub = path === '/rel'
          ? ctrl({ type: 'subscribe', channel: 'chan', 'prev-id': '0' })
          : path === '/rel2'
            ? ctrl({ type: 'subscribe', channel: 'chan2', 'prev-id': '0' })
            : path === '/pfx/rel'
              ? ctrl({ type: 'subscribe', channel: 'chan3', 'prev-id': '0' })
              : ctrl({ type: 'subscribe', channel: 'plain' });
        return { headers: { 'Sec-WebSocket-Extensions': 'grip' }, body: ev('OPEN') + sub };
      }
      // A backend that keeps history: on Grip-Last it resends what followed the given id.
      if (r.headers['grip-last'] !== undefined) return { body: ev('TEXT', 'm:m3') + ev('TEXT', 'm:m4') };
      return { body: '' };
    });
    // A short message_wait so the sequencer gives up on the missing item quickly.
    gripd = await startGripd({
      routes: [`*,path_beg=/pfx,prefix=p- 127.0.0.1:${backend.port},over_http`, `* 127.0.0.1:${backend.port},over_http`],
      sections: { handler: ['message_wait=200'] },
    });
    wsUrl = gripd.url.replace(/^http/, 'ws');
  });
  after(async () => {
    await gripd.stop();
    await backend.close();
  });

  const item = (channel: string, id: string, prevId: string, noSeq: boolean): unknown => ({
    channel, id, 'prev-id': prevId, ...(noSeq ? { 'no-seq': true } : {}), formats: { 'ws-message': { content: `m${id}` } },
  });
  const gripLasts = (): string[] => backend.requests.flatMap((r) => (r.headers['grip-last'] !== undefined ? [String(r.headers['grip-last'])] : []));

  test('reliable: ids 1, 2 then 4 with prev-id 3 -> a request with Grip-Last: chan; last-id=2; the resent items follow in order', async () => {
    const c = connect(`${wsUrl}/rel`);
    await c.opened;
    await waitFor(() => backend.requests.some((r) => r.url === '/rel'), 'OPEN');
    const cid = String(backend.requests.find((r) => r.url === '/rel')!.headers['connection-id']);
    await publish(gripd.publishUrl, [item('chan', '1', '0', false), item('chan', '2', '1', false)]);
    await waitFor(() => c.texts().length === 2, 'items 1 and 2');
    // The sequencer holds item 4 for message_wait, then lets it go: the connection sees the gap.
    await publish(gripd.publishUrl, [item('chan', '4', '3', false)]);
    await waitFor(() => gripLasts().length === 1, 'a request carrying Grip-Last');
    const req = backend.requests.find((r) => r.headers['grip-last'] !== undefined)!;
    assert.equal(req.headers['grip-last'], 'chan; last-id=2');
    assert.equal(req.headers['connection-id'], cid);
    assert.equal(req.body, '', 'an empty WebSocket-over-HTTP request');
    await waitFor(() => c.texts().length === 4, 'the resent items');
    // The connection is up to date through 4: item 5 goes straight out, no new request.
    await publish(gripd.publishUrl, [item('chan', '5', '4', false)]);
    await waitFor(() => c.texts().length === 5, 'item 5');
    assert.deepEqual(c.texts(), ['m1', 'm2', 'm3', 'm4', 'm5']);
    assert.equal(gripLasts().length, 1);
    c.ws.close();
    await c.closed;
  });

  test('reliable: with no-seq the gap is seen at once', async () => {
    const before = gripLasts().length;
    const c = connect(`${wsUrl}/rel2`);
    await c.opened;
    await waitFor(() => backend.requests.some((r) => r.url === '/rel2'), 'OPEN');
    await publish(gripd.publishUrl, [item('chan2', '1', '0', true), item('chan2', '2', '1', true), item('chan2', '4', '3', true)]);
    await waitFor(() => gripLasts().length === before + 1, 'a request carrying Grip-Last');
    assert.equal(gripLasts().at(-1), 'chan2; last-id=2');
    await waitFor(() => c.texts().length === 4, 'the resent items');
    assert.deepEqual(c.texts(), ['m1', 'm2', 'm3', 'm4']);
    c.ws.close();
    await c.closed;
  });

  test('reliable: Grip-Last names the channel as the backend subscribed it (route prefix= left out)', async () => {
    const before = gripLasts().length;
    const c = connect(`${wsUrl}/pfx/rel`);
    await c.opened;
    await waitFor(() => backend.requests.some((r) => r.url === '/pfx/rel'), 'OPEN');
    await publish(gripd.publishUrl, [item('p-chan3', '1', '0', true), item('p-chan3', '2', '1', true), item('p-chan3', '4', '3', true)]);
    await waitFor(() => gripLasts().length === before + 1, 'a request carrying Grip-Last');
    assert.equal(gripLasts().at(-1), 'chan3; last-id=2');
    await waitFor(() => c.texts().length === 4, 'the resent items');
    c.ws.close();
    await c.closed;
  });

  test('reliable: a subscription without prev-id keeps Pushpin behaviour (gap items delivered, no request)', async () => {
    const before = gripLasts().length;
    const c = connect(`${wsUrl}/plain`);
    await c.opened;
    await waitFor(() => backend.requests.some((r) => r.url === '/plain'), 'OPEN');
    await publish(gripd.publishUrl, [item('plain', '1', '0', true), item('plain', '2', '1', true), item('plain', '4', '3', true)]);
    await waitFor(() => c.texts().length === 3, 'three items');
    assert.deepEqual(c.texts(), ['m1', 'm2', 'm4']);
    assert.equal(gripLasts().length, before);
    c.ws.close();
    await c.closed;
  });
});
