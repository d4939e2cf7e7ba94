import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  parseRouteLine,
  parseRouteLineDetailed,
  RouteLineError,
  idFromCondition,
  MAX_HEADERS_PER_ROUTE,
  MAX_SUBSCRIPTIONS_PER_TARGET,
  type Route,
  type Target,
} from '../../../src/routes/index.js';

const SRC = 'routes:1';
const p = (line: string): Route => parseRouteLine(line, SRC);
const t0 = (line: string): Target => {
  const t = p(line).targets[0];
  assert.ok(t !== undefined);
  return t;
};
const warnings = (line: string): string[] => parseRouteLineDetailed(line, SRC).warnings;

function rejects(line: string, message: string): void {
  assert.throws(
    () => p(line),
    (e: unknown) => e instanceof RouteLineError && e.message === message && e.source === SRC,
  );
}

describe('routes line: condition', () => {
  test('`* test` gives defaults', () => {
    assert.deepEqual(p('* test'), {
      source: SRC,
      domain: '*',
      id: '*,*,*,*',
      idExplicit: false,
      headers: [],
      prefix: '',
      debug: false,
      autoCrossOrigin: false,
      jsonpEnabled: false,
      jsonpDefaultMethod: 'GET',
      noGrip: false,
      session: false,
      origHeaders: false,
      targets: [
        { type: 'test', ssl: false, insecure: false, trustConnectHost: false, overHttp: false, oneEvent: false, subscriptions: [], untrusted: false },
      ],
    } satisfies Route);
  });
  test('exact domain is lowercased, with a warning when it had capitals', () => {
    assert.equal(p('example.com test').domain, 'example.com');
    assert.deepEqual(warnings('example.com test'), []);
    assert.equal(p('Example.COM test').domain, 'example.com');
    assert.match(warnings('Example.COM test')[0] ?? '', /domain 'Example.COM' matched as 'example.com'/);
  });
  test('empty condition: id-only route (both spellings)', () => {
    const a = p(',id=feed test');
    const b = p('id=feed test');
    assert.equal(a.domain, '');
    assert.equal(a.id, 'feed');
    assert.equal(a.idExplicit, true);
    assert.deepEqual(a, b);
  });
  test('proto=http|ws', () => {
    assert.equal(p('*,proto=http test').proto, 'http');
    assert.equal(p('*,proto=ws test').proto, 'ws');
    assert.equal(p('* test').proto, undefined);
  });
  test('ssl=yes|no', () => {
    assert.equal(p('*,ssl=yes test').ssl, true);
    assert.equal(p('*,ssl=no test').ssl, false);
  });
  test('path_beg', () => assert.equal(p('*,path_beg=/api/ test').pathBeg, '/api/'));
  test('id= explicit, and an empty id= falls back to the generated id', () => {
    assert.equal(p('*,id=x test').id, 'x');
    const r = p('*,id= test');
    assert.equal(r.id, '*,*,*,*');
    assert.equal(r.idExplicit, false);
  });
  test('generated id spells ssl as Pushpin does (ssl=no -> "ssl", ssl=yes -> "no-ssl")', () => {
    assert.equal(p('example.com,proto=ws,ssl=no,path_beg=/a test').id, 'example.com,ws,ssl,/a');
    assert.equal(p('*,proto=http,ssl=yes test').id, '*,http,no-ssl,*');
    assert.equal(p(',path_beg=/x test').id, '*,*,*,/x');
    assert.equal(idFromCondition({ domain: 'h' }), 'h,*,*,*');
  });
  test('replace_beg and path_rem', () => {
    const r = p('*,path_beg=/api,replace_beg=/v2 test');
    assert.equal(r.replaceBeg, '/v2');
    assert.equal(p('*,replace_beg= test').replaceBeg, '');
    assert.equal(p('*,path_rem=4 test').pathRem, 4);
    assert.equal(p('*,path_rem=-2 test').pathRem, -2);
  });
  test('path_rem that is not an integer counts as 0 with a warning', () => {
    assert.equal(p('*,path_rem=abc test').pathRem, 0);
    assert.deepEqual(warnings('*,path_rem=abc test'), ["path_rem must be an integer, got 'abc'; treated as 0"]);
  });
  test('as_host, sig_iss, prefix', () => {
    const r = p('*,as_host=backend.local,sig_iss=me,prefix=pre- test');
    assert.equal(r.asHost, 'backend.local');
    assert.equal(r.sigIss, 'me');
    assert.equal(r.prefix, 'pre-');
  });
  test('sig_key forms: plain, base64:, file:, empty', () => {
    assert.deepEqual(p('*,sig_key=secret test').sigKey, new Uint8Array(Buffer.from('secret')));
    assert.deepEqual(p('*,sig_key=base64:c2VjcmV0 test').sigKey, new Uint8Array(Buffer.from('secret')));
    const f = p('*,sig_key=file:keys/k.pem test');
    assert.equal(f.sigKeyFile, 'keys/k.pem');
    assert.equal(f.sigKey, undefined);
    assert.equal(p('*,sig_key= test').sigKey, undefined);
    assert.match(warnings('*,sig_key=base64:a$b test')[0] ?? '', /outside base64/);
  });
  test('header=Name:Value, value left-trimmed, repeatable, in Pushpin order (last written first)', () => {
    assert.deepEqual(p('*,header=X-A:1,"header=X-B:  two words",header=X-C: test').headers, [
      ['X-C', ''],
      ['X-B', 'two words'],
      ['X-A', '1'],
    ]);
    assert.deepEqual(p('*,header=X-A:a:b test').headers, [['X-A', 'a:b']]);
  });
  test('flags: debug aco session no_grip orig_headers', () => {
    const r = p('*,debug,aco,session,no_grip,orig_headers test');
    assert.equal(r.debug, true);
    assert.equal(r.autoCrossOrigin, true);
    assert.equal(r.jsonpEnabled, true);
    assert.equal(r.session, true);
    assert.equal(r.noGrip, true);
    assert.equal(r.origHeaders, true);
  });
  test('flag with a value still counts, with a warning', () => {
    assert.equal(p('*,debug=no test').debug, true);
    assert.deepEqual(warnings('*,debug=no test'), ["route option 'debug' takes no value; '=no' ignored"]);
  });
  test('jsonp options', () => {
    const r = p('*,aco,jsonp_mode=basic,jsonp_cb=cb,jsonp_body=bparam,jsonp_defcb=jpcb test');
    assert.equal(r.jsonpMode, 'basic');
    assert.equal(r.jsonpCallback, 'cb');
    assert.equal(r.jsonpBody, 'bparam');
    assert.equal(r.jsonpDefaultCallback, 'jpcb');
    assert.equal(r.jsonpDefaultMethod, 'POST');
    assert.equal(p('*,jsonp_mode=extended test').jsonpDefaultMethod, 'GET');
    assert.equal(p('*,jsonp_mode=basic,jsonp_defmethod=PUT test').jsonpDefaultMethod, 'PUT');
  });
  test('sockjs, sockjs_as_path, log_level', () => {
    const r = p('*,sockjs=/sockjs,sockjs_as_path=/ws,log_level=3 test');
    assert.equal(r.sockjs, '/sockjs');
    assert.equal(r.sockjsAsPath, '/ws');
    assert.equal(r.logLevel, 3);
    assert.equal(p('*,log_level=x test').logLevel, 0);
  });
  test('a repeated single-valued option uses the last value, with a warning', () => {
    assert.equal(p('*,ssl=yes,ssl=no test').ssl, false);
    assert.deepEqual(warnings('*,ssl=yes,ssl=no test'), ["route option 'ssl' given 2 times; the last one is used"]);
  });
  test('unknown options load with a warning', () => {
    const d = parseRouteLineDetailed('*,bogus=1 test,frob', SRC);
    assert.equal(d.route.targets.length, 1);
    assert.deepEqual(d.warnings, ["unknown route option 'bogus' ignored", "unknown target 'test' option 'frob' ignored"]);
  });
  test('Pushpin example file lines', () => {
    const r = p('*,path_beg=/jsonp-basic,aco,jsonp_mode=basic,jsonp_body=bparam,jsonp_defcb=jpcb,debug origin:80');
    assert.equal(r.pathBeg, '/jsonp-basic');
    assert.deepEqual([r.targets[0]?.host, r.targets[0]?.port], ['origin', 80]);
  });
});

describe('routes line: targets', () => {
  test('host:port', () => {
    const t = t0('* 127.0.0.1:8080');
    assert.deepEqual([t.type, t.host, t.port], ['http', '127.0.0.1', 8080]);
  });
  test('[v6]:port', () => {
    const t = t0('* [::1]:8080');
    assert.deepEqual([t.type, t.host, t.port], ['http', '::1', 8080]);
  });
  test('test', () => assert.equal(t0('* test').type, 'test'));
  test('zhttp/<spec> and zhttpreq/<spec>', () => {
    assert.deepEqual([t0('* zhttp/tcp://127.0.0.1:5000').type, t0('* zhttp/tcp://127.0.0.1:5000').zhttpSpec], ['zhttp', 'tcp://127.0.0.1:5000']);
    assert.deepEqual([t0('* zhttpreq/ipc:///tmp/x').type, t0('* zhttpreq/ipc:///tmp/x').zhttpSpec], ['zhttpreq', 'ipc:///tmp/x']);
    assert.match(warnings('* zhttp/')[0] ?? '', /empty zhttp spec/);
  });
  test('several targets keep their order (failover)', () => {
    assert.deepEqual(p('* a:1 b:2 test').targets.map((t) => t.host ?? t.type), ['a', 'b', 'test']);
  });
  test('target flags: ssl insecure trust_connect_host over_http one_event untrusted', () => {
    const t = t0('* h:443,ssl,insecure,trust_connect_host,over_http,one_event,untrusted');
    assert.deepEqual(
      [t.ssl, t.insecure, t.trustConnectHost, t.overHttp, t.oneEvent, t.untrusted],
      [true, true, true, true, true, true],
    );
    assert.equal(t0('* h:443,ssl=no').ssl, true);
  });
  test('host= and sub= (repeatable, empties dropped)', () => {
    const t = t0('* h:80,host=example.org,sub=a,sub=,sub=b');
    assert.equal(t.hostHeader, 'example.org');
    assert.deepEqual(t.subscriptions, ['a', 'b']);
  });
  test('ipc_file_mode (octal), client_cert, client_key', () => {
    const t = t0('* zhttp/ipc:///x,ipc_file_mode=660,client_cert=c.pem,client_key=k.pem');
    assert.equal(t.ipcFileMode, 0o660);
    assert.equal(t.clientCertFile, 'c.pem');
    assert.equal(t.clientKeyFile, 'k.pem');
    assert.equal(t0('* zhttp/ipc:///x,ipc_file_mode=9').ipcFileMode, undefined);
  });
  test('port edge values', () => {
    assert.equal(t0('* h:1').port, 1);
    assert.equal(t0('* h:65535').port, 65535);
    assert.equal(t0('* h:+80').port, 80);
  });
  test('empty host loads with a warning (Pushpin accepts it)', () => {
    assert.equal(t0('* :80').host, '');
    assert.deepEqual(warnings('* :80'), ["target ':80' has an empty host"]);
  });
});

describe('routes line: errors', () => {
  const BAD_FORMAT = (v: string): string =>
    `target '${v}' has a bad format: expected host:port, [v6addr]:port, test, zhttp/<spec> or zhttpreq/<spec>`;
  test('blank line', () => rejects('  # nothing', 'no route on this line (it is blank or a comment)'));
  test('missing target', () => rejects('*,debug', 'missing target: a route needs a condition and at least one target'));
  test('missing target with a tab hint', () => {
    rejects('*\t127.0.0.1:80', 'missing target: a route needs a condition and at least one target (tabs do not separate fields; use spaces)');
  });
  test('bad proto', () => rejects('*,proto=wss test', "proto must be 'http' or 'ws', got 'wss'"));
  test('bad ssl', () => rejects('*,ssl=true test', "ssl must be 'yes' or 'no', got 'true'"));
  test('empty path_beg', () => rejects('*,path_beg= test', 'path_beg cannot be empty'));
  test('bad jsonp_mode', () => rejects('*,jsonp_mode=full test', "jsonp_mode must be 'basic' or 'extended', got 'full'"));
  test('header without colon or name', () => {
    rejects('*,header=X-A test', "header must be 'name:value', got 'X-A'");
    rejects('*,header=:v test', "header must be 'name:value', got ':v'");
  });
  test('target without port', () => rejects('* localhost', BAD_FORMAT('localhost')));
  test('v6 target without port', () => rejects('* [::1]', BAD_FORMAT('[::1]')));
  test('bad ports', () => {
    rejects('* h:0', "target 'h:0' has an invalid port '0' (must be 1-65535)");
    rejects('* h:65536', "target 'h:65536' has an invalid port '65536' (must be 1-65535)");
    rejects('* h:http', "target 'h:http' has an invalid port 'http' (must be 1-65535)");
    rejects('* h:', "target 'h:' has an invalid port '' (must be 1-65535)");
    rejects('* ::1:80', "target '::1:80' has an invalid port ':1:80' (must be 1-65535)");
  });
  test('too many headers', () => {
    const line = '*' + ',header=X:1'.repeat(MAX_HEADERS_PER_ROUTE + 1) + ' test';
    rejects(line, `too many header options: ${MAX_HEADERS_PER_ROUTE + 1} (limit ${MAX_HEADERS_PER_ROUTE})`);
  });
  test('too many subs', () => {
    const line = '* test' + ',sub=a'.repeat(MAX_SUBSCRIPTIONS_PER_TARGET + 1);
    rejects(line, `too many sub options on target 'test': ${MAX_SUBSCRIPTIONS_PER_TARGET + 1} (limit ${MAX_SUBSCRIPTIONS_PER_TARGET})`);
  });
  test('tokenizer errors pass through', () => rejects('* "test', 'unterminated quoted section starting at column 3'));
});

describe('routes line: hostile input', () => {
  test('random strings throw only RouteLineError', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (s) => {
        try {
          parseRouteLine(s, SRC);
        } catch (e) {
          return e instanceof RouteLineError;
        }
        return true;
      }),
      { numRuns: 2000 },
    );
  });
  test('random lines built from routes alphabet throw only RouteLineError', () => {
    const ch = fc.constantFrom(...'* ,="\\#:[]/abhtsp01=_\t'.split(''), 'proto=', 'ssl', 'path_beg=', 'header=', 'test', 'zhttp/', 'h:80');
    fc.assert(
      fc.property(fc.array(ch, { maxLength: 40 }), (parts) => {
        try {
          const r = parseRouteLine(parts.join(''), SRC);
          return r.targets.length >= 1;
        } catch (e) {
          return e instanceof RouteLineError;
        }
      }),
      { numRuns: 3000 },
    );
  });
});
