import http from 'node:http';

/** A client holding an HTTP stream open: what arrived so far, and a way to drop it. */
export interface StreamClient {
  text(): string;
  close(): void;
}

/** GETs `url` and resolves once a 200 head arrived (rejects on another status); the body keeps accumulating. */
export function openStream(url: string): Promise<StreamClient> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('error', () => undefined);
      if (res.statusCode !== 200) reject(new Error(`status ${res.statusCode}`));
      else resolve({ text: () => body, close: () => req.destroy() });
    });
    req.on('error', reject);
  });
}
