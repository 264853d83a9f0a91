/**
 * The upstream the CRIU fixtures' app talks to (test/criu/fixtures/hooked-service.ts): a line
 * server outside the app's process tree that answers "ping N" with "pong N". It closes its side
 * of a connection `finDelayMs` after the client's FIN, as a busy or distant server does: a hook
 * that reports a socket closed while it still sits in FIN_WAIT then makes the dump fail, here as
 * on a real network, instead of passing by luck of timing.
 */
import net, { type AddressInfo } from 'node:net';

export interface LineEchoUpstream {
  /** host:port, as the fixture's UPSTREAM wants it. */
  readonly address: string;
  /** Connections whose client has not closed its side yet. */
  openConnections(): number;
  close(): Promise<void>;
}

export async function startLineEchoUpstream(host: string, options: { finDelayMs?: number } = {}): Promise<LineEchoUpstream> {
  const finDelayMs = options.finDelayMs ?? 200;
  const connections = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    connections.add(socket);
    socket.setEncoding('utf8');
    socket.on('data', (line: string) => socket.write(line.replace('ping', 'pong')));
    socket.on('end', () => setTimeout(() => socket.end(), finDelayMs).unref());
    socket.on('close', () => connections.delete(socket));
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as AddressInfo;
  return {
    address: `${host}:${port}`,
    openConnections: () => [...connections].filter((s) => !s.readableEnded).length,
    close: async () => {
      for (const socket of connections) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
