#!/usr/bin/env node
/**
 * The `gripd` command: Pushpin's runner command line, plus --check-config and --logjson.
 * The only place in gripd that calls process.exit. Exit codes: 0 ok, 1 runtime or config
 * error, 2 command-line usage error.
 */
import { createWriteStream, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { formatDiagnostic, type Diagnostic } from '../diagnostic.js';
import { configSearchPaths, loadConfig, parseLogLevelSpec, type Config, type LoadConfigOptions } from '../config/index.js';
import { createLogger } from '../log/index.js';
import { applyHeapSizing } from '../cluster/heap.js';

/** How long a graceful stop may take after SIGINT/SIGTERM before gripd exits with 1 anyway. */
const STOP_DEADLINE_MS = 15_000;
/** Most --route lines accepted; they are parsed once and kept in memory. */
const MAX_ROUTE_ARGS = 1000;
/** Routes used when no config file is found and no --route is given, as Pushpin's stock routes file. */
const DEFAULT_ROUTE_LINES = ['* test'];
/** Error codes of an uncaught exception that concern one connection only; gripd keeps running. */
const CONNECTION_ERROR_CODES = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED', 'ETIMEDOUT', 'ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ERR_STREAM_PREMATURE_CLOSE', 'ERR_STREAM_DESTROYED', 'ERR_STREAM_WRITE_AFTER_END']);

const here = path.dirname(fileURLToPath(import.meta.url));

const HELP = `Usage: gripd [options]

gripd is a GRIP reverse proxy for long-polling, streaming and WebSockets,
compatible with Pushpin's configuration and command line.

Options:
  --config FILE          Config file (pushpin.conf format). Without it gripd
                         tries ./config/pushpin.conf, ./pushpin.conf,
                         ./examples/config/pushpin.conf, /etc/pushpin/pushpin.conf,
                         and otherwise runs on built-in defaults with route "* test".
  --port [ADDR:]PORT     Listen for plain HTTP on this address instead of the
                         configured http_port, https_ports and local_ports.
                         Repeat for several listeners.
  --route LINE           Add a route line (routes file syntax). Repeatable; when
                         given, the routes file is not read.
  --id N                 Instance id, to run several instances on one host:
                         ipc_prefix becomes "pN-" and, for N > 0, ZeroMQ tcp ports
                         and push_in_http_port move by N*10.
  --loglevel LEVEL       0 errors, 1 warnings, 2 info (default), 3 debug.
                         Pushpin's "service:N" items are accepted; the plain N wins.
  --verbose              Same as --loglevel=3.
  --logjson              Log JSON lines (also: GRIPD_LOG_FORMAT=json).
  --logfile FILE         Append log lines to FILE instead of standard output.
  -m, --merge-output     Accepted for Pushpin compatibility (gripd and its workers
                         always share one output).
  --check-config         Validate the config and routes, print every problem as
                         file:line: message, and exit (0 if no errors, 1 otherwise).
  -h, --help             Show this help and exit.
  -v, --version          Print the version and exit.

Environment: GRIPD_WORKER_EXEC_ARGV adds Node.js options to the worker processes
([proxy] workers > 1), e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof". Workers start
with --max-semi-space-size=8 --heap-growing-percent=50 unless those options set them.
The primary accepts client connections and hands them to the workers in turn;
NODE_CLUSTER_SCHED_POLICY=none (with UV_TCP_SINGLE_ACCEPT=1 for an even spread) lets
the workers accept themselves instead (docs/performance.md, "Workers").

Signals: SIGINT/SIGTERM stop gracefully (a second one, or ${STOP_DEADLINE_MS / 1000} s, forces exit 1);
SIGHUP reloads the config and routes (a config with errors is reported and not applied).
`;

interface CliArgs {
  configPath: string | undefined;
  ports: string[];
  routes: string[] | undefined;
  id: number | undefined;
  logLevel: number | undefined;
  logJson: boolean;
  logFile: string | undefined;
  checkConfig: boolean;
}

class UsageError extends Error {}

function readVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(path.resolve(here, '../../../package.json'), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

/** Parses argv (without node and script); throws UsageError. Returns 'help' / 'version' for those. */
function parseCommandLine(argv: string[]): CliArgs | 'help' | 'version' {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        config: { type: 'string' },
        port: { type: 'string', multiple: true },
        route: { type: 'string', multiple: true },
        id: { type: 'string' },
        loglevel: { type: 'string' },
        verbose: { type: 'boolean' },
        logjson: { type: 'boolean' },
        logfile: { type: 'string' },
        'merge-output': { type: 'boolean', short: 'm' },
        'check-config': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
      },
    }));
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  // As Pushpin: --version wins over --help.
  if (values.version) return 'version';
  if (values.help) return 'help';

  let logLevel: number | undefined;
  if (values.loglevel !== undefined) {
    const r = parseLogLevelSpec(values.loglevel);
    if (!r.ok) throw new UsageError(`--loglevel: ${r.error}`);
    logLevel = r.value.level ?? r.value.services['proxy'] ?? r.value.services['handler'] ?? 2;
  }
  if (values.verbose) logLevel = 3;

  let id: number | undefined;
  if (values.id !== undefined) {
    if (!/^\d{1,6}$/.test(values.id.trim())) throw new UsageError(`--id: must be an integer >= 0, got "${values.id}"`);
    id = Number(values.id.trim());
  }
  const routes = values.route;
  if (routes && routes.length > MAX_ROUTE_ARGS) throw new UsageError(`--route: too many (limit ${MAX_ROUTE_ARGS})`);
  if (values.config === '') throw new UsageError('--config: empty file name');

  return {
    configPath: values.config,
    ports: values.port ?? [],
    routes: routes && routes.length > 0 ? routes : undefined,
    id,
    logLevel,
    logJson: values.logjson === true || process.env['GRIPD_LOG_FORMAT'] === 'json',
    logFile: values.logfile,
    checkConfig: values['check-config'] === true,
  };
}

function loadOptions(args: CliArgs): LoadConfigOptions {
  return {
    ...(args.configPath !== undefined ? { configPath: args.configPath } : {}),
    cwd: process.cwd(),
    ports: args.ports,
    ...(args.id !== undefined ? { id: args.id } : {}),
    ...(args.logLevel !== undefined ? { logLevel: args.logLevel } : {}),
  };
}

/** `file:line: message` for errors, `file:line: warning: message` for warnings. */
function formatForUser(d: Diagnostic): string {
  if (d.severity === 'error') return formatDiagnostic(d);
  return formatDiagnostic({ ...d, message: `warning: ${d.message}` });
}

function routeLinesFor(args: CliArgs, config: Config): string[] | undefined {
  if (args.routes) return args.routes;
  return config.file === undefined ? DEFAULT_ROUTE_LINES : undefined;
}

/** Parses the routes gripd would run with; a routes file that cannot be read is an error. */
async function checkRoutes(args: CliArgs, config: Config): Promise<Diagnostic[]> {
  const { parseRoutesText, resolveRouteFiles } = await import('../routes/index.js');
  // Key and certificate files named by routes are read too, as a real start would.
  const withFiles = async (text: string, display: string, baseDir: string): Promise<Diagnostic[]> => {
    const parsed = parseRoutesText(text, display);
    const resolved = await resolveRouteFiles(parsed.routes, baseDir, display);
    return [...parsed.diagnostics, ...resolved.diagnostics];
  };
  const lines = routeLinesFor(args, config);
  if (lines) return withFiles(lines.join('\n'), '--route', process.cwd());
  const file = config.proxy.routesFile;
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return [{ file, line: 0, severity: 'error', message: `cannot read routes file: ${code === 'ENOENT' ? 'file not found' : (e as Error).message}` }];
  }
  return withFiles(text, file, path.dirname(file));
}

async function checkConfig(args: CliArgs): Promise<number> {
  const { config, diagnostics } = await loadConfig(loadOptions(args));
  const all = [...diagnostics];
  // Routes are checked even when the config has errors, so one run shows every problem.
  try {
    all.push(...(await checkRoutes(args, config)));
  } catch (e) {
    all.push({ file: config.proxy.routesFile, line: 0, severity: 'error', message: `cannot check routes: ${(e as Error).message}` });
  }
  for (const d of all) process.stdout.write(formatForUser(d) + '\n');
  const errors = all.filter((d) => d.severity === 'error').length;
  if (errors > 0) {
    process.stdout.write(`configuration has ${errors} error${errors === 1 ? '' : 's'}\n`);
    return 1;
  }
  process.stdout.write(`configuration OK${config.file ? ` (${config.file})` : ' (built-in defaults)'}\n`);
  return 0;
}

async function run(args: CliArgs): Promise<void> {
  const opts = loadOptions(args);
  const first = await loadConfig(opts);
  const logLevel = first.config.runner.logLevel;
  const destination = args.logFile !== undefined ? createWriteStream(path.resolve(args.logFile), { flags: 'a' }) : undefined;
  const logger = createLogger({ level: logLevel, json: args.logJson, ...(destination ? { destination } : {}) });

  const printed = new Set<string>();
  const report = (diagnostics: Diagnostic[]): number => {
    let errors = 0;
    for (const d of diagnostics) {
      const line = formatDiagnostic(d);
      if (d.severity === 'error') {
        errors++;
        logger.error(line);
      } else if (!printed.has(line)) {
        // "Not supported yet" and friends are said once, not again on every reload.
        printed.add(line);
        logger.warn(line);
      }
    }
    return errors;
  };

  if (report(first.diagnostics) > 0) {
    logger.error('configuration has errors; not starting');
    process.exit(1);
  }
  let config = first.config;
  if (config.file === undefined) {
    logger.info(`no configuration file found (tried ${configSearchPaths(process.cwd()).join(' ')}); using built-in defaults and route "* test"`);
  } else if (args.configPath === undefined) {
    logger.info(`using config: ${config.file}`);
  }

  let stopping = false;
  let app: { stop(): Promise<void>; reload(config: Config): Promise<void> } | undefined;

  const shutdown = (code: number): never => {
    logger.flush?.();
    process.exit(code);
  };

  const stop = (why: string, exitCode = 0): void => {
    if (stopping) {
      logger.warn(`${why} again: exiting now`);
      shutdown(1);
    }
    stopping = true;
    logger.info(`${why}: stopping...`);
    const deadline = setTimeout(() => {
      logger.error(`graceful stop took longer than ${STOP_DEADLINE_MS} ms; exiting`);
      shutdown(1);
    }, STOP_DEADLINE_MS);
    void (async () => {
      try {
        await app?.stop();
        clearTimeout(deadline);
        shutdown(exitCode);
      } catch (e) {
        logger.error({ err: (e as Error).message }, 'error while stopping');
        shutdown(1);
      }
    })();
  };

  // Reloads run one at a time; a signal during a reload queues one more.
  let reloading: Promise<void> = Promise.resolve();
  const reload = (): void => {
    reloading = reloading.then(async () => {
      if (stopping || !app) return;
      logger.info('reloading');
      const next = await loadConfig(opts);
      if (report(next.diagnostics) > 0) {
        logger.error('reload: configuration has errors; keeping the running configuration');
        return;
      }
      await app.reload(next.config);
      config = next.config;
    }).catch((e: unknown) => {
      logger.error({ err: (e as Error).message }, 'reload failed; keeping the running configuration');
    });
  };

  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGHUP', reload);
  process.on('unhandledRejection', (reason) => {
    // A rejected promise nobody awaited leaves no half-updated state behind; say so and go on.
    logger.error({ err: reason instanceof Error ? reason.stack : String(reason) }, 'unhandled promise rejection');
  });
  process.on('uncaughtException', (err) => {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== undefined && CONNECTION_ERROR_CODES.has(code)) {
      // A socket without an error handler: only that connection is affected.
      logger.warn({ err: err.message, code }, 'uncaught connection error');
      return;
    }
    logger.fatal({ err: err.stack ?? err.message }, 'uncaught exception; stopping');
    if (!stopping) stop('uncaught exception', 1);
    else shutdown(1);
  });

  try {
    applyHeapSizing();
    const { startGripd } = await import('../main.js');
    const routeLines = routeLinesFor(args, config);
    app = await startGripd({
      config, ...(routeLines ? { routeLines } : {}), logger,
      // Worker processes (workers > 1) build their own logger the same way.
      log: { level: logLevel, json: args.logJson, ...(args.logFile !== undefined ? { file: path.resolve(args.logFile) } : {}) },
    });
  } catch (e) {
    logger.error({ err: (e as Error).stack ?? String(e) }, `gripd failed to start: ${(e as Error).message}`);
    shutdown(1);
  }
  if (stopping) {
    // A signal arrived while starting: stop() saw no app yet, so stop it now.
    await app?.stop();
    shutdown(0);
  }
}

async function main(argv: string[]): Promise<void> {
  let args: CliArgs | 'help' | 'version';
  try {
    args = parseCommandLine(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`gripd: ${e.message}\nTry 'gripd --help' for the list of options.\n`);
    process.exit(2);
  }
  if (args === 'help') {
    process.stdout.write(HELP);
    process.exit(0);
  }
  if (args === 'version') {
    process.stdout.write(`gripd ${readVersion()}\n`);
    process.exit(0);
  }
  if (args.checkConfig) process.exit(await checkConfig(args));
  await run(args);
}

main(process.argv.slice(2)).catch((e: unknown) => {
  process.stderr.write(`gripd: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});

