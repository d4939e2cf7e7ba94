import { spawn } from 'node:child_process';
import { trackChild } from './children.js';

/** One wrk run's summary. */
export interface WrkResult {
  requestsPerSec: number;
  /** Responses with a status outside 2xx/3xx. */
  non2xx: number;
  /** connect/read/write/timeout socket errors summed. */
  socketErrors: number;
  /** Latency percentiles in ms (from --latency). */
  p50Ms: number;
  p99Ms: number;
  raw: string;
}

/** Options for {@link runWrk}. */
export interface WrkOptions {
  url: string;
  connections: number;
  durationSec: number;
  threads?: number;
  /** Extra headers, e.g. { Host: 'example' }. */
  headers?: Record<string, string>;
}

function toMs(value: string, unit: string): number {
  const v = Number(value);
  if (unit === 'us') return v / 1000;
  if (unit === 's') return v * 1000;
  if (unit === 'm') return v * 60_000;
  return v;
}

/** Parses wrk's text report. */
export function parseWrkOutput(raw: string): WrkResult {
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(raw);
  const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(raw);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(raw);
  const lat = (p: string) => {
    const m = new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, 'm').exec(raw);
    return m ? toMs(m[1]!, m[2]!) : NaN;
  };
  return {
    requestsPerSec: rps ? Number(rps[1]) : NaN,
    non2xx: non2xx ? Number(non2xx[1]) : 0,
    socketErrors: sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0,
    p50Ms: lat('50'), p99Ms: lat('99'),
    raw,
  };
}

/**
 * Runs /usr/bin/wrk as a separate process and parses its report. Rejects when wrk is
 * missing or exits non-zero; the run is bounded by wrk's own -d plus a 30 s grace.
 */
export async function runWrk(o: WrkOptions): Promise<WrkResult> {
  const args = [`-t${o.threads ?? 2}`, `-c${o.connections}`, `-d${o.durationSec}s`, '--latency', '--timeout', '5s'];
  for (const [k, v] of Object.entries(o.headers ?? {})) args.push('-H', `${k}: ${v}`);
  args.push(o.url);
  const child = trackChild(spawn('wrk', args, { stdio: ['ignore', 'pipe', 'pipe'] }));
  let out = '';
  child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => { out += d.toString(); });
  const timer = setTimeout(() => child.kill('SIGKILL'), (o.durationSec + 30) * 1000);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (c) => resolve(c));
  });
  clearTimeout(timer);
  if (code !== 0) throw new Error(`wrk exited with ${code}: ${out}`);
  return parseWrkOutput(out);
}
