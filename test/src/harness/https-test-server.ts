/**
 * Test helpers: a real HTTPS server serving a key pair, and a client call that reports which
 * certificate it saw and on which socket, so tests can tell a rotated certificate from an old one
 * and a reused keep-alive connection from a new one.
 */
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import type { TlsKeyPair } from '@cryo/common';
import { httpsRequest } from './https-request.ts';

export interface TestHttpsServer {
  server: https.Server;
  port: number;
  close(): Promise<void>;
}

export async function startHttpsServer(pair: TlsKeyPair): Promise<TestHttpsServer> {
  const server = https.createServer({ ...pair, keepAliveTimeout: 30_000 }, (_req, res) => {
    res.end('ok');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    server,
    port: (server.address() as AddressInfo).port,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export interface CallResult {
  status: number;
  /** Serial of the certificate the server presented on this connection. */
  serial: string;
  socket: TLSSocket;
}

export interface CallOptions {
  port: number;
  /** The only CA the client trusts. */
  ca: string;
  servername: string;
  /** A fresh connection each call when absent. */
  agent?: https.Agent;
}

/** GET / through httpsRequest, reporting the certificate serial and the socket. */
export async function callServer(options: CallOptions): Promise<CallResult> {
  const res = await httpsRequest({ ...options, agent: options.agent ?? false }, 'GET', '/');
  return { status: res.status, serial: res.peerSerial ?? '', socket: res.socket };
}
