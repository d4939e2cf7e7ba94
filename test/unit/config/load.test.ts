import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig, findConfigFile, configSearchPaths, parseIni, DEFAULTS, DEFAULT_LIBDIR, keyStatus } from '../../../src/config/index.js';
import { GRIPD_ONLY_DEFAULTS } from '../../../src/config/schema.js';
import { formatDiagnostic, type Diagnostic } from '../../../src/diagnostic.js';

// Tests run from dist/test/unit/config; fixtures stay in the source tree.
const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../../test/unit/config/fixtures');

let root: string;
let n = 0;
before(async () => { root = await mkdtemp(path.join(os.tmpdir(), 'gripd-config-')); });
after(async () => { await rm(root, { recursive: true, force: true }); });

/** Writes files into a fresh dir; returns the dir. */
async function files(map: Record<string, string>): Promise<string> {
  const dir = path.join(root, `case${++n}`);
  await mkdir(dir, { recursive: true });
  for (const [name, text] of Object.entries(map)) {
    await mkdir(path.dirname(path.join(dir, name)), { recursive: true });
    await writeFile(path.join(dir, name), text);
  }
  return dir;
}

async function load(conf: string, extra: Record<string, string> = {}, opts: Parameters<typeof loadConfig>[0] = {}) {
  const dir = await files({ 'pushpin.conf': conf, ...extra });
  const r = await loadConfig({ configPath: path.join(dir, 'pushpin.conf'), searchPaths: [], ...opts });
  return { ...r, dir, file: path.join(dir, 'pushpin.conf'), lines: r.diagnostics.map(formatDiagnostic) };
}

const errors = (d: Diagnostic[]): string[] => d.filter((x) => x.severity === 'error').map(formatDiagnostic);

describe('config: defaults', () => {
  test('config: the defaults table equals Pushpin\'s shipped pushpin.conf plus gripd-only keys', async () => {
    const stock = parseIni(await readFile(path.join(FIXTURES, 'pushpin-stock.conf'), 'utf8'), 'stock');
    assert.deepEqual(stock.diagnostics, []);
    const fromStock = new Map(stock.entries.map((e) => [`${e.section}/${e.key}`, e.value]));
    const fromTable = new Map<string, string>();
    for (const [section, keys] of Object.entries(DEFAULTS)) {
      for (const [key, raw] of Object.entries(keys)) {
        if (!GRIPD_ONLY_DEFAULTS.includes(`${section}/${key}`)) fromTable.set(`${section}/${key}`, raw);
      }
    }
    assert.deepEqual(fromTable, fromStock);
  });

  test('config: built-in defaults and the stock file give the same Config, without diagnostics', async () => {
    const dir = await files({ 'pushpin.conf': await readFile(path.join(FIXTURES, 'pushpin-stock.conf'), 'utf8') });
    const withFile = await loadConfig({ configPath: path.join(dir, 'pushpin.conf'), searchPaths: [] });
    const builtIn = await loadConfig({ cwd: dir, searchPaths: [] });
    assert.deepEqual(withFile.diagnostics, []);
    assert.deepEqual(builtIn.diagnostics, []);
    assert.equal(builtIn.config.file, undefined);
    assert.equal(withFile.config.file, path.join(dir, 'pushpin.conf'));
    const { file: _f, ...rest } = withFile.config;
    // The one intended difference: the stock file sets message_rate/message_hwm, which gripd
    // honours when a file carries them; its own default is no cap.
    assert.equal(withFile.config.handler.messageRate, 2500);
    assert.equal(withFile.config.handler.messageHwm, 25000);
    assert.equal(builtIn.config.handler.messageRate, undefined);
    assert.equal(builtIn.config.handler.messageHwm, undefined);
    assert.deepEqual({ ...rest, handler: { ...rest.handler, messageRate: undefined, messageHwm: undefined } }, builtIn.config);
  });

  test('config: default values as Pushpin ships them', async () => {
    const dir = await files({});
    const { config } = await loadConfig({ cwd: dir, searchPaths: [] });
    assert.equal(config.dir, dir);
    assert.deepEqual(config.global, {
      libdir: DEFAULT_LIBDIR, rundir: path.join(dir, 'run'), ipcPrefix: 'pushpin-', portOffset: 0,
      statsConnectionTtlS: 120, statsConnectionSend: true,
    });
    assert.deepEqual(config.runner, {
      httpPorts: [{ port: 7999 }], httpsPorts: [], localPorts: [], localListeners: [],
      certsDir: path.join(dir, 'runner', 'certs'), logDir: path.join(dir, 'log'), logLevel: 2,
      clientBufferSize: 8192, clientMaxconn: 50000, allowCompression: false,
    });
    assert.deepEqual({ ...config.proxy, sigKey: Buffer.from(config.proxy.sigKey).toString(), upstreamKey: config.proxy.upstreamKey.length }, {
      routesFile: path.join(dir, 'routes'), debug: false, autoCrossOrigin: false, acceptXForwardedProtocol: false,
      setXForwardedProtocol: 'proto-only', xForwardedFor: { truncate: undefined, append: false },
      xForwardedForTrusted: { truncate: undefined, append: false }, origHeadersNeedMark: [], acceptPushpinRoute: false,
      cdnLoop: '', logFrom: false, logUserAgent: false, sigIss: 'pushpin', sigKey: 'changeme', upstreamKey: 0,
      sockjsUrl: 'http://cdn.jsdelivr.net/sockjs/0.3.4/sockjs.min.js', workers: os.availableParallelism(),
    });
    assert.deepEqual(config.handler, {
      pushInSpec: 'tcp://127.0.0.1:5560', pushInSubSpecs: ['tcp://127.0.0.1:5562'], pushInSubConnect: false,
      pushInHttpAddr: '127.0.0.1', pushInHttpPort: 5561, pushInHttpMaxHeadersSize: 10000, pushInHttpMaxBodySize: 1000000,
      statsSpec: `ipc://${dir}/run/pushpin-stats`, commandSpec: 'tcp://127.0.0.1:5563', messageRate: undefined, messageHwm: undefined,
      messageBlockSize: -1, messageWaitMs: 5000, idCacheTtlS: 60, updateOnFirstSubscription: true,
      connectionSubscriptionMax: 20, subscriptionLingerS: 60, statsSubscriptionTtlS: 60, statsReportIntervalS: 10,
      statsFormat: 'tnetstring', prometheusPort: undefined, prometheusPrefix: '',
    });
  });

  test('config: the result is deeply frozen', async () => {
    const { config } = await load('[runner]\nhttp_port=1234\n');
    assert.ok(Object.isFrozen(config));
    assert.ok(Object.isFrozen(config.runner));
    assert.ok(Object.isFrozen(config.runner.httpPorts));
    assert.ok(Object.isFrozen(config.runner.httpPorts[0]));
    assert.throws(() => { (config.runner as { logLevel: number }).logLevel = 3; });
  });
});

describe('config: finding the file', () => {
  test('config: search order is ./config, ./, ./examples/config, /etc/pushpin', () => {
    assert.deepEqual(configSearchPaths('/w'), ['/w/config/pushpin.conf', '/w/pushpin.conf', '/w/examples/config/pushpin.conf', '/etc/pushpin/pushpin.conf']);
  });

  test('config: findConfigFile returns the first existing file', async () => {
    const dir = await files({ 'pushpin.conf': '', 'examples/config/pushpin.conf': '' });
    const paths = configSearchPaths(dir).slice(0, 3);
    assert.equal(await findConfigFile(dir, paths), path.join(dir, 'pushpin.conf'));
    await writeFile(path.join(dir, 'config-is-a-file'), '');
    await mkdir(path.join(dir, 'config', 'pushpin.conf'), { recursive: true }); // a directory is skipped
    assert.equal(await findConfigFile(dir, paths), path.join(dir, 'pushpin.conf'));
    assert.equal(await findConfigFile(dir, []), undefined);
  });

  test('config: loadConfig uses the search when no configPath is given', async () => {
    const dir = await files({ 'config/pushpin.conf': '[runner]\nhttp_port=8001\n' });
    const { config } = await loadConfig({ cwd: dir, searchPaths: configSearchPaths(dir).slice(0, 3) });
    assert.equal(config.file, path.join(dir, 'config', 'pushpin.conf'));
    assert.equal(config.dir, path.join(dir, 'config'));
    assert.deepEqual(config.runner.httpPorts, [{ port: 8001 }]);
  });

  test('config: a missing --config file is an error naming it', async () => {
    const dir = await files({});
    const r = await loadConfig({ configPath: 'nope.conf', cwd: dir });
    assert.deepEqual(errors(r.diagnostics), [`${path.join(dir, 'nope.conf')}: cannot load config file: file not found`]);
  });
});

describe('config: include and templating', () => {
  test('config: include is relative to the including file; the main file wins', async () => {
    const r = await load('[global]\ninclude=sub/extra.conf\n[proxy]\nsig_iss=main\n', {
      'sub/extra.conf': '[proxy]\nsig_iss=included\ndebug=true\n',
    });
    assert.deepEqual(r.lines, []);
    assert.equal(r.config.proxy.sigIss, 'main');
    assert.equal(r.config.proxy.debug, true);
  });

  test('config: a missing {libdir}/internal.conf (every stock file has it) is quietly accepted', async () => {
    for (const inc of ['{libdir}/internal.conf', 'internal.conf']) {
      const r = await load(`[global]\ninclude=${inc}\n`);
      assert.deepEqual(r.lines, [], inc);
    }
  });

  test('config: {libdir} in include follows [global] libdir', async () => {
    const r = await load('[global]\nlibdir=lib\ninclude={libdir}/internal.conf\n', { 'lib/internal.conf': '[proxy]\ndebug=true\n' });
    assert.deepEqual(r.lines, []);
    assert.equal(r.config.global.libdir, path.join(r.dir, 'lib'));
    assert.equal(r.config.proxy.debug, true);
  });

  test('config: a missing include other than internal.conf is a warning naming file:line', async () => {
    const r = await load('\n[global]\ninclude=other.conf\n');
    assert.deepEqual(r.lines, [`${r.file}:3: include ${path.join(r.dir, 'other.conf')}: file not found`]);
    assert.equal(r.diagnostics[0]!.severity, 'warning');
  });

  test('config: an include inside an included file is ignored with a warning', async () => {
    const r = await load('[global]\ninclude=a.conf\n', { 'a.conf': '[global]\ninclude=b.conf\n' });
    assert.deepEqual(r.lines, [`${path.join(r.dir, 'a.conf')}:2: include inside an included file is ignored`]);
  });

  test('config: diagnostics inside an included file name that file', async () => {
    const r = await load('[global]\ninclude=a.conf\n', { 'a.conf': '[proxy]\ndebug=maybe\n' });
    assert.deepEqual(r.lines, [`${path.join(r.dir, 'a.conf')}:2: [proxy] debug: expected true or false, got "maybe"`]);
  });

  test('config: {rundir}, {ipc_prefix} and {libdir} are replaced in values', async () => {
    const r = await load('[global]\nrundir=/r\nipc_prefix=x-\nlibdir=/l\n[handler]\nstats_spec=ipc://{rundir}/{ipc_prefix}stats\ncommand_spec=ipc://{libdir}/c\n[proxy]\nsig_iss={ipc_prefix}{unknown}\n');
    assert.deepEqual(r.lines, []);
    assert.equal(r.config.handler.statsSpec, 'ipc:///r/x-stats');
    assert.equal(r.config.handler.commandSpec, 'ipc:///l/c');
    assert.equal(r.config.proxy.sigIss, 'x-{unknown}');
  });

  test('config: local_ports may use {rundir} and {ipc_prefix} (as the stock comment shows)', async () => {
    const r = await load('[global]\nrundir=/r\n[runner]\nlocal_ports={rundir}/{ipc_prefix}server?mode=660&user=www&group=web\n');
    assert.deepEqual(r.lines, []);
    assert.deepEqual(r.config.runner.localPorts, ['/r/pushpin-server']);
    assert.deepEqual(r.config.runner.localListeners, [{ path: '/r/pushpin-server', mode: 0o660, user: 'www', group: 'web' }]);
  });
});

describe('config: port_offset and --id', () => {
  test('config: port_offset moves ZeroMQ tcp ports and push_in_http_port, not http_port nor ipc specs', async () => {
    const r = await load('[global]\nport_offset=100\n[runner]\nhttp_port=7999\n');
    assert.deepEqual(r.lines, []);
    assert.equal(r.config.global.portOffset, 100);
    assert.deepEqual(r.config.runner.httpPorts, [{ port: 7999 }]);
    assert.equal(r.config.handler.pushInSpec, 'tcp://127.0.0.1:5660');
    assert.deepEqual(r.config.handler.pushInSubSpecs, ['tcp://127.0.0.1:5662']);
    assert.equal(r.config.handler.commandSpec, 'tcp://127.0.0.1:5663');
    assert.equal(r.config.handler.pushInHttpPort, 5661);
    assert.equal(r.config.handler.statsSpec, `ipc://${r.dir}/run/pushpin-stats`);
  });

  test('config: --id N sets ipc prefix pN- and port offset N*10, replacing port_offset', async () => {
    const r = await load('[global]\nport_offset=5\n', {}, { id: 3 });
    assert.equal(r.config.global.ipcPrefix, 'p3-');
    assert.equal(r.config.global.portOffset, 30);
    assert.equal(r.config.handler.pushInSpec, 'tcp://127.0.0.1:5590');
    assert.equal(r.config.handler.pushInHttpPort, 5591);
    assert.equal(r.config.handler.statsSpec, `ipc://${r.dir}/run/p3-stats`);
    assert.deepEqual(r.config.runner.httpPorts, [{ port: 7999 }]);
  });

  test('config: --id 0 changes the prefix but keeps the configured port_offset (as Pushpin)', async () => {
    const r = await load('[global]\nport_offset=5\n', {}, { id: 0 });
    assert.equal(r.config.global.ipcPrefix, 'p0-');
    assert.equal(r.config.global.portOffset, 5);
  });

  test('config: port_offset pushing a port past 65535 is an error at the port_offset line', async () => {
    const r = await load('[global]\nport_offset=60000\n[handler]\ncommand_spec=tcp://127.0.0.1:6000\n');
    assert.deepEqual(errors(r.diagnostics).sort(), [
      `${r.file}:2: [handler] push_in_spec: port_offset moves "tcp://127.0.0.1:5560" past 65535`,
      `${r.file}:2: [handler] push_in_sub_specs: port_offset moves "tcp://127.0.0.1:5562" past 65535`,
      `${r.file}:2: [handler] push_in_http_port: port_offset moves 5561 past 65535`,
      `${r.file}:4: [handler] command_spec: port_offset moves "tcp://127.0.0.1:6000" past 65535`,
    ].sort());
  });
});

describe('config: --port and listeners', () => {
  test('config: http_port and https_ports take lists of [ADDR:]PORT', async () => {
    const r = await load('[runner]\nhttp_port=7999, 127.0.0.1:8000, [::1]:8001, *:8002\nhttps_ports=443\n');
    assert.deepEqual(r.lines, []);
    assert.deepEqual(r.config.runner.httpPorts, [{ port: 7999 }, { host: '127.0.0.1', port: 8000 }, { host: '::1', port: 8001 }, { port: 8002 }]);
    assert.deepEqual(r.config.runner.httpsPorts, [{ port: 443 }]);
  });

  test('config: --port replaces http_port, https_ports and local_ports', async () => {
    const r = await load('[runner]\nhttp_port=7999\nhttps_ports=443\nlocal_ports=sock\n', {}, { ports: ['8080', '127.0.0.1:8081'] });
    assert.deepEqual(r.lines, []);
    assert.deepEqual(r.config.runner.httpPorts, [{ port: 8080 }, { host: '127.0.0.1', port: 8081 }]);
    assert.deepEqual(r.config.runner.httpsPorts, []);
    assert.deepEqual(r.config.runner.localPorts, []);
  });

  test('config: a bad --port is an error labelled command line', async () => {
    const r = await load('', {}, { ports: ['x'] });
    assert.deepEqual(errors(r.diagnostics), ['command line: --port: invalid port "x" in "x" (expected [ADDR:]PORT)']);
  });

  test('config: no listener at all is an error', async () => {
    const r = await load('[runner]\nhttp_port=\n');
    assert.deepEqual(errors(r.diagnostics), [`${r.file}:2: no server ports configured (set [runner] http_port, https_ports or local_ports)`]);
  });
});

describe('config: relative paths', () => {
  test('config: routesfile, rundir, logdir and local_ports resolve against the config dir', async () => {
    const r = await load('[global]\nrundir=var/run\n[runner]\nlogdir=../logs\nlocal_ports=s.sock\n[proxy]\nroutesfile=conf/routes\n');
    assert.equal(r.config.global.rundir, path.join(r.dir, 'var/run'));
    assert.equal(r.config.runner.logDir, path.resolve(r.dir, '../logs'));
    assert.deepEqual(r.config.runner.localPorts, [path.join(r.dir, 's.sock')]);
    assert.equal(r.config.proxy.routesFile, path.join(r.dir, 'conf/routes'));
  });

  test('config: absolute paths are kept', async () => {
    const r = await load('[global]\nrundir=/tmp/x\n[proxy]\nroutesfile=/etc/r\n');
    assert.equal(r.config.global.rundir, '/tmp/x');
    assert.equal(r.config.proxy.routesFile, '/etc/r');
  });

  test('config: [runner] rundir still works, with a deprecation warning', async () => {
    const r = await load('[runner]\nrundir=old\n');
    assert.equal(r.config.global.rundir, path.join(r.dir, 'old'));
    assert.deepEqual(r.lines, [`${r.file}:2: [runner] rundir is deprecated; put rundir in [global]`]);
  });
});

describe('config: keys', () => {
  test('config: sig_key forms: plain, base64:, file: hex, file: PEM', async () => {
    const pem = '-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n';
    const r = await load('[proxy]\nsig_key=base64:aGVsbG8=\nupstream_key=file:keys/up.hex\n', { 'keys/up.hex': ' 0a0B ff\n'.replace(' ff', 'ff') });
    assert.deepEqual(r.lines, []);
    assert.deepEqual([...r.config.proxy.sigKey], [...Buffer.from('hello')]);
    assert.deepEqual([...r.config.proxy.upstreamKey], [0x0a, 0x0b, 0xff]);
    const p = await load('[proxy]\nsig_key=file:k.pem\nupstream_key=secret\n', { 'k.pem': pem });
    assert.equal(Buffer.from(p.config.proxy.sigKey).toString(), pem);
    assert.equal(Buffer.from(p.config.proxy.upstreamKey).toString(), 'secret');
  });

  test('config: bad key specs are errors naming file, line and key', async () => {
    const r = await load('[proxy]\nsig_key=base64:***\nupstream_key=file:missing.key\n', {});
    assert.deepEqual(errors(r.diagnostics), [
      `${r.file}:2: [proxy] sig_key: invalid base64 after "base64:"`,
      `${r.file}:3: [proxy] upstream_key: cannot read key file ${path.join(r.dir, 'missing.key')}: file not found`,
    ]);
    const h = await load('[proxy]\nsig_key=file:k\n', { k: 'not hex' });
    assert.deepEqual(errors(h.diagnostics), [`${h.file}:2: [proxy] sig_key: key file ${path.join(h.dir, 'k')} is neither PEM nor hex`]);
  });

  test('config: x_forwarded_for rules', async () => {
    const r = await load('[proxy]\nx_forwarded_for=truncate:0,append\nx_forwarded_for_trusted=append\n');
    assert.deepEqual(r.config.proxy.xForwardedFor, { truncate: 0, append: true });
    assert.deepEqual(r.config.proxy.xForwardedForTrusted, { truncate: undefined, append: true });
  });

  test('config: strings, lists, enums and numbers map through', async () => {
    const r = await load([
      '[proxy]', 'set_x_forwarded_protocol=true', 'orig_headers_need_mark=a, b,', 'cdn_loop=gripd', 'workers=2', 'debug=yes',
      '[handler]', 'stats_format=json', 'prometheus_port=127.0.0.1:9100', 'prometheus_prefix=g_', 'message_block_size=1024',
      'push_in_sub_spec=tcp://127.0.0.1:7000', 'update_on_first_subscription=false',
      '[runner]', 'log_level=3', 'client_buffer_size=100000', 'allow_compression=true',
    ].join('\n'));
    assert.deepEqual(r.lines, [`${r.file}:12: [handler] push_in_sub_spec is deprecated; use push_in_sub_specs`]);
    assert.equal(r.config.proxy.setXForwardedProtocol, 'true');
    assert.deepEqual(r.config.proxy.origHeadersNeedMark, ['a', 'b']);
    assert.equal(r.config.proxy.cdnLoop, 'gripd');
    assert.equal(r.config.proxy.workers, 2);
    assert.equal(r.config.proxy.debug, true);
    assert.equal(r.config.handler.statsFormat, 'json');
    assert.equal(r.config.handler.prometheusPort, 9100);
    assert.equal(r.config.handler.prometheusAddr, '127.0.0.1');
    assert.equal(r.config.handler.prometheusPrefix, 'g_');
    assert.equal(r.config.handler.messageBlockSize, 1024);
    assert.deepEqual(r.config.handler.pushInSubSpecs, ['tcp://127.0.0.1:5562', 'tcp://127.0.0.1:7000']);
    assert.equal(r.config.handler.updateOnFirstSubscription, false);
    assert.equal(r.config.runner.logLevel, 3);
    assert.equal(r.config.runner.clientBufferSize, 100000);
    assert.equal(r.config.runner.allowCompression, true);
  });

  test('config: logLevel option overrides log_level; per-service levels warn', async () => {
    const r = await load('[runner]\nlog_level=1,proxy:3\n', {}, { logLevel: 0 });
    assert.equal(r.config.runner.logLevel, 0);
    assert.deepEqual(r.lines, [`${r.file}:2: [runner] log_level: per-service levels (proxy) are not supported yet; using 1 for everything`]);
  });
});

describe('config: malformed values', () => {
  const cases: Array<[string, string, string]> = [
    ['[runner]\nhttp_port=abc', '2', '[runner] http_port: invalid port "abc" in "abc" (expected [ADDR:]PORT)'],
    ['[runner]\nhttp_port=70000', '2', '[runner] http_port: port 70000 is out of range (1-65535) in "70000" (expected [ADDR:]PORT)'],
    ['[runner]\nhttp_port=::1:80', '2', '[runner] http_port: IPv6 addresses need brackets, e.g. [::1]:7999, got "::1:80"'],
    ['[runner]\nhttps_ports=1.2.3.4:', '2', '[runner] https_ports: invalid port "" in "1.2.3.4:" (expected [ADDR:]PORT)'],
    ['[proxy]\ndebug=maybe', '2', '[proxy] debug: expected true or false, got "maybe"'],
    ['[global]\nstats_connection_send=2', '2', '[global] stats_connection_send: expected true or false, got "2"'],
    ['[proxy]\nx_forwarded_for=truncate:x', '2', '[proxy] x_forwarded_for: bad rule "truncate:x": expected a number, got "x"'],
    ['[proxy]\nx_forwarded_for_trusted=prepend', '2', '[proxy] x_forwarded_for_trusted: unknown rule "prepend" (expected truncate:N or append)'],
    ['[proxy]\nset_x_forwarded_protocol=yes', '2', '[proxy] set_x_forwarded_protocol: expected true, proto-only or false, got "yes"'],
    ['[proxy]\nworkers=0', '2', '[proxy] workers: 0 is out of range (1-256)'],
    ['[runner]\nclient_maxconn=lots', '2', '[runner] client_maxconn: expected a number, got "lots"'],
    ['[runner]\nlog_level=loud', '2', '[runner] log_level: log level must be a number >= 0, got "loud"'],
    ['[runner]\nlocal_ports=s?mode=999', '2', '[runner] local_ports: invalid mode "999" (expected octal, e.g. 660) in "s?mode=999"'],
    ['[global]\nport_offset=-1', '2', '[global] port_offset: -1 is out of range (0-60000)'],
    ['[handler]\npush_in_http_port=0', '2', '[handler] push_in_http_port: port 0 is out of range (1-65535)'],
    ['[handler]\nstats_format=xml', '2', '[handler] stats_format: expected tnetstring or json, got "xml"'],
    ['[handler]\nmessage_wait=-5', '2', '[handler] message_wait: -5 is out of range (0-2147483647)'],
    ['[handler]\nprometheus_port=http', '2', '[handler] prometheus_port: invalid port "http" in "http" (expected [ADDR:]PORT)'],
  ];
  for (const [conf, line, message] of cases) {
    test(`config: error for ${conf.replace('\n', ' ')}`, async () => {
      const r = await load(conf + '\n');
      assert.deepEqual(errors(r.diagnostics), [`${r.file}:${line}: ${message}`]);
      assert.ok(r.diagnostics.every((d) => d.severity === 'error'));
    });
  }

  test('config: a tcp spec without a port is an error once port_offset applies', async () => {
    const r = await load('[global]\nport_offset=1\n[handler]\npush_in_spec=tcp://127.0.0.1\n');
    assert.deepEqual(errors(r.diagnostics), [`${r.file}:4: [handler] push_in_spec: tcp spec "tcp://127.0.0.1" has no port`]);
  });
});

describe('config: unknown and unsupported keys', () => {
  test('config: unknown key warns with file:line (and a hint when it belongs elsewhere)', async () => {
    const r = await load('[proxy]\nfrobnicate=1\nhttp_port=80\n');
    assert.deepEqual(r.lines, [`${r.file}:2: unknown key frobnicate in [proxy]`, `${r.file}:3: unknown key http_port in [proxy] (it belongs in [runner])`]);
    assert.ok(r.diagnostics.every((d) => d.severity === 'warning'));
  });

  test('config: unknown section warns once; keys outside sections warn', async () => {
    const r = await load('early=1\n[extras]\na=1\nb=2\n[extras]\n');
    assert.deepEqual(r.lines, [`${r.file}:2: unknown section [extras]; its keys are ignored`, `${r.file}:1: early is outside any section and is ignored`]);
  });

  test('config: a not-yet-supported key is reported once, even when set in main file and include', async () => {
    const r = await load('[global]\ninclude=i.conf\n[handler]\nshare_all=true\n', { 'i.conf': '[handler]\nshare_all=false\n' });
    assert.deepEqual(r.lines, [`${r.file}:4: [handler] share_all is not supported yet and is ignored`]);
  });

  test('config: runner-only and internal keys are accepted silently', async () => {
    const r = await load('[runner]\nservices=condure,pushpin-proxy\ncondure_bin=condure\n[proxy]\nupdates_check=off\nconnmgr_in_specs=ipc://x\n[handler]\nproxy_inspect_specs=ipc://y\n');
    assert.deepEqual(r.lines, []);
  });

  test('config: every key of the stock file is known to the schema', async () => {
    const stock = parseIni(await readFile(path.join(FIXTURES, 'pushpin-stock.conf'), 'utf8'), 'stock');
    for (const e of stock.entries) assert.ok(keyStatus(e.section, e.key), `${e.section}/${e.key}`);
  });

  test('config: Debian\'s /etc/pushpin/pushpin.conf layout loads without errors', async () => {
    const r = await load('[global]\ninclude={libdir}/internal.conf\nrundir=/var/run/pushpin\n[runner]\nservices=condure,pushpin-proxy,pushpin-handler\nhttp_port=7999\nlogdir=/var/log/pushpin\ncondure_bin=condure\n[proxy]\nupdates_check=off\norganization_name=\n');
    assert.deepEqual(r.lines, []);
  });

  test('config: warnings and errors together are all reported', async () => {
    const r = await load('[proxy]\ndebug=maybe\nnope=1\n[runner]\nhttp_port=x\n');
    assert.deepEqual(r.lines.sort(), [
      `${r.file}:2: [proxy] debug: expected true or false, got "maybe"`,
      `${r.file}:3: unknown key nope in [proxy]`,
      `${r.file}:5: [runner] http_port: invalid port "x" in "x" (expected [ADDR:]PORT)`,
    ].sort());
  });
});
