import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeStatsMessage, splitStatsMessage, type StatsPacket } from '../../../src/zmq/stats.js';
import { decodeTnetstring } from '../../../src/zmq/tnetstring.js';

test('stats: activity message in tnetstring framing', () => {
  const f = encodeStatsMessage({ type: 'activity', from: 'gripd', route: 'r1', count: 3 }, 'tnetstring');
  assert.equal(f.toString(), 'activity T40:4:from,5:gripd,5:route,2:r1,5:count,1:3#}');
});

test('stats: json framing', () => {
  const f = encodeStatsMessage({ type: 'message', channel: 'c', count: 2, transport: 'http-stream', itemId: 'i' }, 'json');
  assert.equal(f.toString(), 'message J{"channel":"c","item-id":"i","count":2,"transport":"http-stream"}');
});

test('stats: conn and sub, present and gone', () => {
  const cases: Array<[StatsPacket, Record<string, unknown>]> = [
    [{ type: 'conn', id: 'c1', connected: true, connType: 'ws', peerAddress: '1.2.3.4', ssl: true, ttl: 120 },
      { id: Buffer.from('c1'), type: Buffer.from('ws'), 'peer-address': Buffer.from('1.2.3.4'), ssl: true, ttl: 120 }],
    [{ type: 'conn', id: 'c1', connected: false }, { id: Buffer.from('c1'), unavailable: true }],
    [{ type: 'sub', mode: 'stream', channel: 'ch', subscribed: true, ttl: 60, subscribers: 4 },
      { mode: Buffer.from('stream'), channel: Buffer.from('ch'), ttl: 60, subscribers: 4 }],
    [{ type: 'sub', mode: 'stream', channel: 'ch', subscribed: false }, { mode: Buffer.from('stream'), channel: Buffer.from('ch'), unavailable: true }],
    [{ type: 'report', connections: 5, minutes: 1, received: 2, sent: 3, duration: 10000 },
      { connections: 5, minutes: 1, received: 2, sent: 3, duration: 10000 }],
  ];
  for (const [p, fields] of cases) {
    const s = splitStatsMessage(encodeStatsMessage(p, 'tnetstring'));
    assert.ok(s);
    assert.equal(s.type, p.type);
    assert.equal(s.format, 'tnetstring');
    assert.deepEqual(decodeTnetstring(s.payload), fields);
  }
});

test('stats: negative counts are clamped to 0 as Pushpin does', () => {
  const s = splitStatsMessage(encodeStatsMessage({ type: 'activity', count: -5 }, 'json'));
  assert.deepEqual(JSON.parse(s!.payload.toString()), { count: 0 });
});
