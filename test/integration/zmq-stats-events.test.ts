/**
 * The stats PUB socket fed by a running gripd (workers=1 and workers=2): `activity` and
 * `counts` for requests, `conn` messages for connections (and `unavailable` when they
 * end), `message` per publish, and reports with `http-response-sent` and `blocks-*`.
 * Read with a real zeromq SUB in both framings (tnetstring and JSON).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import * as zmq from 'zeromq';
import { startGripd, type GripdInstance } from '../helpers/gripd.js';
import { freePort } from '../helpers/ports.js';
import { splitStatsMessage } from '../../src/zmq/stats.js';
import { decodeTnetstring } from '../../src/zmq/tnetstring.js';

const instances: GripdInstance[] = [];
const socks: zmq.Subscriber[] = [];
const reqs: http.ClientRequest[] = [];
after(async () => {
  for (const r of reqs) r.destroy();
  for (const s of socks) s.close();
  for (const g of instances) if (g.proc.exitCode === null) await g.stop('SIGKILL');
});

type Msg = { type: string; d: Record<string, unknown> };

/** Text of a decoded field (tnetstring bytes or JSON string). */
const str = (v: unknown): string => (Buffer.isBuffer(v) ? v.toString() : String(v));
const num = (v: unknown): number => (typeof v === 'number' ? v : Number(str(v)));

/**
 * Subscribes to gripd's stats socket and, since a PUB drops what it sends before the
 * subscription arrives, makes requests until their activity shows up. Returns the
 * socket and the collected messages (still filling).
 */
async function subscribeStats(statsPort: number, url: string): Promise<{ sub: zmq.Subscriber; got: Msg[] }> {
  const sub = new zmq.Subscriber({ linger: 0 });
  socks.push(sub);
  sub.connect(`tcp://127.0.0.1:${statsPort}`);
  sub.subscribe('');
  const got = collect(sub);
  for (let i = 0; i < 200 && !got.some((m) => m.type === 'activity'); i++) {
    await (await fetch(`${url}/nothing`)).arrayBuffer();
    await new Promise((r) => setTimeout(r, 50));
  }
  return { sub, got };
}

function collect(sub: zmq.Subscriber): Msg[] {
  const got: Msg[] = [];
  void (async () => {
    try {
      for await (const [frame] of sub) {
        const m = frame ? splitStatsMessage(frame) : undefined;
        if (m === undefined) continue;
        const d = m.format === 'json'
          ? (JSON.parse(m.payload.toString()) as Record<string, unknown>)
          : (decodeTnetstring(m.payload) as Record<string, unknown>);
        got.push({ type: m.type, d });
      }
    } catch {
      // closed
    }
  })();
  return got;
}

async function waitFor<T>(what: string, f: () => T | undefined, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function openHold(url: string): Promise<http.ClientRequest> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false }, (res) => {
      res.resume();
      res.on('error', () => undefined);
      if (res.statusCode === 200) resolve(req);
      else reject(new Error(`status ${res.statusCode}`));
    });
    req.on('error', () => undefined);
    reqs.push(req);
  });
}

for (const workers of [1, 2]) {
  for (const format of ['tnetstring', 'json'] as const) {
    test(`stats events (workers=${workers}, ${format}): activity, counts, conn, message and report fields`, async () => {
      const statsPort = await freePort();
      const g = await startGripd({
        routes: ['*,id=r1 test'],
        sections: {
          global: ['stats_connection_ttl=4', 'stats_connection_send=true'],
          proxy: [`workers=${workers}`],
          handler: [`stats_spec=tcp://127.0.0.1:${statsPort}`, 'stats_report_interval=1', `stats_format=${format}`, 'message_block_size=2'],
        },
      });
      instances.push(g);
      const { sub, got } = await subscribeStats(statsPort, g.url);
      await waitFor('first activity', () => got.find((m) => m.type === 'activity'));
      got.length = 0;

      const stream = await openHold(`${g.url}/stream?channel=s1`);
      // A long-poll's answer only comes with the publish: don't wait for it here.
      const poll = fetch(`${g.url}/response?channel=p1`).then(async (r) => ({ status: r.status, body: await r.text() }));
      const conn = await waitFor('conn', () => got.find((m) => m.type === 'conn' && m.d['unavailable'] === undefined));
      assert.equal(str(conn.d['type']), 'http');
      assert.equal(str(conn.d['route']), 'r1');
      assert.equal(num(conn.d['ttl']), 4);
      assert.equal(str(conn.d['peer-address']), '127.0.0.1');
      assert.match(str(conn.d['id']), /^gripd-proxy_[0-9]+:[0-9]+$/);
      assert.match(str(conn.d['from']), /^gripd-handler_[0-9]+$/);
      const act = await waitFor('activity', () => got.find((m) => m.type === 'activity'));
      assert.equal(str(act.d['route']), 'r1');
      assert.ok(num(act.d['count']) >= 1);
      const counts = await waitFor('counts', () => got.find((m) => m.type === 'counts'));
      assert.ok(num(counts.d['requests-received']) >= 1);
      const subOf = (ch: string): Msg | undefined => got.find((m) => m.type === 'sub' && str(m.d['channel']) === ch && m.d['unavailable'] === undefined);
      assert.equal(str((await waitFor('stream subscribed', () => subOf('s1'))).d['mode']), 'stream');
      assert.equal(str((await waitFor('long-poll subscribed', () => subOf('p1'))).d['mode']), 'response');

      const res = await fetch(`${g.publishUrl}/publish`, {
        method: 'POST',
        body: JSON.stringify({ items: [
          { channel: 's1', id: 'i1', formats: { 'http-stream': { content: 'hello\n' } } },
          { channel: 'p1', formats: { 'http-response': { body: 'abc' } } },
        ] }),
      });
      assert.equal(res.status, 200);
      assert.equal((await poll).body, 'abc');
      const ms = await waitFor('message stream', () => got.find((m) => m.type === 'message' && str(m.d['transport']) === 'http-stream'));
      assert.equal(str(ms.d['channel']), 's1');
      assert.equal(str(ms.d['item-id']), 'i1');
      assert.equal(num(ms.d['count']), 1);
      assert.equal(num(ms.d['blocks']), 3);
      const mr = await waitFor('message response', () => got.find((m) => m.type === 'message' && str(m.d['transport']) === 'http-response'));
      assert.equal(num(mr.d['blocks']), 2);
      assert.equal(mr.d['item-id'], undefined);
      const rep = await waitFor('report with the publish', () => got.find((m) => m.type === 'report' && num(m.d['received'] ?? 0) > 0));
      assert.equal(num(rep.d['received']), 2);
      assert.equal(num(rep.d['blocks-received']), 5);
      // The answered long-poll and the stream's delivery may fall into different reports: sum them.
      const sums = await waitFor('sent over reports', () => {
        let sent = 0;
        let hrs = 0;
        let bs = 0;
        for (const m of got) {
          if (m.type !== 'report') continue;
          sent += num(m.d['sent'] ?? 0);
          hrs += num(m.d['http-response-sent'] ?? 0);
          bs += num(m.d['blocks-sent'] ?? 0);
        }
        return sent >= 2 ? { sent, hrs, bs } : undefined;
      });
      assert.deepEqual(sums, { sent: 2, hrs: 1, bs: 5 });
      assert.ok(got.some((m) => m.type === 'report' && num(m.d['connections'] ?? 0) >= 1 && num(m.d['minutes'] ?? 0) >= 1));

      // The long-poll got its answer: its connection is gone; the stream's is refreshed within 3/4 of the TTL.
      await waitFor('unavailable', () => got.find((m) => m.type === 'conn' && m.d['unavailable'] === true));
      const streamConnId = str(got.find((m) => m.type === 'conn' && m.d['unavailable'] === undefined)!.d['id']);
      const firstAt = got.length;
      await waitFor('conn refresh', () => got.slice(firstAt).find((m) => m.type === 'conn' && m.d['unavailable'] === undefined && str(m.d['id']) === streamConnId));
      stream.destroy();
      await waitFor('stream conn gone', () => got.find((m) => m.type === 'conn' && m.d['unavailable'] === true && str(m.d['id']) === streamConnId));
      sub.close();
      await g.stop();
    });
  }
}

test('stats events: stats_connection_send=false sends no conn messages but reports still count connections', async () => {
  const statsPort = await freePort();
  const g = await startGripd({
    routes: ['* test'],
    sections: {
      global: ['stats_connection_send=false'],
      handler: [`stats_spec=tcp://127.0.0.1:${statsPort}`, 'stats_report_interval=1'],
    },
  });
  instances.push(g);
  const { sub, got } = await subscribeStats(statsPort, g.url);
  const act = await waitFor('activity', () => got.find((m) => m.type === 'activity'));
  assert.equal(act.d['route'], undefined, 'no route field for a route without an id');
  await waitFor('report counting connections', () => got.find((m) => m.type === 'report' && num(m.d['connections'] ?? 0) >= 1));
  assert.equal(got.filter((m) => m.type === 'conn').length, 0);
  sub.close();
  await g.stop();
});
