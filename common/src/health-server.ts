/**
 * /healthz, /readyz and /metrics, as every Cryo process serves them: the node agent and the
 * controller on a plain HTTP server of their own (createHealthServer), the webhook on its HTTPS
 * server beside /mutate (serveHealth from its express routes: the kube-apiserver reaches it on
 * that one port, docs/adr/0008-webhook-keeps-express.md).
 *
 * /healthz: 200 `ok` while the process lives. /readyz: 200 `ready`, or 503 `not ready: <why>`.
 * /metrics: the Prometheus text of the process's registry.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Metrics } from './metrics.ts';

export interface HealthEndpoints {
  metrics: Metrics;
  /** undefined when ready, else why not (said in /readyz's 503). */
  notReadyReason(): string | undefined;
}

export const HEALTH_PATHS = ['/healthz', '/readyz', '/metrics'] as const;

/** Answers a request for one of HEALTH_PATHS and resolves true; resolves false, having written nothing, for any other path. */
export async function serveHealth(req: IncomingMessage, res: ServerResponse, endpoints: HealthEndpoints): Promise<boolean> {
  const path = req.url?.split('?')[0];
  if (path === '/healthz') {
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' }).end('ok\n');
    return true;
  }
  if (path === '/readyz') {
    const reason = endpoints.notReadyReason();
    res.writeHead(reason === undefined ? 200 : 503, { 'content-type': 'text/plain; charset=utf-8' }).end(reason === undefined ? 'ready\n' : `not ready: ${reason}\n`);
    return true;
  }
  if (path === '/metrics') {
    try {
      const { contentType, body } = await endpoints.metrics.render();
      res.writeHead(200, { 'content-type': contentType }).end(body);
    } catch (error) {
      res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end(`could not render the metrics: ${(error as Error).message}\n`);
    }
    return true;
  }
  return false;
}

/** A plain HTTP server of HEALTH_PATHS alone; any other path is 404 naming them. */
export function createHealthServer(endpoints: HealthEndpoints): Server {
  return createServer((req, res) => {
    void serveHealth(req, res, endpoints).then((served) => {
      if (!served) res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end(`not found: ${HEALTH_PATHS.join(', ')}\n`);
    });
  });
}
