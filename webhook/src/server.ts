/**
 * The webhook's HTTPS server (express): POST /mutate takes AdmissionReview v1; /healthz says the
 * process is alive, /readyz that it can decide admissions (TLS loaded, Checkpoint cache synced),
 * /metrics is Prometheus text. A client's mistake gets 400 with a message; it never crashes us.
 */
import type { IncomingMessage } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Logger, TlsKeyPair } from '@cryo/common';
import { BadAdmissionReview } from './admission/admission-review.ts';
import type { AdmissionHandler } from './admission/admission-handler.ts';
import type { WebhookMetrics } from './webhook-metrics.ts';

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

  // The hot path reads and answers the body itself: body-parser's async-scope bookkeeping and
  // res.json's extra passes cost more than the admission decision (see the benchmark).
  app.post('/mutate', (req, res, next) => {
    if (!req.is('application/json')) {
      req.resume();
      badRequest(res, 'wrong-content-type', `Content-Type must be application/json, got ${JSON.stringify(req.get('content-type') ?? null)}`);
      return;
    }
    readBody(req, deps.maxBodyBytes).then(
      (raw) => {
        if (raw === undefined) {
          badRequest(res, 'too-large', `the body is larger than ${deps.maxBodyBytes} bytes (--max-body-bytes)`);
          return;
        }
        let body: unknown;
        try {
          body = JSON.parse(raw);
        } catch (err) {
          badRequest(res, 'not-json', `the body is not valid JSON: ${(err as Error).message}`);
          return;
        }
        handleAdmission(body).then(
          (review) => {
            const text = JSON.stringify(review);
            res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
            res.end(text);
          },
          (err: unknown) => {
            if (err instanceof BadAdmissionReview) badRequest(res, err.reason, err.message);
            else next(err);
          },
        );
      },
      (err: unknown) => badRequest(res, 'unreadable-body', `could not read the body: ${(err as Error).message}`),
    );
  });
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
  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    logger.error({ err }, 'admission failed');
    res.status(500).json({ error: 'internal error; see the webhook logs' });
  });
  return app;
}

/** The body as text, or undefined once it passes `limit` bytes (the rest is drained, not kept). */
function readBody(req: IncomingMessage, limit: number): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = declared > limit;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) tooLarge = true;
      if (!tooLarge) chunks.push(chunk);
    });
    req.on('end', () => resolve(tooLarge ? undefined : Buffer.concat(chunks, size).toString('utf8')));
    req.on('error', reject);
    // A client that goes away mid-body: settle, so nothing waits on it forever.
    req.on('close', () => {
      if (!req.complete) reject(new Error('the client closed the connection before sending the whole body'));
    });
  });
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
