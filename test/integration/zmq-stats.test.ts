import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as zmq from 'zeromq';
import { freePort } from '../helpers/ports.js';
import { StatsPublisher, splitStatsMessage } from '../../src/zmq/stats.js';
import { decodeTnetstring } from '../../src/zmq/tnetstring.js';

test('zmq stats: a SUB client subscribed to "report" receives report messages from the PUB socket', async () => {
  const spec = `tcp://127.0.0.1:${await freePort()}`;
  const pub = await StatsPublisher.start(spec, 'tnetstring');
  const sub = new zmq.Subscriber({ linger: 0, receiveTimeout: 200 });
  sub.connect(spec);
  sub.subscribe('report ');
  try {
    // PUB drops messages until the subscription has propagated; resend until one arrives.
    let got: Buffer | undefined;
    for (let i = 0; i < 100 && !got; i++) {
      pub.send({ type: 'activity', count: 1 });
      pub.send({ type: 'report', from: 'gripd', connections: 2, duration: 1000 });
      try {
        [got] = await sub.receive();
      } catch {
        // receive timeout: try again
      }
    }
    assert.ok(got, 'no report received');
    const s = splitStatsMessage(got);
    assert.equal(s?.type, 'report');
    assert.deepEqual(decodeTnetstring(s!.payload), { from: Buffer.from('gripd'), connections: 2, duration: 1000 });
  } finally {
    sub.close();
    pub.close();
  }
});
