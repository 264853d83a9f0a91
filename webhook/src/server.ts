/**
 * The webhook's HTTPS server (express): POST /mutate takes AdmissionReview v1; /healthz says the
 * process is alive, /readyz that it can decide admissions (TLS loaded, Checkpoint cache synced),
 * /metrics is Prometheus text. A client's mistake gets 400 with a message (413 for a body over
 * --max-body-bytes); it never crashes us. A 500 means a bug of ours. With --client-ca-file,
 * /mutate answers a client without a verified certificate 401, one of another name 403.
 */
import type { IncomingMessage } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import express, { type NextFunction, type Request, type Response } from 'express';
import { HEALTH_PATHS, serveHealth, type Logger, type TlsKeyPair } from '@cryo/common';
import { BadAdmissionReview } from './admission/admission-review.ts';
import type { AdmissionHandler } from './admission/admission-handler.ts';
import { clientRefusal, type ClientAuth } from './tls/client-auth.ts';
import type { WebhookMetrics } from './webhook-metrics.ts';

export interface WebhookServerDeps {
  handleAdmission: AdmissionHandler;
  logger: Logger;
  metrics: WebhookMetrics;
  /** What /readyz reports: undefined when ready, else why not. */
  notReadyReason: () => string | undefined;
  maxBodyBytes: number;
  /** Client certificates /mutate requires; any client is answered when absent. */
  clientAuth?: ClientAuth;
}

export function createWebhookApp(deps: WebhookServerDeps): express.Express {
  const { handleAdmission, logger, metrics } = deps;
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);

  const badRequest = (res: Response, reason: string, message: string, status = 400, extra: { log?: object; body?: object } = {}) => {
    metrics.badRequests.inc({ reason });
    logger.warn({ reason, message, status, ...extra.log }, 'bad admission request');
    res.status(status).json({ error: message, ...extra.body });
  };

  // The hot path reads and answers the body itself: body-parser's async-scope bookkeeping and
  // res.json's extra passes cost more than the admission decision (see the benchmark).
  app.post('/mutate', (req, res, next) => {
    // Before anything of the body is read: a client that may not ask learns nothing else.
    const refusal = deps.clientAuth && clientRefusal(req.socket as TLSSocket, deps.clientAuth.allowedNames);
    if (refusal) {
      discardBody(req, deps.maxBodyBytes + DRAIN_BYTES);
      badRequest(res, refusal.reason, refusal.message, refusal.status, {
        log: { client: req.socket.remoteAddress, names: refusal.names },
        // Also a metav1.Status: a kube-apiserver that is refused then shows this message in its
        // error ("failed calling webhook …: failed to call webhook: <message>"), not "unknown".
        body: { kind: 'Status', apiVersion: 'v1', status: 'Failure', code: refusal.status, reason: refusal.status === 401 ? 'Unauthorized' : 'Forbidden', message: refusal.message },
      });
      return;
    }
    if (!req.is('application/json')) {
      discardBody(req, deps.maxBodyBytes + DRAIN_BYTES);
      const type = req.get('content-type') ?? null;
      badRequest(res, 'wrong-content-type', `Content-Type must be application/json, got ${JSON.stringify(type === null ? null : type.slice(0, 100))}`);
      return;
    }
    readBody(req, deps.maxBodyBytes).then(
      (raw) => {
        if (raw === undefined) {
          // A body declared too long even to drain (see DRAIN_BYTES) will be cut off: say so, lest
          // the client send its next request on a connection about to close.
          if (Number(req.headers['content-length']) > deps.maxBodyBytes + DRAIN_BYTES) res.setHeader('connection', 'close');
          badRequest(
            res,
            'too-large',
            `the body is larger than ${deps.maxBodyBytes} bytes, the most this webhook accepts; ` +
              'if pods in this cluster are that large, raise --max-body-bytes',
            413,
          );
          return;
        }
        if (raw.length > SCAN_DEPTH_ABOVE && nestingDepth(raw, MAX_BODY_DEPTH) > MAX_BODY_DEPTH) {
          badRequest(res, 'too-deep', `the body nests more than ${MAX_BODY_DEPTH} levels deep; no AdmissionReview does`);
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

  // The same probes and metrics as the other processes serve, on this server's one port.
  app.get([...HEALTH_PATHS], (req, res, next) => {
    serveHealth(req, res, { metrics: metrics.metrics, notReadyReason: deps.notReadyReason }).catch(next);
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

/**
 * Deepest nesting of a body worth parsing. An AdmissionReview nests the pod 3 levels down
 * (review, request, object) and a Pod's schema goes some 20 deeper; pod-shape.ts refuses pods
 * past 64. JSON.parse takes about 0.5 µs per level of nesting, ten times its cost per byte of a
 * flat body: a 4 MiB body of brackets would take a second of CPU, the scan below 20 ms.
 */
const MAX_BODY_DEPTH = 128;
/** Smaller bodies are parsed unscanned: at most 8,192 levels, a few ms. */
const SCAN_DEPTH_ABOVE = 16 * 1024;

/**
 * How deep the JSON text nests (brackets and braces outside strings), counting no further than
 * just past `limit`. A linear scan; for text that is not JSON the answer means nothing, and
 * JSON.parse refuses the text anyway.
 */
export function nestingDepth(text: string, limit = Infinity): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > deepest) {
        deepest = depth;
        if (deepest > limit) return deepest;
      }
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
  return deepest;
}

/**
 * After a refusal, how much more of the body is read (and dropped) before the connection is cut.
 * Closing a socket with unread data in it resets the connection, and the client may never see
 * the answer; so a body a little over the limit is drained and the connection kept, one far over
 * it (or that never ends) is cut once this much more has come. Nothing drained is kept.
 */
const DRAIN_BYTES = 1024 * 1024;

/**
 * The body as text, or undefined as soon as it is known to pass `limit` bytes: at once when its
 * declared Content-Length does, else when that many have come. Not a byte past the limit is kept.
 */
function readBody(req: IncomingMessage, limit: number): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    let chunks: Buffer[] | undefined = [];
    let size = 0;
    const tooLarge = () => {
      chunks = undefined;
      resolve(undefined);
      discardBody(req, limit + DRAIN_BYTES, size);
    };
    req.on('data', (chunk: Buffer) => {
      if (chunks === undefined) return;
      size += chunk.length;
      if (size > limit) tooLarge();
      else chunks.push(chunk);
    });
    req.on('end', () => {
      if (chunks !== undefined) resolve(Buffer.concat(chunks, size).toString('utf8'));
    });
    req.on('error', reject);
    // A client that goes away mid-body: settle, so nothing waits on it forever.
    req.on('close', () => {
      if (!req.complete) reject(new Error('the client closed the connection before sending the whole body'));
    });
    if (Number(req.headers['content-length']) > limit) tooLarge();
  });
}

/** Reads and drops the rest of a refused body; once more than `cutAfter` bytes of it have come in all, cuts the connection. */
function discardBody(req: IncomingMessage, cutAfter: number, alreadyRead = 0): void {
  let size = alreadyRead;
  req.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size > cutAfter) req.socket.destroy();
  });
  req.resume();
}

export interface RunningServer {
  server: https.Server;
  port: number;
  /** Swap the serving certificate; connections already open keep theirs. */
  rotate(pair: TlsKeyPair): void;
  close(): Promise<void>;
}

export async function listenHttps(app: express.Express, pair: TlsKeyPair, port: number, host?: string, clientCa?: string): Promise<RunningServer> {
  // A new serving certificate replaces the whole secure context, so the client CA goes into each.
  const context = (next: TlsKeyPair) => ({ ...next, minVersion: 'TLSv1.2' as const, ...(clientCa === undefined ? {} : { ca: clientCa }) });
  // Every client is asked for a certificate, none is turned away in the handshake: probes and
  // scrapers have none, and /mutate refuses by what the socket says (createWebhookApp).
  const server = https.createServer({ ...context(pair), ...(clientCa === undefined ? {} : { requestCert: true, rejectUnauthorized: false }) }, app);
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
    rotate: (next) => server.setSecureContext(context(next)),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}
