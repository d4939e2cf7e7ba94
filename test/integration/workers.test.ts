/**
 * Multi-worker gripd ([proxy] workers=2) started through its CLI: clients spread over both
 * workers; every publish (HTTP API, ZeroMQ PULL, SUB, command socket) reaches every
 * client exactly once; the SUB socket subscribes once for the instance; conncheck and
 * recover answer through the command socket; a killed worker is replaced while the
 * other's clients stay connected; SIGTERM stops everything with exit 0.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { waitFor } from '../helpers/wait.js';
import http from 'node:http';
import * as zmq from 'zeromq';
import { startGripd, type GripdInstance, workerPids } from '../helpers/gripd.js';
import { freePort } from '../helpers/ports.js';
import { encodeTnetstring } from '../../src/zmq/tnetstring.js';
import { decodeCommandResponse, encodeCommandRequest } from '../../src/zmq/command-packet.js';

const CHANNEL = 'wk';
/** Enough connections that round-robin hands some to each worker. */
const CLIENTS = 24;

interface StreamClient {
  text(): string;
  closed(): boolean;
  close(): void;
}

function openStream(url: string): Promise<StreamClient> {
  return new Promise((resolve, reject) => {
    let body = '';
    let closed = false;
    const req = http.get(url, { agent: false }, (res) => {
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('error', () => undefined);
      res.on('close', () => (closed = true));
      if (res.statusCode !== 200) reject(new Error(`status ${res.statusCode}`));
      else resolve({ text: () => body, closed: () => closed, close: () => req.destroy() });
    });
    req.on('error', (err) => {
      closed = true;
      reject(err);
    });
  });
}

async function within<T>(p: Promise<T>, what: string, ms = 10_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, rej) => {
    timer = setTimeout(() => rej(new Error(`timed out waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([p, t]);
  } finally {
    clearTimeout(timer);
  }
}

const count = (text: string, needle: string): number => text.split(needle).length - 1;

async function httpPublish(g: GripdInstance, content: string): Promise<void> {
  const body = JSON.stringify({ items: [{ channel: CHANNEL, formats: { 'http-stream': { content } } }] });
  const res = await fetch(`${g.publishUrl}/publish`, { method: 'POST', body, headers: { 'Content-Type': 'application/json' } });
  assert.equal(res.status, 200, await res.text());
}

/** How many client requests each worker logged (access lines carry worker=N). */
function requestsPerWorker(output: string, since = 0): Map<number, number> {
  const per = new Map<number, number>();
  for (const line of output.slice(since).split('\n')) {
    const m = /GET \/stream\?channel=wk .*worker=(\d+)/.exec(line);
    if (m) per.set(Number(m[1]), (per.get(Number(m[1])) ?? 0) + 1);
  }
  return per;
}

describe('workers=2', () => {
  let g: GripdInstance;
  let clients: StreamClient[] = [];
  /** Clients on other channels than CHANNEL (the later tests expect every client on CHANNEL). */
  const others: StreamClient[] = [];
  const push = new zmq.Push({ linger: 0 });
  const xpub = new zmq.XPublisher({ linger: 0 });
  const subEvents: string[] = [];
  let xpubLoop: Promise<void> | undefined;
  let metricsPort = 0;

  before(async () => {
    metricsPort = await freePort();
    g = await startGripd({ routes: ['* test'], sections: { proxy: ['workers=2'], handler: [`prometheus_port=${metricsPort}`] } });
    await waitFor(() => /gripd ready: .*2 workers/.test(g.output()), 'both workers ready');
    push.connect(`tcp://127.0.0.1:${g.pullPort}`);
    xpub.verbosity = 'allSubs';
    xpub.connect(`tcp://127.0.0.1:${g.subPort}`);
    xpubLoop = (async () => {
      try {
        for await (const [m] of xpub) if (m) subEvents.push(`${m[0] === 1 ? '+' : '-'}${m.subarray(1).toString()}`);
      } catch {
        // closed
      }
    })();
  });

  after(async () => {
    for (const c of [...clients, ...others]) c.close();
    push.close();
    xpub.close();
    await xpubLoop;
    if (g && g.proc.exitCode === null) await g.stop('SIGKILL');
  });

  test('workers: clients on both workers get every publish exactly once (HTTP API, PULL, SUB, command socket)', async () => {
    for (let i = 0; i < CLIENTS; i++) clients.push(await openStream(`${g.url}/stream?channel=${CHANNEL}`));
    await waitFor(() => requestsPerWorker(g.output()).size === 2, 'access lines from both workers');
    const per = requestsPerWorker(g.output());
    assert.ok((per.get(1) ?? 0) > 0 && (per.get(2) ?? 0) > 0, `both workers got clients: ${JSON.stringify([...per])}`);

    // One SUB subscription for the instance, however many workers hold the channel.
    await waitFor(() => subEvents.includes(`+${CHANNEL}`), 'SUB subscription');

    await httpPublish(g, 'via-http\n');
    await push.send('J' + JSON.stringify({ channel: CHANNEL, formats: { 'http-stream': { content: 'via-pull\n' } } }));
    await xpub.send([CHANNEL, Buffer.concat([Buffer.from('T'), encodeTnetstring({ channel: CHANNEL, formats: { 'http-stream': { content: 'via-sub\n' } } })])]);
    const req = new zmq.Request({ linger: 0 });
    req.connect(`tcp://127.0.0.1:${g.commandPort}`);
    try {
      await req.send(encodeCommandRequest({ id: 'p', method: 'publish', args: { items: [{ channel: CHANNEL, formats: { 'http-stream': { content: 'via-command\n' } } }] } }));
      const [reply] = await within(req.receive(), 'publish reply');
      assert.equal(decodeCommandResponse(reply!).success, true);
    } finally {
      req.close();
    }
    // Items from one input stay in order; a marker published last proves nothing else is coming.
    await httpPublish(g, 'end-1\n');
    await waitFor(() => clients.every((c) => c.text().includes('end-1\n')), 'marker at every client');
    await waitFor(() => clients.every((c) => ['via-pull', 'via-sub', 'via-command'].every((s) => c.text().includes(s))), 'zmq items at every client');
    for (const [i, c] of clients.entries()) {
      for (const s of ['via-http\n', 'via-pull\n', 'via-sub\n', 'via-command\n', 'end-1\n']) {
        assert.equal(count(c.text(), s), 1, `client ${i}: ${JSON.stringify(s)} in ${JSON.stringify(c.text())}`);
      }
    }
    assert.equal(subEvents.filter((e) => e === `+${CHANNEL}`).length, 1, `subscriptions: ${subEvents.join(' ')}`);

    // Prometheus sees the whole instance: the primary's inputs plus every worker's deliveries.
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    const value = (re: RegExp): number => Number(re.exec(text)?.[1]);
    assert.equal(value(/^message_received (\S+)$/m), 5, text);
    assert.equal(value(/^message_sent (\S+)$/m), CLIENTS * 5, text);
    assert.equal(value(/^gripd_channels (\S+)$/m), 1, text);
    assert.equal(value(/^gripd_held_connections\{mode="stream"\} (\S+)$/m), CLIENTS, text);
  });

  test('workers: a burst of new channels on both workers subscribes each once, and each gets its item', async () => {
    // Workers report subscription changes once per event-loop turn; a burst fills turns
    // with several channels, so every one of them must still reach the primary.
    const burst = Array.from({ length: 40 }, (_, i) => `burst-${i}`);
    const opened = await Promise.all(burst.map((ch) => openStream(`${g.url}/stream?channel=${ch}`)));
    others.push(...opened);
    await waitFor(() => burst.every((ch) => subEvents.includes(`+${ch}`)), 'SUB subscription for every burst channel');
    for (const ch of burst) assert.equal(subEvents.filter((e) => e === `+${ch}`).length, 1, `subscriptions: ${subEvents.join(' ')}`);
    const body = JSON.stringify({ items: burst.map((ch) => ({ channel: ch, formats: { 'http-stream': { content: `to-${ch}\n` } } })) });
    const res = await fetch(`${g.publishUrl}/publish`, { method: 'POST', body, headers: { 'Content-Type': 'application/json' } });
    assert.equal(res.status, 200, await res.text());
    await waitFor(() => opened.every((c, i) => c.text().includes(`to-burst-${i}\n`)), 'each burst client got its item');
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    assert.equal(Number(/^gripd_channels (\S+)$/m.exec(text)?.[1]), 1 + burst.length, text);
  });

  test('workers: conncheck and recover through the command socket answer for the whole instance', async () => {
    const req = new zmq.Request({ linger: 0 });
    req.connect(`tcp://127.0.0.1:${g.commandPort}`);
    try {
      await req.send(encodeCommandRequest({ id: 'c', method: 'conncheck', args: { ids: ['nobody-1', 'nobody-2'] } }));
      let r = decodeCommandResponse((await within(req.receive(), 'conncheck reply'))[0]!);
      // HTTP holds carry no connection ids, so nothing is alive among made-up ids.
      assert.deepEqual(r, { id: Buffer.from('c'), success: true, value: [] });
      await req.send(encodeCommandRequest({ id: 'r', method: 'recover' }));
      r = decodeCommandResponse((await within(req.receive(), 'recover reply'))[0]!);
      assert.deepEqual(r, { id: Buffer.from('r'), success: true, value: null });
      await req.send(encodeCommandRequest({ id: 'f', method: 'refresh', args: { channel: CHANNEL } }));
      r = decodeCommandResponse((await within(req.receive(), 'refresh reply'))[0]!);
      assert.equal(r.success, true);
    } finally {
      req.close();
    }
    // The clients are still there and still served after the commands.
    await httpPublish(g, 'end-2\n');
    await waitFor(() => clients.every((c) => c.text().includes('end-2\n')), 'marker after commands');
  });

  test('workers: a killed worker is replaced; the other worker keeps its clients; new clients are served', async () => {
    const pids = workerPids(g.output());
    const victim = pids.get(1);
    assert.ok(victim !== undefined && pids.get(2) !== undefined, `worker pids logged: ${JSON.stringify([...pids])}`);
    const mark = g.output().length;
    process.kill(victim, 'SIGKILL');
    await waitFor(() => { const p = workerPids(g.output()).get(1); return p !== undefined && p !== victim; }, 'worker 1 restarted');
    assert.match(g.output().slice(mark), /worker 1 \(pid \d+\) exited \(signal SIGKILL\); restarting/);
    await waitFor(() => clients.some((c) => c.closed()), 'the dead worker\'s clients closed');
    const survivors = clients.filter((c) => !c.closed());
    assert.ok(survivors.length > 0, 'clients on the other worker stay connected');

    // New clients: round-robin gives the replacement worker some of them.
    const since = g.output().length;
    const fresh: StreamClient[] = [];
    for (let i = 0; i < CLIENTS; i++) fresh.push(await openStream(`${g.url}/stream?channel=${CHANNEL}`));
    clients.push(...fresh);
    await waitFor(() => requestsPerWorker(g.output(), since).size === 2, 'new clients on both workers');
    await httpPublish(g, 'after-restart\n');
    const live = [...survivors, ...fresh];
    await waitFor(() => live.every((c) => c.text().includes('after-restart\n')), 'publish after restart at every live client');
    for (const c of live) assert.equal(count(c.text(), 'after-restart\n'), 1);
  });

  test('workers: SIGHUP reloads the primary and every worker; clients stay served', async () => {
    const since = g.output().length;
    const pids = workerPids(g.output());
    g.proc.kill('SIGHUP');
    await waitFor(() => /configuration reloaded/.test(g.output().slice(since)), 'reload logged');
    await waitFor(() => new Set([...g.output().slice(since).matchAll(/configuration reloaded worker=(\d)/g)].map((m) => m[1])).size === 2, 'both workers reloaded');
    assert.deepEqual(workerPids(g.output()), pids, 'no worker restarted');
    const c = await openStream(`${g.url}/stream?channel=${CHANNEL}`);
    clients.push(c);
    await httpPublish(g, 'after-reload\n');
    await waitFor(() => c.text().includes('after-reload\n'), 'publish after reload');
  });

  test('workers: SIGTERM stops the primary and every worker with exit code 0', async () => {
    const pids = [...workerPids(g.output()).values()];
    const code = await g.stop('SIGTERM');
    assert.equal(code, 0, g.output().slice(-2000));
    for (const pid of pids) {
      await waitFor(() => { try { process.kill(pid, 0); return false; } catch { return true; } }, `worker ${pid} gone`, 10_000);
    }
  });
});
