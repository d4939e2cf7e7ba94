/**
 * Scale-out: several gripd instances, each with its SUB socket connected
 * (push_in_sub_connect=true) to one publisher's XPUB. Every streaming client on every
 * instance must receive every item exactly once.
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import * as zmq from 'zeromq';
import { startGripd, type GripdInstance } from '../helpers/gripd.js';
import { openStream, type StreamClient } from '../helpers/stream-client.js';
import { freePort, waitForPort } from '../helpers/ports.js';
import { encodeTnetstring } from '../../src/zmq/tnetstring.js';

const CHANNEL = 'fan';
const ITEMS = 25;
const CLIENTS_PER_INSTANCE = 2;

/** Publisher side: an XPUB that reports subscription messages (verbose: one per subscriber). */
class Publisher {
  readonly sock = new zmq.XPublisher({ linger: 0, sendHighWaterMark: 100_000 });
  subscriptions = 0;
  private loop: Promise<void> | undefined;

  async bind(specs: string[]): Promise<void> {
    this.sock.verbosity = 'allSubs';
    for (const s of specs) await this.sock.bind(s);
    this.loop = (async () => {
      try {
        for await (const [m] of this.sock) {
          // 0x01 + topic = subscribe, 0x00 + topic = unsubscribe.
          if (m && m[0] === 1 && m.subarray(1).toString() === CHANNEL) this.subscriptions++;
        }
      } catch {
        // closed
      }
    })();
  }

  async waitSubscriptions(n: number): Promise<void> {
    const end = Date.now() + 20_000;
    while (this.subscriptions < n) {
      if (Date.now() > end) throw new Error(`only ${this.subscriptions} of ${n} instances subscribed`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async publish(content: string, id: string): Promise<void> {
    const item = encodeTnetstring({ channel: CHANNEL, id, formats: { 'http-stream': { content } } });
    await this.sock.send([CHANNEL, Buffer.concat([Buffer.from('T'), item])]);
  }

  async close(): Promise<void> {
    this.sock.close();
    await this.loop;
  }
}

async function waitAll(clients: StreamClient[], marker: string): Promise<void> {
  const end = Date.now() + 30_000;
  while (!clients.every((c) => c.text().includes(marker))) {
    if (Date.now() > end) throw new Error(`not every client got ${marker}: ${clients.map((c) => JSON.stringify(c.text().slice(-80))).join(' | ')}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function assertExactlyOnce(clients: StreamClient[]): void {
  for (const [ci, c] of clients.entries()) {
    const lines = c.text().split('\n').filter((l) => l.startsWith('item '));
    assert.equal(lines.length, ITEMS, `client ${ci} got ${lines.length} items`);
    for (let i = 0; i < ITEMS; i++) assert.equal(lines[i], `item ${i}`, `client ${ci} line ${i}`);
  }
}

async function runScaleOut(instances: GripdInstance[], pub: Publisher): Promise<void> {
  const clients: StreamClient[] = [];
  try {
    for (const g of instances) {
      for (let k = 0; k < CLIENTS_PER_INSTANCE; k++) clients.push(await openStream(`${g.url}/stream?channel=${CHANNEL}`));
    }
    // Each instance subscribes once, however many local clients it has.
    await pub.waitSubscriptions(instances.length);
    for (let i = 0; i < ITEMS; i++) await pub.publish(`item ${i}\n`, `i${i}`);
    await pub.publish('end\n', 'end');
    await waitAll(clients, 'end\n');
    assertExactlyOnce(clients);
    assert.equal(pub.subscriptions, instances.length, 'one subscription per instance');
  } finally {
    for (const c of clients) c.close();
  }
}

describe('scale-out', () => {
  const started: GripdInstance[] = [];
  const pubs: Publisher[] = [];
  after(async () => {
    await Promise.allSettled(started.map((g) => g.stop()));
    for (const p of pubs) await p.close();
  });

  test('scale-out: three instances with push_in_sub_connect=true to one XPUB publisher; every client gets every item exactly once', async () => {
    const port = await freePort();
    const pub = new Publisher();
    pubs.push(pub);
    await pub.bind([`tcp://127.0.0.1:${port}`]);
    const instances: GripdInstance[] = [];
    for (let i = 0; i < 3; i++) {
      const g = await startGripd({
        routes: ['* test'],
        sections: { handler: ['push_in_sub_connect=true', `push_in_sub_specs=tcp://127.0.0.1:${port}`] },
      });
      started.push(g);
      instances.push(g);
    }
    await runScaleOut(instances, pub);
  });

  test('scale-out: --id 1..3 on one host; each instance applies its port offset (id*10) to the publisher spec', async () => {
    // --id N moves every tcp:// spec by N*10, the connected SUB spec included, so the
    // publisher binds base+10, base+20 and base+30 on one XPUB socket.
    const base = await freePort();
    const pub = new Publisher();
    pubs.push(pub);
    await pub.bind([1, 2, 3].map((n) => `tcp://127.0.0.1:${base + n * 10}`));
    const instances: GripdInstance[] = [];
    for (const id of [1, 2, 3]) {
      const g = await startGripd({
        routes: ['* test'],
        args: ['--id', String(id)],
        waitPublish: false,
        sections: { handler: ['push_in_sub_connect=true', `push_in_sub_specs=tcp://127.0.0.1:${base}`] },
      });
      started.push(g);
      instances.push(g);
      // The HTTP publish port moved by the offset too.
      await waitForPort(g.publishPort + id * 10);
    }
    await runScaleOut(instances, pub);
  });
});
