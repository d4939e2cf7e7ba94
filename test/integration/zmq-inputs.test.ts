/**
 * The ZeroMQ publish inputs and command socket over real loopback sockets. The sink and
 * the command target are small in-test stand-ins; the sockets and codecs are real.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { waitFor } from '../helpers/wait.js';
import { EventEmitter } from 'node:events';
import { Writable } from 'node:stream';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import * as zmq from 'zeromq';
import { freePorts } from '../helpers/ports.js';
import { createLogger } from '../../src/log/index.js';
import type { Config } from '../../src/config/types.js';
import type { PublishItem } from '../../src/grip/types.js';
import { startPublishInputs, type PublishInputs } from '../../src/zmq/publish-input.js';
import { startCommandSocket, CommandError, type CommandSocket, type CommandTarget } from '../../src/zmq/command.js';
import { encodeTnetstring, decodeTnetstring, type TnetDict } from '../../src/zmq/tnetstring.js';
import { decodeCommandResponse, encodeCommandRequest } from '../../src/zmq/command-packet.js';

/** Races a promise against a deadline so a lost reply fails the test instead of hanging it. */
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

function captureLogger(): { logger: ReturnType<typeof createLogger>; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const dest = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: createLogger({ level: 1, json: true, destination: dest }), lines };
}

class Subs extends EventEmitter<{ subscribe: [string]; unsubscribe: [string] }> {
  readonly set = new Set<string>(['initial']);
  channels(): Iterable<string> {
    return this.set;
  }
  add(ch: string): void {
    this.set.add(ch);
    this.emit('subscribe', ch);
  }
  remove(ch: string): void {
    this.set.delete(ch);
    this.emit('unsubscribe', ch);
  }
}

function makeConfig(pull: number, sub: number, cmd: number): Config {
  const handler = {
    pushInSpec: `tcp://127.0.0.1:${pull}`,
    pushInSubSpecs: [`tcp://127.0.0.1:${sub}`],
    pushInSubConnect: false,
    commandSpec: `tcp://127.0.0.1:${cmd}`,
    subscriptionLingerS: 0.3,
  };
  // The sockets read only config.handler.
  return { handler } as unknown as Config;
}

const streamItem = (channel: string, content: string) => ({
  channel,
  formats: { 'http-stream': { content } },
});

describe('zmq publish inputs and command socket', () => {
  let config: Config;
  let inputs: PublishInputs;
  let command: CommandSocket;
  const received: PublishItem[] = [];
  const subs = new Subs();
  const calls: string[] = [];
  const cap = captureLogger();
  const target: CommandTarget = {
    conncheck(ids) {
      calls.push(`conncheck:${ids.join(',')}`);
      return ids.filter((id) => id.startsWith('alive'));
    },
    recover() {
      calls.push('recover');
    },
    async refresh(opts) {
      calls.push(`refresh:${JSON.stringify(opts)}`);
      if (opts.cid === 'missing') throw new CommandError('item-not-found');
    },
    publish(items) {
      calls.push(`publish:${items.length}`);
      received.push(...items);
    },
  };
  let push: zmq.Push;

  before(async () => {
    const [p1, p2, p3] = await freePorts(3);
    config = makeConfig(p1!, p2!, p3!);
    inputs = await startPublishInputs({ config, sink: { publish: (items) => received.push(...items) }, subscriptions: subs, logger: cap.logger });
    command = await startCommandSocket({ config, target, logger: cap.logger });
    push = new zmq.Push({ linger: 0 });
    push.connect(config.handler.pushInSpec);
  });

  after(async () => {
    push.close();
    await inputs.close();
    await command.close();
  });

  test('zmq pull: a T-prefixed, an unprefixed tnetstring and a J JSON item reach the sink', async () => {
    received.length = 0;
    await push.send(Buffer.concat([Buffer.from('T'), encodeTnetstring(streamItem('a', 'one\n'))]));
    await push.send(encodeTnetstring(streamItem('b', 'two\n')));
    await push.send('J' + JSON.stringify(streamItem('c', 'three\n')));
    await waitFor(() => received.length >= 3, '3 items');
    assert.deepEqual(received.map((i) => i.channel), ['a', 'b', 'c']);
    assert.deepEqual(received.map((i) => i.formats.httpStream?.content?.toString()), ['one\n', 'two\n', 'three\n']);
  });

  test('zmq pull: bad frames are logged naming the socket and dropped; the socket keeps serving', async () => {
    received.length = 0;
    const before = cap.lines.length;
    await push.send([Buffer.from('a'), Buffer.from('b')]);
    await push.send(Buffer.from('100000000:'));
    await push.send(Buffer.from('J[1,2]'));
    await push.send(Buffer.from('J{"channel":5}'));
    await push.send(encodeTnetstring(streamItem('ok', 'after\n')));
    await waitFor(() => received.length >= 1, 'good item after bad ones');
    assert.equal(received[0]!.channel, 'ok');
    const warnings = cap.lines.slice(before).filter((l) => l['socket'] === 'pull');
    assert.equal(warnings.length, 4, JSON.stringify(warnings));
    assert.match(String(warnings[0]!['msg']), /parts != 1/);
    assert.match(String(warnings[1]!['msg']), /tnetstring parse failed.*claimed length 100000000/);
    assert.match(String(warnings[2]!['msg']), /not a valid json object/);
    assert.match(String(warnings[3]!['msg']), /channel/);
  });

  test('zmq sub: the XPUB publisher sees subscriptions for local channels only, and items flow', async () => {
    received.length = 0;
    const xpub = new zmq.XPublisher({ linger: 0 });
    try {
      xpub.connect(config.handler.pushInSubSpecs[0]!);
      const seen: string[] = [];
      const loop = (async () => {
        for await (const [m] of xpub) seen.push(`${m![0] === 1 ? '+' : '-'}${m!.subarray(1).toString()}`);
      })().catch(() => {});
      await waitFor(() => seen.includes('+initial'), 'subscription for the initial channel');
      subs.add('news');
      await waitFor(() => seen.includes('+news'), 'subscription for news');

      await xpub.send(['news', Buffer.concat([Buffer.from('T'), encodeTnetstring(streamItem('ignored', 'hello\n'))])]);
      // A prefix match of "news" that we never asked for must not be delivered.
      await xpub.send(['newsroom', encodeTnetstring(streamItem('x', 'nope\n'))]);
      await xpub.send(['news', 'J' + JSON.stringify({ formats: { 'http-stream': { content: 'json\n' } } })]);
      await waitFor(() => received.length >= 2, 'two SUB items');
      assert.deepEqual(received.map((i) => [i.channel, i.formats.httpStream?.content?.toString()]), [
        ['news', 'hello\n'],
        ['news', 'json\n'],
      ]);

      // The input follows the handler's events at once; the handler owns subscription_linger.
      subs.remove('news');
      await waitFor(() => seen.includes('-news'), 'unsubscribe reaches the publisher');
      subs.add('news');
      await waitFor(() => seen.filter((s) => s === '+news').length === 2, 'resubscribe reaches the publisher');
      xpub.close();
      await loop;
    } finally {
      if (!xpub.closed) xpub.close();
    }
  });

  async function ask(sock: zmq.Request, req: Parameters<typeof encodeCommandRequest>[0]): Promise<ReturnType<typeof decodeCommandResponse>> {
    await sock.send(encodeCommandRequest(req));
    const [reply] = await within(sock.receive(), `reply to ${req.method}`);
    return decodeCommandResponse(reply!);
  }

  test('zmq command: every method answers as Pushpin does (REQ client)', async () => {
    const req = new zmq.Request({ linger: 0 });
    req.connect(config.handler.commandSpec);
    try {
      let r = await ask(req, { id: '1', method: 'conncheck', args: { ids: ['alive-1', 'gone-2'] } });
      assert.deepEqual(r, { id: Buffer.from('1'), success: true, value: [Buffer.from('alive-1')] });

      r = await ask(req, { id: '2', method: 'get-zmq-uris' });
      assert.equal(r.success, true);
      const uris = r.value as TnetDict;
      assert.deepEqual(uris['command'], Buffer.from(config.handler.commandSpec));
      assert.deepEqual(uris['publish-pull'], Buffer.from(config.handler.pushInSpec));
      assert.deepEqual(uris['publish-sub'], Buffer.from(config.handler.pushInSubSpecs[0]!));

      r = await ask(req, { id: '3', method: 'recover' });
      assert.deepEqual(r, { id: Buffer.from('3'), success: true, value: null });

      r = await ask(req, { id: '4', method: 'refresh', args: { cid: 'c1' } });
      assert.equal(r.success, true);
      r = await ask(req, { id: '5', method: 'refresh', args: { channel: 'ch' } });
      assert.equal(r.success, true);
      r = await ask(req, { id: '6', method: 'refresh', args: { cid: 'missing' } });
      assert.deepEqual(r, { id: Buffer.from('6'), success: false, condition: 'item-not-found' });

      r = await ask(req, { id: '7', method: 'publish', args: { items: [streamItem('cmd', 'via command\n')] } });
      assert.equal(r.success, true);
      assert.ok(calls.includes('publish:1'));
      assert.ok(calls.includes('refresh:{"cid":"c1"}') && calls.includes('refresh:{"channel":"ch"}'));
      assert.ok(calls.includes('recover') && calls.includes('conncheck:alive-1,gone-2'));
    } finally {
      req.close();
    }
  });

  test('zmq command: errors — method-not-found and bad-request', async () => {
    const req = new zmq.Request({ linger: 0 });
    req.connect(config.handler.commandSpec);
    try {
      const cases: Array<[Parameters<typeof encodeCommandRequest>[0], string, RegExp?]> = [
        [{ id: 'a', method: 'bogus' }, 'method-not-found'],
        [{ id: 'b', method: 'conncheck' }, 'bad-request'],
        [{ id: 'c', method: 'conncheck', args: { ids: [1] } }, 'bad-request'],
        [{ id: 'd', method: 'refresh' }, 'bad-request'],
        [{ id: 'e', method: 'refresh', args: { cid: 5 } }, 'bad-request'],
        [{ id: 'f', method: 'publish' }, 'bad-request', /does not contain 'items'/],
        [{ id: 'g', method: 'publish', args: { items: 'x' } }, 'bad-request', /wrong type/],
        [{ id: 'h', method: 'publish', args: { items: [{ formats: {} }] } }, 'bad-request', /^Invalid format: .*channel/],
      ];
      for (const [q, condition, valueRe] of cases) {
        const r = await ask(req, q);
        assert.equal(r.success, false, q.method);
        assert.equal(r.condition, condition, JSON.stringify(q));
        assert.deepEqual(r.id, Buffer.from(q.id as string));
        if (valueRe) assert.match((r.value as Buffer).toString(), valueRe);
      }
    } finally {
      req.close();
    }
  });

  test('zmq command: DEALER clients with an empty delimiter frame are served', async () => {
    const dealer = new zmq.Dealer({ linger: 0 });
    dealer.connect(config.handler.commandSpec);
    try {
      await dealer.send([Buffer.alloc(0), encodeCommandRequest({ id: 'd1', method: 'recover' })]);
      await dealer.send([Buffer.alloc(0), encodeCommandRequest({ id: 'd2', method: 'nope' })]);
      const replies = [];
      for (let i = 0; i < 2; i++) {
        const msg = await within(dealer.receive(), 'dealer reply');
        assert.equal(msg.length, 2);
        assert.equal(msg[0]!.length, 0);
        replies.push(decodeTnetstring(msg[1]!) as TnetDict);
      }
      assert.deepEqual(replies[0], { id: Buffer.from('d1'), success: true, value: null });
      assert.deepEqual(replies[1], { id: Buffer.from('d2'), success: false, condition: Buffer.from('method-not-found') });
    } finally {
      dealer.close();
    }
  });

  const PUSHPIN_PUBLISH = '/usr/bin/pushpin-publish';
  test('zmq pull: Pushpin\'s own pushpin-publish tool publishes to gripd', { skip: !existsSync(PUSHPIN_PUBLISH) && 'pushpin-publish not installed' }, async () => {
    received.length = 0;
    const run = promisify(execFile);
    await run(PUSHPIN_PUBLISH, ['pp', 'hello', '--spec', config.handler.pushInSpec, '--id', 'i1', '-H', 'X-A: b'], { timeout: 10_000 });
    await run(PUSHPIN_PUBLISH, ['pp', '--close', '--spec', config.handler.pushInSpec], { timeout: 10_000 });
    await waitFor(() => received.length >= 2, 'two items from pushpin-publish');
    const [send, close] = received;
    assert.equal(send!.channel, 'pp');
    assert.equal(send!.id, 'i1');
    assert.equal(send!.formats.httpStream?.content?.toString(), 'hello\n');
    assert.deepEqual(send!.formats.httpResponse?.headers, [['X-A', 'b']]);
    assert.equal(close!.formats.httpStream?.action, 'close');
  });

  test('zmq fuzz: 100 000 random and mutated frames to PULL and command; both still serve', async () => {
    // Deterministic PRNG (xorshift32) so a failure can be replayed.
    let s = 0x9e3779b9;
    const rnd = (n: number): number => {
      s ^= s << 13;
      s >>>= 0;
      s ^= s >>> 17;
      s ^= s << 5;
      s >>>= 0;
      return s % n;
    };
    const seeds = [
      Buffer.concat([Buffer.from('T'), encodeTnetstring(streamItem('fz', 'x'))]),
      Buffer.from('J' + JSON.stringify(streamItem('fz', 'y'))),
      encodeCommandRequest({ id: 'z', method: 'publish', args: { items: [streamItem('fz', 'z')] } }),
      encodeCommandRequest({ id: 'z', method: 'conncheck', args: { ids: ['a'] } }),
    ];
    const frame = (): Buffer => {
      if (rnd(4) === 0) {
        const b = Buffer.alloc(rnd(40));
        for (let i = 0; i < b.length; i++) b[i] = rnd(256);
        return b;
      }
      const b = Buffer.from(seeds[rnd(seeds.length)]!);
      const kind = rnd(4);
      if (kind === 0) return b.subarray(0, rnd(b.length));
      const m = Buffer.from(b);
      for (let k = 0, n = 1 + rnd(3); k < n; k++) {
        const i = rnd(m.length);
        m[i] = kind === 1 ? rnd(256) : kind === 2 ? 0x30 + rnd(10) : [0x3a, 0x2c, 0x5d, 0x7d, 0x23][rnd(5)]!;
      }
      return m;
    };

    const N = 50_000; // per socket: 100 000 in total
    const dealer = new zmq.Dealer({ linger: 0, receiveHighWaterMark: 0 });
    dealer.connect(config.handler.commandSpec);
    let dealerReplies = 0;
    let lastSeen = false;
    const drain = (async () => {
      for await (const msg of dealer) {
        dealerReplies++;
        const body = msg[msg.length - 1];
        if (body && body.includes('4:last,')) lastSeen = true;
      }
    })().catch(() => {});
    const linesBefore = cap.lines.length;
    const fuzzPush = new zmq.Push({ linger: 0, sendHighWaterMark: 0 });
    fuzzPush.connect(config.handler.pushInSpec);
    try {
      for (let i = 0; i < N; i++) {
        const f = frame();
        await fuzzPush.send(rnd(50) === 0 ? [f, f] : f);
        await dealer.send(rnd(50) === 0 ? [f] : [Buffer.alloc(0), f]);
      }
      // Afterwards both sockets must still do their job. The DEALER's own final request is
      // read after all its fuzz frames, so its reply proves the command socket got through them.
      await dealer.send([Buffer.alloc(0), encodeCommandRequest({ id: 'last', method: 'recover' })]);
      await waitFor(() => lastSeen, 'reply to the final DEALER request', 30_000);
      received.length = 0;
      await fuzzPush.send(encodeTnetstring(streamItem('after-fuzz', 'ok\n')));
      await waitFor(() => received.some((i) => i.channel === 'after-fuzz'), 'PULL item after fuzz', 30_000);
      const req = new zmq.Request({ linger: 0 });
      req.connect(config.handler.commandSpec);
      try {
        const r = await ask(req, { id: 'post', method: 'recover' });
        assert.equal(r.success, true);
      } finally {
        req.close();
      }
      assert.ok(dealerReplies >= 1);
      // Rate-limited: the flood of bad frames must not flood the log.
      const warns = cap.lines.slice(linesBefore).filter((l) => l['level'] === 40).length;
      assert.ok(warns <= 200, `${warns} warnings logged`);
    } finally {
      fuzzPush.close();
      dealer.close();
      await drain;
    }
  });
});
