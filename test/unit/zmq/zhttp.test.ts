import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  decodeZhttpRequest,
  decodeZhttpResponse,
  encodeZhttpRequest,
  encodeZhttpResponse,
  joinAddressed,
  splitAddressed,
  ZhttpPacketError,
  MAX_IDS,
  type ZhttpRequest,
  type ZhttpResponse,
} from '../../../src/zmq/zhttp.js';
import { encodeTnetstring } from '../../../src/zmq/tnetstring.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');

// Wire bytes as Pushpin's own packet tests state them.
const REQ_DATA =
  'T161:4:from,6:client,2:id,1:1,3:seq,1:0#6:method,4:POST,3:uri,23:http://example.com/path,' +
  '7:headers,34:30:12:Content-Type,10:text/plain,]]4:body,5:hello,4:more,4:true!}';
const REQ_ERROR = 'T77:4:from,6:client,2:id,1:1,3:seq,1:0#4:type,5:error,9:condition,11:bad-request,}';
const RESP_DATA =
  'T139:4:from,6:server,2:id,1:1,3:seq,1:0#4:code,3:200#6:reason,2:OK,7:headers,34:30:12:Content-Type,' +
  '10:text/plain,]]4:body,5:hello,4:more,4:true!}';
const RESP_ERROR = 'T77:4:from,6:server,2:id,1:1,3:seq,1:0#4:type,5:error,9:condition,11:bad-request,}';

const reqData: ZhttpRequest = {
  from: b('client'),
  ids: [{ id: b('1'), seq: 0 }],
  type: 'data',
  method: 'POST',
  uri: 'http://example.com/path',
  headers: [['Content-Type', 'text/plain']],
  body: b('hello'),
  more: true,
};
const respData: ZhttpResponse = {
  from: b('server'),
  ids: [{ id: b('1'), seq: 0 }],
  type: 'data',
  code: 200,
  reason: 'OK',
  headers: [['Content-Type', 'text/plain']],
  body: b('hello'),
  more: true,
};

describe('zhttp vectors', () => {
  test('zhttp: request data packet encodes byte-exactly and decodes back', () => {
    assert.equal(encodeZhttpRequest(reqData).toString('latin1'), REQ_DATA);
    assert.deepEqual(decodeZhttpRequest(b(REQ_DATA)), reqData);
  });
  test('zhttp: request error packet', () => {
    const p: ZhttpRequest = { from: b('client'), ids: [{ id: b('1'), seq: 0 }], type: 'error', condition: 'bad-request' };
    assert.equal(encodeZhttpRequest(p).toString('latin1'), REQ_ERROR);
    assert.deepEqual(decodeZhttpRequest(b(REQ_ERROR)), p);
  });
  test('zhttp: response data packet encodes byte-exactly and decodes back', () => {
    assert.equal(encodeZhttpResponse(respData).toString('latin1'), RESP_DATA);
    assert.deepEqual(decodeZhttpResponse(b(RESP_DATA)), respData);
  });
  test('zhttp: response error packet', () => {
    const p: ZhttpResponse = { from: b('server'), ids: [{ id: b('1'), seq: 0 }], type: 'error', condition: 'bad-request' };
    assert.equal(encodeZhttpResponse(p).toString('latin1'), RESP_ERROR);
    assert.deepEqual(decodeZhttpResponse(b(RESP_ERROR)), p);
  });
  test('zhttp: several ids travel as a list of dicts; ext flags as a dict', () => {
    const p: ZhttpRequest = { ids: [{ id: b('a'), seq: 1 }, { id: b('b') }], type: 'credit', credits: 10, multi: true, quiet: true };
    const enc = encodeZhttpRequest(p);
    assert.equal(
      enc.toString('latin1'),
      'T' + encodeTnetstring(new Map<string, unknown>([
        ['id', [new Map<string, unknown>([['id', 'a'], ['seq', 1]]), new Map([['id', 'b']])]],
        ['ext', new Map([['multi', true], ['quiet', true]])],
        ['type', 'credit'],
        ['credits', 10],
      ]) as never).toString('latin1'),
    );
    assert.deepEqual(decodeZhttpRequest(enc), p);
  });
  test('zhttp: every request field round-trips', () => {
    const p: ZhttpRequest = {
      from: b('me'), ids: [{ id: b('x'), seq: 3 }], type: 'data', method: 'GET', uri: 'http://h/p?q=1',
      headers: [['X-Bin', '\xff\x00']], body: b(''), contentType: 'text', code: 1000, credits: 5, more: true, stream: true,
      routerResp: true, maxSize: 100, timeout: 30, peerAddress: '127.0.0.1', peerPort: 4000, connectHost: 'h',
      connectPort: 80, ignorePolicies: true, trustConnectHost: true, ignoreTlsErrors: true, clientCert: 'c',
      clientKey: 'k', followRedirects: true, userData: { a: b('1') }, passthrough: [1, 2],
    };
    assert.deepEqual(decodeZhttpRequest(encodeZhttpRequest(p)), p);
  });
  test('zhttp: peer-port as a decimal byte string is accepted (Pushpin C++ writes it so)', () => {
    const enc = Buffer.concat([b('T'), encodeTnetstring({ 'peer-port': '8080' })]);
    assert.equal(decodeZhttpRequest(enc).peerPort, 8080);
  });
  test('zhttp: addressed frames split and join', () => {
    const f = joinAddressed('handler-1', encodeZhttpResponse(respData));
    const { address, packet } = splitAddressed(f);
    assert.equal(address.toString(), 'handler-1');
    assert.deepEqual(decodeZhttpResponse(packet), respData);
  });
});

describe('zhttp hostile input', () => {
  const bad: Array<[string, Buffer, RegExp]> = [
    ['no T prefix', b(REQ_DATA.slice(1)), /root: missing "T"/],
    ['empty', b(''), /root/],
    ['not a dict', Buffer.concat([b('T'), encodeTnetstring([1])]), /root: not a dict/],
    ['bad type', Buffer.concat([b('T'), encodeTnetstring({ type: 'bogus' })]), /type: unknown/],
    ['id wrong type', Buffer.concat([b('T'), encodeTnetstring({ id: 5 })]), /id: /],
    ['seq negative', Buffer.concat([b('T'), encodeTnetstring({ id: 'a', seq: -1 })]), /seq: /],
    ['header not a pair', Buffer.concat([b('T'), encodeTnetstring({ headers: [['a']] })]), /headers\[0\]/],
    ['more not bool', Buffer.concat([b('T'), encodeTnetstring({ more: 'yes' })]), /more: /],
    ['too many ids', Buffer.concat([b('T'), encodeTnetstring({ id: Array.from({ length: MAX_IDS + 1 }, () => ({ id: 'x' })) })]), /more than/],
    ['method not utf-8', Buffer.concat([b('T'), encodeTnetstring({ method: Buffer.from([0xff]) })]), /method: must be UTF-8/],
  ];
  for (const [name, buf, re] of bad) {
    test(`zhttp: rejects ${name} naming the field`, () => {
      assert.throws(() => decodeZhttpRequest(buf), (e: unknown) => e instanceof ZhttpPacketError && re.test(e.message));
    });
  }
  test('zhttp: every truncated prefix is rejected with a ZhttpPacketError', () => {
    const full = b(REQ_DATA);
    for (let cut = 0; cut < full.length; cut++) {
      assert.throws(() => decodeZhttpRequest(full.subarray(0, cut)), ZhttpPacketError);
    }
  });
  test('zhttp: encoder refuses negative or fractional integers', () => {
    assert.throws(() => encodeZhttpResponse({ ids: [], type: 'data', code: -1 }), ZhttpPacketError);
    assert.throws(() => encodeZhttpResponse({ ids: [], type: 'credit', credits: 1.5 }), ZhttpPacketError);
  });
});
