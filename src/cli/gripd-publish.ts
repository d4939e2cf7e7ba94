#!/usr/bin/env node
/**
 * gripd-publish: publishes one item to gripd (or Pushpin), compatible with
 * `pushpin-publish`'s arguments. HTTP(S) specs use the publish API; any other spec is a
 * ZeroMQ PUSH endpoint that receives the item as a tnetstring.
 */
import { parseArgs } from 'node:util';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import {
  buildPublishItem, parseHeaderArg, parseMetaArg, PublishCommandError, type JsonItem,
} from '../publish/build-item.js';

const DEFAULT_SPEC = 'http://localhost:5561';
/** How long to wait for the publish API or the ZeroMQ peer before giving up. */
const PUBLISH_TIMEOUT_MS = 10000;

const HELP = `gripd-publish — publish a message to gripd (or Pushpin)

Usage: gripd-publish [options] <channel> [--] [content]

  content              text for the HTTP body and WebSocket message; @FILE reads a file
Options:
  --id ID              payload ID
  --prev-id ID         previous payload ID
  --sender SENDER      "sender" meta value (for the skip-self filter)
  --code CODE          HTTP response code for long-polls (default 200)
  -H, --header "K: V"  add an HTTP response header (repeatable)
  -M, --meta "K=V"     add a meta variable (repeatable)
  --hint               send a hint instead of content
  --close              close streaming and WebSocket connections
  --patch              content is a JSON Patch array (body-patch)
  --no-seq             bypass the sequencing buffer
  --no-eol             don't add a newline to HTTP payloads
  --spec SPEC          GRIP URL or ZeroMQ PUSH spec (default $GRIP_URL or ${DEFAULT_SPEC})
  -u, --user USER:PASS authenticate with basic auth
  -B, --bearer TOKEN   authenticate with a bearer token
  -h, --help           show this help
  -V, --version        show the version
`;

function fail(message: string, code = 1): never {
  process.stderr.write(`Error: ${message}\n`);
  process.exit(code);
}

async function publishHttp(spec: string, item: JsonItem, auth: string | undefined): Promise<void> {
  let url: URL;
  try {
    url = new URL(spec.replace(/\/+$/, '') + '/publish/');
  } catch {
    throw new PublishCommandError(`invalid URL: ${spec}`);
  }
  const headers: Record<string, string> = { 'Content-Type': 'application/json' };
  if (auth !== undefined) headers['Authorization'] = auth;
  const res = await fetch(url, {
    method: 'POST',
    headers,
    body: JSON.stringify({ items: [item] }),
    signal: AbortSignal.timeout(PUBLISH_TIMEOUT_MS),
  });
  const text = await res.text();
  if (res.status !== 200) throw new PublishCommandError(text.trim() || `HTTP ${res.status}`);
}

/** Turns the JSON form back into bytes for tnetstring: "x-bin" base64 fields become "x" buffers. */
function toTnetForm(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(toTnetForm);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      if ((k === 'body-bin' || k === 'content-bin') && typeof v === 'string') out[k.slice(0, -4)] = Buffer.from(v, 'base64');
      else out[k] = toTnetForm(v);
    }
    return out;
  }
  return value;
}

async function publishZmq(spec: string, item: JsonItem): Promise<void> {
  const { encodeTnetstring } = await import('../zmq/tnetstring.js');
  const zmq = await import('zeromq');
  const sock = new zmq.Push({ sendTimeout: PUBLISH_TIMEOUT_MS, linger: PUBLISH_TIMEOUT_MS });
  try {
    sock.connect(spec);
    await sock.send(encodeTnetstring(toTnetForm(item) as Parameters<typeof encodeTnetstring>[0]));
  } finally {
    sock.close();
  }
}

async function main(): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({
      allowPositionals: true,
      options: {
        id: { type: 'string' }, 'prev-id': { type: 'string' }, sender: { type: 'string' },
        code: { type: 'string', default: '200' },
        header: { type: 'string', short: 'H', multiple: true },
        meta: { type: 'string', short: 'M', multiple: true },
        hint: { type: 'boolean' }, close: { type: 'boolean' }, patch: { type: 'boolean' },
        'no-seq': { type: 'boolean' }, 'no-eol': { type: 'boolean' },
        spec: { type: 'string' }, user: { type: 'string', short: 'u' }, bearer: { type: 'string', short: 'B' },
        help: { type: 'boolean', short: 'h' }, version: { type: 'boolean', short: 'V' },
      },
    });
  } catch (err) {
    fail(`${(err as Error).message}\n\n${HELP}`, 2);
  }
  const { values: v, positionals } = parsed;
  if (v.help) { process.stdout.write(HELP); return; }
  if (v.version) {
    const pkg = createRequire(import.meta.url)('../../../package.json') as { version: string };
    process.stdout.write(`gripd-publish ${pkg.version}\n`);
    return;
  }
  const [channel, contentArg, ...extra] = positionals;
  if (channel === undefined) fail(`missing <channel>\n\n${HELP}`, 2);
  if (extra.length > 0) fail(`unexpected arguments: ${extra.join(' ')}`, 2);
  if (!/^\d+$/.test(v.code ?? '')) fail(`failed to parse code: ${v.code}`);

  let content: Buffer | undefined;
  let fromFile = false;
  if (contentArg !== undefined) {
    if (contentArg.startsWith('@')) {
      const name = contentArg.slice(1);
      try { content = await readFile(name); } catch (err) { fail(`can't read file ${name}: ${(err as Error).message}`); }
      fromFile = true;
    } else {
      content = Buffer.from(contentArg, 'utf8');
    }
  }
  const item = buildPublishItem({
    channel, content, fromFile,
    id: v.id, prevId: v['prev-id'], sender: v.sender,
    code: Number(v.code),
    headers: (v.header ?? []).map(parseHeaderArg),
    meta: (v.meta ?? []).map(parseMetaArg),
    action: v.hint ? 'hint' : v.close ? 'close' : 'send',
    patch: v.patch ?? false, noSeq: v['no-seq'] ?? false, eol: !(v['no-eol'] ?? false),
  });
  const spec = v.spec ?? process.env['GRIP_URL'] ?? DEFAULT_SPEC;
  let auth: string | undefined;
  if (v.user !== undefined) auth = `Basic ${Buffer.from(v.user).toString('base64')}`;
  if (v.bearer !== undefined) auth = `Bearer ${v.bearer}`;
  if (/^https?:/i.test(spec)) await publishHttp(spec, item, auth);
  else await publishZmq(spec, item);
  process.stdout.write('Published\n');
}

main().catch((err: unknown) => fail(err instanceof Error ? err.message : String(err)));
