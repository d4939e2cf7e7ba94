/**
 * A complete in-memory Config for tests that start components directly (without the
 * CLI): Pushpin's shipped defaults, no listeners unless given, with overrides per section.
 */
import { tmpdir } from 'node:os';
import type { Config } from '../../src/config/types.js';

export interface ConfigOverrides {
  runner?: Partial<Config['runner']>;
  proxy?: Partial<Config['proxy']>;
  handler?: Partial<Config['handler']>;
  global?: Partial<Config['global']>;
}

/** Builds a frozen-shape (not frozen) Config with Pushpin's defaults and `o` applied. */
export function testConfig(o: ConfigOverrides = {}): Config {
  const dir = tmpdir();
  return {
    dir,
    global: {
      libdir: dir, rundir: dir, ipcPrefix: 'gripd-test-', portOffset: 0,
      statsConnectionTtlS: 120, statsConnectionSend: false,
      ...o.global,
    },
    runner: {
      httpPorts: [], httpsPorts: [], localPorts: [],
      certsDir: dir, logDir: dir, logLevel: 2,
      clientBufferSize: 8192, clientMaxconn: 50000, allowCompression: false,
      ...o.runner,
    },
    proxy: {
      routesFile: `${dir}/routes`, debug: false, autoCrossOrigin: false,
      acceptXForwardedProtocol: false, setXForwardedProtocol: 'false',
      xForwardedFor: { truncate: undefined, append: false },
      xForwardedForTrusted: { truncate: undefined, append: false },
      origHeadersNeedMark: [], acceptPushpinRoute: false, cdnLoop: '',
      logFrom: false, logUserAgent: false,
      sigIss: 'pushpin', sigKey: Buffer.from('changeme'), upstreamKey: new Uint8Array(0),
      sockjsUrl: 'http://cdn.jsdelivr.net/sockjs/0.3.4/sockjs.min.js', workers: 1,
      ...o.proxy,
    },
    handler: {
      pushInSpec: '', pushInSubSpecs: [], pushInSubConnect: false,
      pushInHttpAddr: '127.0.0.1', pushInHttpPort: 0, pushInHttpMaxHeadersSize: 10000, pushInHttpMaxBodySize: 1000000,
      statsSpec: '', commandSpec: '', messageRate: undefined, messageHwm: undefined, messageBlockSize: 0, messageWaitMs: 5000,
      idCacheTtlS: 60, updateOnFirstSubscription: false, connectionSubscriptionMax: 20,
      subscriptionLingerS: 60, statsSubscriptionTtlS: 60, statsReportIntervalS: 10, statsFormat: 'tnetstring',
      prometheusPort: undefined, prometheusPrefix: '',
      ...o.handler,
    },
  };
}
