/**
 * The requester's outbound policy with real loopback sockets and a scripted resolver:
 * it resolves once, checks every address, connects to a checked address (so a second,
 * rebound DNS answer is never used), skips denied addresses when an allowed one
 * remains, and fails over from a refused untrusted target to the next one.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { createLogger } from '../../src/log/index.js';
import { BackendPools, DEFAULT_POOL_TIMEOUTS } from '../../src/proxy/backend-pool.js';
import { createRequester, type HostLookup } from '../../src/proxy/requester.js';
import { createOutboundPolicy, OUTBOUND_POLICY_DENIED } from '../../src/proxy/outbound-policy.js';
import type { SignerCache } from '../../src/proxy/signing.js';
import type { BackendRequest } from '../../src/proxy/types.js';
import type { Route, Target } from '../../src/routes/types.js';
import { startBackend, type Backend } from '../helpers/backend.js';

/** Denies 10/8 only, so loopback stands in for "a public address" in these tests. */
const TEST_POLICY = createOutboundPolicy(['10.0.0.0/8']);

function target(port: number, untrusted: boolean, host = '127.0.0.1'): Target {
  return { type: 'http', host, port, ssl: false, insecure: false, trustConnectHost: false, overHttp: false, oneEvent: false, subscriptions: [], untrusted };
}

function route(...targets: Target[]): Route {
  return {
    source: 'routes:1', domain: '*', id: '*,*,*,*', idExplicit: false, headers: [], prefix: '', debug: false,
    autoCrossOrigin: false, jsonpEnabled: false, jsonpDefaultMethod: 'GET', noGrip: true, session: false,
    origHeaders: false, targets,
  };
}

const GET: BackendRequest = { method: 'GET', path: '/next', headers: [], body: Buffer.alloc(0) };

describe('outbound requester', () => {
  let backend: Backend;
  let pools: BackendPools;
  let logLines: string[];
  const lookups: string[] = [];
  /** Per-host scripted answers; each call takes the next answer (the last one repeats). */
  const answers = new Map<string, string[][]>();
  const lookup: HostLookup = async (host) => {
    lookups.push(host);
    const list = answers.get(host);
    if (list === undefined || list.length === 0) throw Object.assign(new Error(`no answer for ${host}`), { code: 'ENOTFOUND' });
    return list.length > 1 ? list.shift()! : list[0]!;
  };

  /** `null`: leave the policy to createRequester's default (the internal ranges). */
  function requester(policy: ReturnType<typeof createOutboundPolicy> | null = TEST_POLICY) {
    const sink = new Writable({ write(chunk, _enc, cb) { logLines.push(String(chunk)); cb(); } });
    const logger = createLogger({ level: 3, json: false, destination: sink });
    return createRequester({
      pools, signers: {} as SignerCache, logger, lookup, ...(policy !== null ? { outboundPolicy: policy } : {}),
      testHandler: async () => ({ status: 200, reason: 'OK', headers: [], body: Buffer.from('test') }),
    });
  }

  /** Waits for buffered log lines (written once per event-loop turn). */
  async function logs(): Promise<string> {
    await new Promise((r) => setImmediate(r));
    return logLines.join('');
  }

  before(async () => {
    backend = await startBackend((req, res) => { res.end(`seen ${req.url ?? ''} host=${req.headers.host ?? ''}\n`); });
    pools = new BackendPools(DEFAULT_POOL_TIMEOUTS);
  });
  after(async () => { await pools.close(100); await backend.close(); });

  test('outbound: an untrusted link host is resolved once and the checked address is the one connected to', async () => {
    logLines = [];
    lookups.length = 0;
    // First answer is allowed (loopback, under the test policy); a rebound second answer would be internal.
    answers.set('rebind.test', [['127.0.0.1'], ['10.0.0.1']]);
    const r = await requester().request(route(target(backend.port, true)), GET, { url: `http://rebind.test:${backend.port}/next?a=1` });
    assert.equal(r.body.toString(), `seen /next?a=1 host=rebind.test:${backend.port}\n`);
    assert.deepEqual(lookups, ['rebind.test']);
  });

  test('outbound: denied addresses are skipped when an allowed one remains (as Pushpin)', async () => {
    logLines = [];
    answers.set('mixed.test', [['10.1.2.3', '::ffff:10.0.0.9', '127.0.0.1']]);
    const r = await requester().request(route(target(backend.port, true)), GET, { url: `http://mixed.test:${backend.port}/m` });
    assert.match(r.body.toString(), /^seen \/m /);
    assert.ok(!(await logs()).includes('outbound policy refused'));
  });

  test('outbound: a link whose every address is internal is refused with a coded error and a warning', async () => {
    logLines = [];
    answers.set('internal.test', [['10.0.0.1', '10.9.9.9']]);
    const before = backend.requests.length;
    await assert.rejects(
      requester().request(route(target(backend.port, true)), GET, { url: `http://internal.test:${backend.port}/secret` }),
      (e: Error & { code?: string }) => e.code === OUTBOUND_POLICY_DENIED && e.message.includes(`http://internal.test:${backend.port}/secret`) && e.message.includes('10.0.0.0/8'),
    );
    assert.equal(backend.requests.length, before);
    const out = await logs();
    assert.match(out, /\[WARN\] .*outbound policy refused http:\/\/internal\.test:\d+\/secret/);
    assert.match(out, /reason=address 10\.0\.0\.1 is in denied range 10\.0\.0\.0\/8; address 10\.9\.9\.9 is in denied range 10\.0\.0\.0\/8/);
  });

  test('outbound: the answering target decides a link\'s trust when the handler names it', async () => {
    answers.set('internal.test', [['10.0.0.1']]);
    const mixed = route(target(backend.port, false), target(backend.port, true));
    // Trusted answering target: no resolution, no check (the name would not even resolve here).
    lookups.length = 0;
    await assert.rejects(requester().request(mixed, GET, { url: 'http://unresolvable.invalid:1/x', target: mixed.targets[0] }), (e: Error & { code?: string }) => e.code !== OUTBOUND_POLICY_DENIED);
    assert.deepEqual(lookups, []);
    await assert.rejects(requester().request(mixed, GET, { url: `http://internal.test:${backend.port}/x`, target: mixed.targets[1] }), (e: Error & { code?: string }) => e.code === OUTBOUND_POLICY_DENIED);
    // Not named: one untrusted target in the route makes its links untrusted.
    await assert.rejects(requester().request(mixed, GET, { url: `http://internal.test:${backend.port}/x` }), (e: Error & { code?: string }) => e.code === OUTBOUND_POLICY_DENIED);
  });

  test('outbound: a trusted route reaches a loopback link without resolving it through the policy', async () => {
    lookups.length = 0;
    const r = await requester().request(route(target(backend.port, false)), GET, { url: `http://127.0.0.1:${backend.port}/t` });
    assert.match(r.body.toString(), /^seen \/t /);
    assert.deepEqual(lookups, []);
  });

  test('outbound: an untrusted route target at an internal address is refused and the next target is tried', async () => {
    logLines = [];
    answers.set('backend-a.test', [['10.4.4.4']]);
    const r = await requester().request(route(target(80, true, 'backend-a.test'), target(backend.port, false)), GET);
    assert.match(r.body.toString(), /^seen \/next host=127\.0\.0\.1:\d+/);
    assert.match(await logs(), /outbound policy refused http:\/\/backend-a\.test:80\/next .*untrusted target backend-a\.test:80/);
  });

  test('outbound: a route whose only target is refused fails like an unreachable one', async () => {
    await assert.rejects(
      requester().request(route(target(backend.port, true, '10.0.0.7')), GET),
      /unable to connect to any targets \(tried: 10\.0\.0\.7:\d+\): outbound policy refused/,
    );
  });

  test('outbound: an untrusted route target at an allowed address is reached through its checked address', async () => {
    answers.set('backend-b.test', [['127.0.0.1']]);
    const t = { ...target(backend.port, true, 'backend-b.test'), hostHeader: 'app.example' };
    const r = await requester().request(route(t), GET);
    assert.equal(r.body.toString(), 'seen /next host=app.example\n');
  });

  test('outbound: with the default policy, loopback in any URL spelling is refused without a lookup', async () => {
    lookups.length = 0;
    const untrusted = route(target(backend.port, true));
    const before = backend.requests.length;
    for (const host of ['127.0.0.1', '[::1]', '[::ffff:127.0.0.1]', '0x7f000001', '127.1', '[::]', '0.0.0.0']) {
      await assert.rejects(
        requester(null).request(untrusted, GET, { url: `http://${host}:${backend.port}/x` }),
        (e: Error & { code?: string }) => e.code === OUTBOUND_POLICY_DENIED,
        host,
      );
    }
    assert.equal(backend.requests.length, before);
    assert.deepEqual(lookups, []);
  });

  test('outbound: a resolver failure is a connect failure, not a crash', async () => {
    await assert.rejects(
      requester().request(route(target(backend.port, true)), GET, { url: 'http://nowhere.test:1/x' }),
      (e: Error & { code?: string }) => e.code === 'ENOTFOUND',
    );
  });
});
