/**
 * Test helper: an HTTP proxy in front of a registry (the lab's docker-registry, or the fake in
 * test/src/fakes/oci-registry.ts) that records every request and can fail chosen ones: answer a
 * status instead of forwarding, reset the connection before forwarding anything, forward part of
 * the body and then cut both connections (a network failure in mid-chunk, after the registry
 * took some of it), or flip a body byte. The Host header passes unchanged, so the registry's
 * absolute Location headers point at the proxy.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ProxiedRequest {
  method: string;
  path: string;
  contentRange: string | undefined;
}

/** What to do with a request: pass it, answer with a status, reset its connection, cut it after this many body bytes, or flip one body byte. */
export type ProxyFault = 'pass' | 'reset' | { status: number; code?: string; message?: string } | { cutAfterBytes: number } | { flipByte: number };

export interface FaultProxy {
  host: string;
  requests: ProxiedRequest[];
  /** Decides each request's fate; the default passes everything. */
  decide: (req: ProxiedRequest, index: number) => ProxyFault;
  close(): Promise<void>;
}

export async function startFaultProxy(targetPort: number): Promise<FaultProxy> {
  const proxy: FaultProxy = { host: '', requests: [], decide: () => 'pass', close: async () => {} };
  const server = http.createServer((req, res) => {
    const record: ProxiedRequest = { method: req.method ?? '', path: req.url ?? '', contentRange: req.headers['content-range'] };
    const index = proxy.requests.push(record) - 1;
    const fault = proxy.decide(record, index);
    if (fault === 'reset') {
      req.socket.resetAndDestroy();
      return;
    }
    if (typeof fault === 'object' && 'status' in fault) {
      req.resume();
      const error = { code: fault.code ?? 'UNAVAILABLE', message: fault.message ?? 'injected by the fault proxy' };
      res.writeHead(fault.status, { 'content-type': 'application/json' }).end(JSON.stringify({ errors: [error] }));
      return;
    }
    const upstream = http.request({ host: '127.0.0.1', port: targetPort, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    if (fault === 'pass') {
      req.pipe(upstream);
      return;
    }
    if ('flipByte' in fault) {
      let seen = 0;
      req.on('data', (chunk: Buffer) => {
        const at = fault.flipByte - seen;
        if (at >= 0 && at < chunk.length) chunk[at] ^= 0xff;
        seen += chunk.length;
        upstream.write(chunk);
      });
      req.on('end', () => upstream.end());
      return;
    }
    let forwarded = 0;
    req.on('data', (chunk: Buffer) => {
      const room = fault.cutAfterBytes - forwarded;
      if (room > 0) upstream.write(chunk.subarray(0, room));
      forwarded += chunk.length;
      if (forwarded >= fault.cutAfterBytes) {
        // Let the registry take the part it got, then cut both sides.
        setTimeout(() => {
          upstream.destroy();
          req.socket.destroy();
        }, 100);
        req.pause();
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const { port } = server.address() as AddressInfo;
  proxy.host = `127.0.0.1:${port}`;
  proxy.close = () =>
    new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return proxy;
}
