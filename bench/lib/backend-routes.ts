import type http from 'node:http';

/** Bound on a request body the backend reads before answering (protects the bench process). */
const MAX_BACKEND_BODY_BYTES = 1_000_000;

/**
 * The bench backend's answers, by path. Add a case here to give diff.ts or a scenario a
 * new backend behaviour; every answer is deterministic (no dates, no random bytes).
 *
 * - `/hello` (and any unknown path): 200 `hello world\n`
 * - `/stream?channel=C`: GRIP stream hold on C (body `stream open\n`)
 * - `/sse?channel=C`: GRIP stream hold on C with `text/event-stream`
 * - `/response?channel=C&timeout=S`: GRIP long-poll hold on C, Grip-Timeout S
 * - `/instruct?channel=C`: long-poll hold given as an application/grip-instruct body
 * - `/bad-grip`: an invalid Grip-Hold value
 * - `/echo`: 200 with a JSON body of method, url, selected headers and body length
 * - `/chunked`: a 3-chunk chunked body
 * - `/status/N`: status N with a short body
 * - `/big?bytes=N`: N bytes of 'x' (N <= 1 000 000)
 * - `/headers`: a response with several custom, repeated and hop-by-hop headers
 */
export function handleBackendRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://backend');
  const channel = url.searchParams.get('channel') ?? 'test';
  const p = url.pathname;
  if (p === '/stream') {
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Grip-Hold': 'stream', 'Grip-Channel': channel });
    res.end('stream open\n');
    return;
  }
  if (p === '/sse') {
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Grip-Hold': 'stream', 'Grip-Channel': channel });
    res.end(':ok\n\n');
    return;
  }
  if (p === '/response') {
    res.writeHead(200, {
      'Content-Type': 'text/plain', 'Grip-Hold': 'response', 'Grip-Channel': channel,
      'Grip-Timeout': url.searchParams.get('timeout') ?? '55',
    });
    res.end('timed out\n');
    return;
  }
  if (p === '/instruct') {
    const body = JSON.stringify({
      hold: { mode: 'response', channels: [{ name: channel }], timeout: Number(url.searchParams.get('timeout') ?? '55') },
      response: { code: 200, headers: { 'Content-Type': 'text/plain', 'X-From': 'instruct' }, body: 'instruct timeout\n' },
    });
    res.writeHead(200, { 'Content-Type': 'application/grip-instruct' });
    res.end(body);
    return;
  }
  if (p === '/bad-grip') {
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Grip-Hold': 'sometimes', 'Grip-Channel': channel });
    res.end('bad\n');
    return;
  }
  if (p === '/echo') {
    let n = 0;
    req.on('data', (c: Buffer) => { n += c.length; if (n > MAX_BACKEND_BODY_BYTES) req.destroy(); });
    req.on('end', () => {
      const h = req.headers;
      const pick = ['host', 'content-type', 'content-length', 'transfer-encoding', 'x-forwarded-for', 'x-forwarded-proto', 'grip-feature', 'x-custom', 'connection'];
      const seen: Record<string, string | string[] | undefined> = {};
      for (const k of pick) if (h[k] !== undefined) seen[k] = h[k];
      seen['grip-sig'] = h['grip-sig'] === undefined ? undefined : '(present)';
      const out = JSON.stringify({ method: req.method, url: req.url, headers: seen, bodyBytes: n }) + '\n';
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(out);
    });
    return;
  }
  if (p === '/chunked') {
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    res.write('one\n');
    res.write('two\n');
    res.end('three\n');
    return;
  }
  if (p.startsWith('/status/')) {
    const code = Number(p.slice('/status/'.length));
    const valid = Number.isInteger(code) && code >= 200 && code <= 599;
    res.writeHead(valid ? code : 400, { 'Content-Type': 'text/plain' });
    res.end(valid && code !== 204 && code !== 304 ? `status ${code}\n` : undefined);
    return;
  }
  if (p === '/big') {
    const n = Math.min(MAX_BACKEND_BODY_BYTES, Math.max(0, Number(url.searchParams.get('bytes') ?? '100000') || 0));
    res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': String(n) });
    res.end(Buffer.alloc(n, 0x78));
    return;
  }
  if (p === '/headers') {
    res.setHeader('X-One', '1');
    res.setHeader('X-Multi', ['a', 'b']);
    res.setHeader('Set-Cookie', ['a=1; Path=/', 'b=2; Path=/']);
    res.setHeader('Cache-Control', 'no-cache');
    res.setHeader('Keep-Alive', 'timeout=5');
    res.setHeader('Content-Type', 'text/plain');
    res.end('headers\n');
    return;
  }
  // Drain any request body before answering so keep-alive stays usable.
  req.resume();
  const body = 'hello world\n';
  res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': String(body.length) });
  res.end(body);
}
