/**
 * Connection and activity events for the stats socket, taken from the client listeners:
 * every HTTP request is one Pushpin "connection" (`conn` type http, id
 * `<instance>:<n>`, gone when its response closes) and one unit of `activity` on its
 * route; every WebSocket upgrade is a `conn` of type ws (gone when its socket closes).
 * Events go to `sink.emitStats` only while `sink.statsWanted` is true, so a gripd whose
 * stats socket is off pays one property read per request.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { Route } from '../routes/types.js';
import type { StatsEvent } from './stats.js';

/** Where the events go (the Handler is one). */
export interface StatsSink {
  readonly statsWanted: boolean;
  emitStats(ev: StatsEvent): void;
}

/** Finds the route of a request (the proxy's route table). */
export type StatsRouteLookup = (q: { host: string; path: string; ssl: boolean; proto: 'http' | 'ws' }) => Route | undefined;

/** Pushpin's stats route: the route's id when it was given one, else ''. */
export function statsRoute(route: Route | undefined): string {
  return route !== undefined && route.idExplicit ? route.id : '';
}

/** The peer address as Pushpin prints it (IPv4-mapped IPv6 as plain IPv4). */
export function peerAddressOf(socket: { remoteAddress?: string | undefined }): string | undefined {
  const a = socket.remoteAddress;
  if (a === undefined) return undefined;
  return a.startsWith('::ffff:') && a.includes('.') ? a.slice(7) : a;
}

/**
 * Adds request/upgrade listeners to `servers` (after the proxy's own) that report
 * connections and activity to `sink`. `lookup` is called only when the route table has
 * explicit route ids (`hasRouteIds()`), since only those appear in stats.
 */
export function attachStatsHooks(
  servers: readonly Server[], sink: StatsSink, lookup: StatsRouteLookup, hasRouteIds: () => boolean, instanceId: string,
): void {
  let seq = 0;
  const routeOf = (req: IncomingMessage, ssl: boolean, proto: 'http' | 'ws'): string => {
    if (!hasRouteIds()) return '';
    const hostHeader = req.headers.host ?? '';
    const host = hostHeader.replace(/:[0-9]*$/, '').toLowerCase();
    return statsRoute(lookup({ host, path: req.url ?? '/', ssl, proto }));
  };
  /** One Pushpin "connection": announced now, gone when `closer` closes. */
  const announce = (req: IncomingMessage, proto: 'http' | 'ws', closer: { once(ev: 'close', l: () => void): unknown }): void => {
    const ssl = (req.socket as TLSSocket).encrypted === true;
    const route = routeOf(req, ssl, proto);
    const id = `${instanceId}:${++seq}`;
    const peer = peerAddressOf(req.socket);
    sink.emitStats({ e: 'conn', id, route, connType: proto, ssl, ...(peer !== undefined ? { peerAddress: peer } : {}) });
    sink.emitStats({ e: 'activity', route, count: 1 });
    closer.once('close', () => sink.emitStats({ e: 'disconn', id }));
  };
  for (const server of servers) {
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      if (sink.statsWanted) announce(req, 'http', res);
    });
    // Only where the proxy serves WebSockets: an 'upgrade' listener of our own would
    // otherwise stop Node from refusing upgrades itself.
    if (server.listenerCount('upgrade') > 0) {
      server.on('upgrade', (req: IncomingMessage, socket: Duplex) => {
        if (sink.statsWanted && !socket.destroyed) announce(req, 'ws', socket);
      });
    }
  }
}
