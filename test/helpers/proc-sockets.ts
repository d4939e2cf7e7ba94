/**
 * Linux /proc views of TCP sockets, for tests that must know which process holds which
 * socket (node:cluster hands sockets between processes).
 */
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';

/** One row of /proc/net/tcp{,6}: ports, state (hex, `0A` = LISTEN) and socket inode. */
export interface TcpEntry {
  localPort: number;
  remotePort: number;
  state: string;
  inode: string;
}

/** Inodes of the TCP sockets (IPv4 and IPv6) for which `match` is true. */
export function tcpSocketInodes(match: (e: TcpEntry) => boolean): Set<string> {
  const inodes = new Set<string>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try { text = readFileSync(file, 'utf8'); } catch { continue; }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10) continue;
      const port = (addr: string): number => parseInt(addr.slice(addr.lastIndexOf(':') + 1), 16);
      const e: TcpEntry = { localPort: port(f[1]!), remotePort: port(f[2]!), state: f[3]!, inode: f[9]! };
      if (match(e)) inodes.add(e.inode);
    }
  }
  return inodes;
}

/** Whether process `pid` has one of `inodes` open (false if the process is gone). */
export function holdsSocket(pid: number, inodes: Set<string>): boolean {
  let fds: string[] = [];
  try { fds = readdirSync(`/proc/${pid}/fd`); } catch { return false; }
  for (const fd of fds) {
    let link = '';
    try { link = readlinkSync(`/proc/${pid}/fd/${fd}`); } catch { continue; } // closed meanwhile
    const m = /^socket:\[(\d+)\]$/.exec(link);
    if (m && inodes.has(m[1]!)) return true;
  }
  return false;
}
