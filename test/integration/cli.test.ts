import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { GRIPD_BIN, startGripd } from '../helpers/gripd.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const VERSION = (JSON.parse(readFileSync(path.resolve(here, '../../../package.json'), 'utf8')) as { version: string }).version;
/** Bound on any one CLI run; a hung process fails the test instead of the suite. */
const RUN_DEADLINE_MS = 30_000;

interface Run { code: number | null; stdout: string; stderr: string }

function gripd(args: string[], cwd?: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [GRIPD_BIN, ...args], { cwd: cwd ?? os.tmpdir(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    proc.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const timer = setTimeout(() => { proc.kill('SIGKILL'); reject(new Error(`gripd ${args.join(' ')} did not exit:\n${stdout}${stderr}`)); }, RUN_DEADLINE_MS);
    proc.once('error', reject);
    proc.once('exit', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
  });
}

let dir: string;
before(async () => { dir = await mkdtemp(path.join(os.tmpdir(), 'gripd-cli-')); });
after(async () => { await rm(dir, { recursive: true, force: true }); });

async function conf(name: string, text: string, routes?: string): Promise<string> {
  const sub = path.join(dir, name);
  await (await import('node:fs/promises')).mkdir(sub, { recursive: true });
  await writeFile(path.join(sub, 'pushpin.conf'), text);
  if (routes !== undefined) await writeFile(path.join(sub, 'routes'), routes);
  return path.join(sub, 'pushpin.conf');
}

describe('cli: informational options', () => {
  test('cli: --help documents every option and exits 0', async () => {
    const r = await gripd(['--help']);
    assert.equal(r.code, 0);
    for (const opt of ['--config', '--port', '--route', '--id', '--loglevel', '--verbose', '--logjson', '--logfile', '--merge-output', '--check-config', '--help', '--version']) {
      assert.ok(r.stdout.includes(opt), `help mentions ${opt}`);
    }
    for (const env of ['GRIPD_LOG_FORMAT', 'GRIPD_WORKER_EXEC_ARGV', 'NODE_CLUSTER_SCHED_POLICY']) assert.ok(r.stdout.includes(env), `help mentions ${env}`);
  });

  test('cli: --version prints gripd and the package version', async () => {
    const r = await gripd(['--version']);
    assert.equal(r.code, 0);
    assert.equal(r.stdout, `gripd ${VERSION}\n`);
  });

  test('cli: an unknown option is a usage error, exit 2', async () => {
    const r = await gripd(['--frobnicate']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^gripd: Unknown option '--frobnicate'/);
    assert.match(r.stderr, /gripd --help/);
  });

  test('cli: a positional argument, a bad --id and a bad --loglevel are usage errors, exit 2', async () => {
    assert.equal((await gripd(['extra'])).code, 2);
    const id = await gripd(['--id', '-1']);
    assert.equal(id.code, 2);
    const idx = await gripd(['--id', 'x']);
    assert.equal(idx.code, 2);
    assert.match(idx.stderr, /--id: must be an integer >= 0, got "x"/);
    const ll = await gripd(['--loglevel', 'loud']);
    assert.equal(ll.code, 2);
    assert.match(ll.stderr, /--loglevel: log level must be a number >= 0, got "loud"/);
  });
});

describe('cli: --check-config', () => {
  test('cli: a good config and routes file: "configuration OK", exit 0', async () => {
    const file = await conf('good', '[runner]\nhttp_port=7999\n', '* test\nexample.com 127.0.0.1:8080\n');
    const r = await gripd(['--check-config', '--config', file]);
    assert.equal(r.stdout, `configuration OK (${file})\n`);
    assert.equal(r.code, 0);
  });

  test('cli: warnings are printed but do not fail the check', async () => {
    const file = await conf('warn', '[proxy]\nfrobnicate=1\n', '* test\n');
    const r = await gripd(['--check-config', '--config', file]);
    assert.equal(r.code, 0);
    assert.equal(r.stdout, `${file}:2: warning: unknown key frobnicate in [proxy]\nconfiguration OK (${file})\n`);
  });

  test('cli: a bad config value: file:line: message for each error, exit 1', async () => {
    const file = await conf('bad', '[runner]\nhttp_port=abc\n[proxy]\ndebug=maybe\n', '* test\n');
    const r = await gripd(['--check-config', '--config', file]);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, [
      `${file}:2: [runner] http_port: invalid port "abc" in "abc" (expected [ADDR:]PORT)`,
      `${file}:4: [proxy] debug: expected true or false, got "maybe"`,
      'configuration has 2 errors',
      '',
    ].join('\n'));
  });

  test('cli: a bad routes line: routes:N: message, exit 1', async () => {
    const file = await conf('badroutes', '', '* test\n\nexample.com 127.0.0.1:notaport\n');
    const r = await gripd(['--check-config', '--config', file]);
    assert.equal(r.code, 1);
    assert.match(r.stdout, new RegExp(`^${path.join(path.dirname(file), 'routes').replace(/[.]/g, '\\.')}:3: .+`, 'm'));
    assert.match(r.stdout, /configuration has 1 error\n$/);
  });

  test('cli: --route lines are checked instead of the routes file', async () => {
    const file = await conf('cliroutes', '', 'this line is bad\n');
    const ok = await gripd(['--check-config', '--config', file, '--route', '* test']);
    assert.equal(ok.code, 0, ok.stdout);
    const bad = await gripd(['--check-config', '--config', file, '--route', '* test', '--route', '* 127.0.0.1:0']);
    assert.equal(bad.code, 1);
    assert.match(bad.stdout, /^--route:2: /m);
  });

  test('cli: a missing routes file is an error', async () => {
    const file = await conf('noroutes', '');
    const r = await gripd(['--check-config', '--config', file]);
    assert.equal(r.code, 1);
    assert.match(r.stdout, new RegExp(`routes: cannot read routes file: file not found`));
  });

  test('cli: a missing --config file is an error', async () => {
    const r = await gripd(['--check-config', '--config', path.join(dir, 'nope.conf')]);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /nope\.conf: cannot load config file: file not found/);
  });

  test('cli: config found by Pushpin\'s search order from the working directory', async () => {
    const file = await conf('search/config', '[proxy]\nrouteszzz=1\n');
    await writeFile(path.join(path.dirname(file), 'routes'), '* test\n');
    const r = await gripd(['--check-config'], path.join(dir, 'search'));
    assert.equal(r.code, 0, r.stdout);
    assert.match(r.stdout, /configuration OK \(.*search\/config\/pushpin\.conf\)/);
  });

  test('cli: a bad --port is reported as a command line error', async () => {
    const file = await conf('badport', '', '* test\n');
    const r = await gripd(['--check-config', '--config', file, '--port', 'nope']);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^command line: --port: invalid port "nope"/m);
  });
});

describe('cli: running', () => {
  // The server side lands in other modules; run these once the compiled proxy exists.
  const ready = existsSync(path.resolve(path.dirname(GRIPD_BIN), '../proxy/index.js'));

  test('cli: a config with errors does not start, exit 1 with each error logged', async () => {
    const file = await conf('runbad', '[runner]\nhttp_port=abc\n', '* test\n');
    const r = await gripd(['--config', file]);
    assert.equal(r.code, 1);
    assert.ok(r.stdout.includes(`${file}:2: [runner] http_port: invalid port "abc"`), r.stdout);
  });

  test('cli: gripd --config X starts, answers on its port, reloads on SIGHUP and exits 0 on SIGTERM', { skip: !ready && 'proxy not built yet' }, async () => {
    const g = await startGripd({ routes: ['* test'] });
    try {
      const res = await fetch(`${g.url}/`);
      assert.equal(res.status, 200);
      await res.text();
      g.proc.kill('SIGHUP');
      const deadline = Date.now() + 10_000;
      while (!/reload/i.test(g.output()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      assert.match(g.output(), /reload/i);
      const again = await fetch(`${g.url}/`);
      assert.equal(again.status, 200);
      await again.text();
    } finally {
      const code = await g.stop('SIGTERM');
      assert.equal(code, 0, g.output());
    }
  });

  test('cli: --logjson prints JSON lines', { skip: !ready && 'proxy not built yet' }, async () => {
    const g = await startGripd({ args: ['--logjson'] });
    const code = await g.stop('SIGINT');
    assert.equal(code, 0, g.output());
    const lines = g.output().split('\n').filter((l) => l.trim() !== '');
    assert.ok(lines.length > 0);
    for (const l of lines) assert.doesNotThrow(() => JSON.parse(l), l);
  });
});
