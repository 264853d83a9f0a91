/**
 * Closes a TCP (or unix) socket before a checkpoint and resolves only once its file descriptor is
 * gone. `socket.end(callback)` is not enough: its callback fires when our FIN is sent, while the
 * descriptor stays open in FIN_WAIT until the peer closes too — and CRIU refuses to dump a socket
 * in FIN_WAIT, CLOSE_WAIT, LAST_ACK, CLOSING or SYN_SENT just as it refuses an established one.
 * So: end gracefully, wait for 'close', and cut the connection if the peer has not closed its
 * side within `graceMs`.
 */
import type { Socket } from 'node:net';

export interface CloseSocketOptions {
  /** How long the peer has to close its side after our end. Default 1 s; then the socket is destroyed. */
  graceMs?: number;
}

export function closeSocket(socket: Socket, options: CloseSocketOptions = {}): Promise<void> {
  const graceMs = options.graceMs ?? 1_000;
  if (socket.closed) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const cut = setTimeout(() => socket.destroy(), graceMs);
    socket.once('close', () => {
      clearTimeout(cut);
      resolve();
    });
    // A socket that was still connecting has nothing to say goodbye to.
    if (socket.connecting || socket.destroyed) socket.destroy();
    else socket.end();
    // Data the app no longer reads must not hold the close up (a paused socket never sees EOF).
    socket.resume();
  });
}
