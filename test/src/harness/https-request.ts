/**
 * A tiny HTTPS client for tests and benchmarks: trusts exactly the CA it is given and checks the
 * server name, as the kube-apiserver does when it calls a webhook.
 */
import https from 'node:https';
import type { TLSSocket } from 'node:tls';

export interface HttpsTarget {
  port: number;
  ca: string;
  /** The name the certificate must carry, e.g. cryo-webhook.cryo-system.svc. */
  servername: string;
  /** Connection reuse; the global agent when absent, `false` for a fresh connection each time. */
  agent?: https.Agent | false;
}

export interface HttpsResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json<T = unknown>(): T;
  peerSerial?: string;
  /** The connection that carried the answer (to tell a reused keep-alive socket from a new one). */
  socket: TLSSocket;
}

export function httpsRequest(
  target: HttpsTarget,
  method: string,
  path: string,
  body?: string | Buffer,
  headers: Record<string, string> = {},
): Promise<HttpsResponse> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: '127.0.0.1',
        port: target.port,
        method,
        path,
        ca: target.ca,
        servername: target.servername,
        agent: target.agent,
        headers: body === undefined ? headers : { 'content-length': Buffer.byteLength(body), ...headers },
      },
      (res) => {
        // The socket is detached once the body ends (keep-alive): read the certificate now.
        const socket = res.socket as TLSSocket;
        const peerSerial = socket.getPeerCertificate().serialNumber;
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            text,
            json: <T>() => JSON.parse(text) as T,
            peerSerial,
            socket,
          });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

export const postJson = (target: HttpsTarget, path: string, value: unknown) =>
  httpsRequest(target, 'POST', path, JSON.stringify(value), { 'content-type': 'application/json' });
