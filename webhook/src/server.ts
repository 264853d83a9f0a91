/**
 * The webhook's HTTPS server (express): POST /mutate takes AdmissionReview v1; /healthz says the
 * process is alive, /readyz that it can decide admissions (TLS loaded, Checkpoint cache synced),
 * /metrics is Prometheus text. A client's mistake gets 400 with a message; it never crashes us.
 */
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Logger } from '@cryo/common';
import { BadAdmissionReview } from './admission/admission-review.ts';
import type { AdmissionHandler } from './admission/admission-handler.ts';
import type { WebhookMetrics } from './webhook-metrics.ts';

export interface TlsKeyPair {
  cert: string;
  key: string;
}

export interface WebhookServerDeps {
  handleAdmission: AdmissionHandler;
  logger: Logger;
  metrics: WebhookMetrics;
  /** What /readyz reports: undefined when ready, else why not. */
  notReadyReason: () => string | undefined;
  maxBodyBytes: number;
}

export function createWebhookApp(deps: WebhookServerDeps): express.Express {
  const { handleAdmission, logger, metrics } = deps;
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);

  const badRequest = (res: Response, reason: string, message: string) => {
    metrics.badRequests.inc({ reason });
    logger.warn({ reason, message }, 'bad admission request');
    res.status(400).json({ error: message });
  };

  app.post(
    '/mutate',
    (req, res, next) => {
      if (!req.is('application/json')) {
        badRequest(res, 'wrong-content-type', `Content-Type must be application/json, got ${JSON.stringify(req.get('content-type') ?? null)}`);
        return;
      }
      next();
    },
    express.raw({ type: () => true, limit: deps.maxBodyBytes }),
    (req, res, next) => {
      let body: unknown;
      try {
        body = JSON.parse((req.body as Buffer).toString('utf8'));
      } catch (err) {
        badRequest(res, 'not-json', `the body is not valid JSON: ${(err as Error).message}`);
        return;
      }
      handleAdmission(body).then(
        (review) => res.json(review),
        (err: unknown) => {
          if (err instanceof BadAdmissionReview) badRequest(res, err.reason, err.message);
          else next(err);
        },
      );
    },
  );
  app.all('/mutate', (_req, res) => {
    res.status(405).set('allow', 'POST').json({ error: 'use POST with an AdmissionReview' });
  });

  app.get('/healthz', (_req, res) => {
    res.type('text/plain').send('ok');
  });
  app.get('/readyz', (_req, res) => {
    const reason = deps.notReadyReason();
    if (reason === undefined) res.type('text/plain').send('ok');
    else res.status(503).type('text/plain').send(`not ready: ${reason}`);
  });
  app.get('/metrics', (_req, res, next) => {
    metrics.metrics.render().then(({ contentType, body }) => res.type(contentType).send(body), next);
  });
  app.use((req, res) => {
    res.status(404).json({ error: `no route ${req.method} ${req.path}; the webhook serves POST /mutate` });
  });
  // Body-parser errors carry a status (413 too large, 400 aborted...): all are the client's doing.
  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const e = err as { type?: string; status?: number; message?: string };
    if (e.type === 'entity.too.large') {
      badRequest(res, 'too-large', `the body is larger than ${deps.maxBodyBytes} bytes (--max-body-bytes)`);
    } else if (typeof e.status === 'number' && e.status >= 400 && e.status < 500) {
      badRequest(res, e.type ?? 'bad-body', `could not read the body: ${e.message ?? 'unknown error'}`);
    } else {
      logger.error({ err }, 'admission failed');
      res.status(500).json({ error: 'internal error; see the webhook logs' });
    }
  });
  return app;
}

export interface RunningServer {
  server: https.Server;
  port: number;
  /** Swap the serving certificate; connections already open keep theirs. */
  rotate(pair: TlsKeyPair): void;
  close(): Promise<void>;
}

export async function listenHttps(app: express.Express, pair: TlsKeyPair, port: number, host?: string): Promise<RunningServer> {
  const server = https.createServer({ ...pair, minVersion: 'TLSv1.2' }, app);
  // The apiserver keeps connections alive; outlast its idle timeout so it rarely reconnects.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return {
    server,
    port: (server.address() as AddressInfo).port,
    rotate: (next) => server.setSecureContext({ ...next, minVersion: 'TLSv1.2' }),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}
