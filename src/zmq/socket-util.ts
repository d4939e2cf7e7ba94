import type * as zmq from 'zeromq';

/** A ZeroMQ endpoint could not be bound or connected; names the setting and the spec. */
export class ZmqSetupError extends Error {
  override name = 'ZmqSetupError';
  constructor(
    readonly setting: string,
    readonly spec: string,
    cause: unknown,
  ) {
    super(`${setting}: cannot use ${spec}: ${(cause as Error)?.message ?? String(cause)}`, { cause });
  }
}

/**
 * Binds (or connects) `sock` to each spec. On failure closes the socket and throws a
 * ZmqSetupError naming `setting` (the pushpin.conf key) and the spec.
 */
export async function setupSocket(sock: zmq.Socket, specs: readonly string[], bind: boolean, setting: string): Promise<void> {
  for (const spec of specs) {
    try {
      if (bind) await sock.bind(spec);
      else sock.connect(spec);
    } catch (e) {
      sock.close();
      throw new ZmqSetupError(setting, spec, e);
    }
  }
}

/** True for the errors a receive loop sees when its socket is closed under it. */
export function isClosedError(e: unknown): boolean {
  const code = (e as { code?: string })?.code;
  return code === 'EAGAIN' || code === 'ETERM' || code === 'ENOTSOCK' || code === 'EBADF';
}
