/**
 * A backend written with @fanoutio/serve-grip (others' GRIP middleware) behind gripd's
 * handler, published to with @fanoutio/grip's Publisher through gripd's publish API.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type http from 'node:http';
import { Publisher } from '@fanoutio/grip';
import { ServeGrip } from '@fanoutio/serve-grip';
import { RawClient, startRig, waitSubscribers, type Rig } from './grip-rig.js';

describe('grip handler with @fanoutio/serve-grip', () => {
  let rig: Rig;
  let serveGrip: ServeGrip;
  before(async () => {
    rig = await startRig((req: http.IncomingMessage, res: http.ServerResponse) => {
      void (async () => {
        if (!(await serveGrip.run(req, res))) return;
        const grip = (req as unknown as { grip: { isProxied: boolean } }).grip;
        if (!grip.isProxied) {
          res.end('not proxied\n');
          return;
        }
        const instruct = (res as unknown as { grip: { startInstruct(): { addChannel(c: string): void; setHoldStream(): void; setHoldLongPoll(t?: number): void } } }).grip.startInstruct();
        if (req.url === '/events') {
          instruct.addChannel('sg-stream');
          instruct.setHoldStream();
          res.setHeader('Content-Type', 'text/event-stream');
          res.end(':ok\n\n');
        } else {
          instruct.addChannel('sg-poll');
          instruct.setHoldLongPoll(20);
          res.setHeader('Content-Type', 'application/json');
          res.end('{"items":[]}\n');
        }
      })();
    });
    serveGrip = new ServeGrip({ grip: { control_uri: rig.publishUrl }, gripProxyRequired: true });
  });
  after(async () => {
    await rig.close();
  });

  test('serve-grip: an SSE stream hold receives events published with publishHttpStream', async () => {
    const c = new RawClient(rig.port, 'GET /events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n');
    await waitSubscribers(rig.handler, 'sg-stream', 1);
    await c.until((x) => x.text.includes(':ok\n\n'));
    assert.match(c.text, /\r\nContent-Type: text\/event-stream\r\n/);
    assert.doesNotMatch(c.text, /Grip-/i);
    const pub = new Publisher({ control_uri: rig.publishUrl });
    await pub.publishHttpStream('sg-stream', 'event: message\ndata: hello\n\n');
    await c.until((x) => x.text.includes('data: hello\n\n'));
    c.destroy();
  });

  test('serve-grip: a long-poll is answered by publishHttpResponse', async () => {
    const c = new RawClient(rig.port, 'GET /poll HTTP/1.1\r\nHost: x\r\n\r\n');
    await waitSubscribers(rig.handler, 'sg-poll', 1);
    const pub = new Publisher({ control_uri: rig.publishUrl });
    await pub.publishHttpResponse('sg-poll', '{"items":[1]}\n');
    await c.until((x) => x.text.endsWith('{"items":[1]}\n'));
    assert.match(c.text, /^HTTP\/1\.1 200 OK\r\n/);
    c.destroy();
  });
});
