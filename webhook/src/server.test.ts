import https from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger, createCertificateAuthority, issueServingCertificate, serviceDnsNames } from '@cryo/common';
import { httpsRequest, postJson, type HttpsTarget, loadAdmissionReview } from '@cryo/test';
import { createAdmissionHandler, type AdmissionHandler } from './admission/admission-handler.ts';
import { createWebhookApp, listenHttps, nestingDepth, type RunningServer } from './server.ts';
import { createWebhookMetrics } from './webhook-metrics.ts';

const MAX_BODY = 64 * 1024;
let server: RunningServer;
let target: HttpsTarget;
let ready = false;
let failNextAdmission = false;

beforeAll(async () => {
  const ca = await createCertificateAuthority();
  const pair = await issueServingCertificate(ca, { dnsNames: serviceDnsNames('cryo-webhook', 'cryo-system'), validitySeconds: 3600 });
  const metrics = createWebhookMetrics();
  const real = createAdmissionHandler({
    lookup: { get: () => Promise.resolve(undefined) },
    options: { hostHooksDir: '/var/run/cryo/hooks', pullSecret: '' },
    logger: silentLogger(),
    metrics,
  });
  const handleAdmission: AdmissionHandler = (body) => {
    if (failNextAdmission) {
      failNextAdmission = false;
      return Promise.reject(new Error('a bug, not the client'));
    }
    return real(body);
  };
  const app = createWebhookApp({
    handleAdmission,
    logger: silentLogger(),
    metrics,
    notReadyReason: () => (ready ? undefined : 'Checkpoint cache not synced yet'),
    maxBodyBytes: MAX_BODY,
  });
  server = await listenHttps(app, pair, 0, '127.0.0.1');
  target = { port: server.port, ca: ca.cert, servername: 'cryo-webhook.cryo-system.svc' };
});

afterAll(() => server.close());

describe('POST /mutate', () => {
  it('answers an AdmissionReview over TLS the apiserver can verify', async () => {
    const review = loadAdmissionReview('plain-pod');
    const res = await postJson(target, '/mutate', review);
    expect(res.status).toBe(200);
    expect(res.json()).toEqual({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: review.request.uid, allowed: true } });
  });

  it.each([
    ['a body that is not JSON', '{"kind":', { 'content-type': 'application/json' }, 'the body is not valid JSON'],
    ['an empty body', '', { 'content-type': 'application/json' }, 'the body is not valid JSON'],
    ['the wrong content type', '{}', { 'content-type': 'text/plain' }, 'Content-Type must be application/json, got "text/plain"'],
    ['a review of the wrong apiVersion', '{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1beta1"}', { 'content-type': 'application/json' }, 'admissionReviewVersions: [v1]'],
    ['a review without request', '{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1"}', { 'content-type': 'application/json' }, 'no "request" object'],
  ])('refuses %s with 400 and says why', async (_what, body, headers, message) => {
    const res = await httpsRequest(target, 'POST', '/mutate', body, headers);
    expect(res.status).toBe(400);
    expect(res.json<{ error: string }>().error).toContain(message);
  });

  it('refuses a body over the limit with 413, says why, and keeps the connection for the next review', async () => {
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
    const kept = { ...target, agent };
    const res = await httpsRequest(kept, 'POST', '/mutate', `{"pad":"${'x'.repeat(MAX_BODY)}"}`, { 'content-type': 'application/json' });
    expect(res.status).toBe(413);
    expect(res.json<{ error: string }>().error).toBe(
      `the body is larger than ${MAX_BODY} bytes, the most this webhook accepts; if pods in this cluster are that large, raise --max-body-bytes`,
    );
    const next = await postJson(kept, '/mutate', loadAdmissionReview('plain-pod'));
    expect(next.status).toBe(200);
    expect(next.socket).toBe(res.socket);
    agent.destroy();
  });

  it('answers 413 as soon as the declared length is over the limit, before the body comes, and closes', async () => {
    const answer = await new Promise<{ status: number; connection?: string; error: string }>((resolve, reject) => {
      const req = https.request({
        host: '127.0.0.1',
        port: target.port,
        method: 'POST',
        path: '/mutate',
        ca: target.ca,
        servername: target.servername,
        agent: false,
        headers: { 'content-type': 'application/json', 'content-length': 1024 * 1024 * 1024 },
      });
      req.on('error', reject);
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const error = (JSON.parse(Buffer.concat(chunks).toString()) as { error: string }).error;
          resolve({ status: res.statusCode!, connection: res.headers.connection, error });
          req.destroy();
        });
      });
      // Only the start of the gigabyte ever comes.
      req.write('{"kind":"AdmissionReview"');
    });
    expect(answer.status).toBe(413);
    expect(answer.error).toContain(`larger than ${MAX_BODY} bytes`);
    // Too long even to drain: the connection closes, and the client is told so.
    expect(answer.connection).toBe('close');
  });

  it('answers 413 to a chunked body once it passes the limit, and cuts a client that sends on and on', async () => {
    const outcome = await new Promise<{ status: number; closed: boolean }>((resolve, reject) => {
      const req = https.request({
        host: '127.0.0.1',
        port: target.port,
        method: 'POST',
        path: '/mutate',
        ca: target.ca,
        servername: target.servername,
        agent: false,
        headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
      });
      let status = 0;
      const chunk = Buffer.alloc(64 * 1024, 'x');
      const pump = () => {
        // Far past the limit and the drain allowance: the server cuts the connection.
        while (!req.destroyed && req.write(chunk));
        if (!req.destroyed) req.once('drain', pump);
      };
      req.on('response', (res) => {
        status = res.statusCode!;
        res.resume();
      });
      req.on('error', () => resolve({ status, closed: true }));
      req.on('close', () => resolve({ status, closed: true }));
      setTimeout(() => reject(new Error('the server never cut the connection')), 10_000).unref();
      pump();
    });
    expect(outcome).toEqual({ status: 413, closed: true });
    expect((await postJson(target, '/mutate', loadAdmissionReview('plain-pod'))).status).toBe(200);
  });

  it('shrugs off a client that leaves halfway through the body', async () => {
    await new Promise<void>((resolve, reject) => {
      const req = https.request({
        host: '127.0.0.1',
        port: target.port,
        method: 'POST',
        path: '/mutate',
        ca: target.ca,
        servername: target.servername,
        agent: false,
        headers: { 'content-type': 'application/json', 'content-length': 10_000 },
      });
      req.on('error', () => resolve());
      req.write('{"kind":"AdmissionReview"', () => {
        req.destroy();
        resolve();
      });
      req.on('response', () => reject(new Error('no answer expected for half a body')));
    });
    expect((await postJson(target, '/mutate', loadAdmissionReview('plain-pod'))).status).toBe(200);
  });

  it('refuses a large body nested deeper than any AdmissionReview with 400 before parsing it', async () => {
    const deep = `{"kind":"AdmissionReview","pad":"${'x'.repeat(17_000)}","request":${'['.repeat(10_000)}${']'.repeat(10_000)}}`;
    const res = await httpsRequest(target, 'POST', '/mutate', deep, { 'content-type': 'application/json' });
    expect(res.status).toBe(400);
    expect(res.json<{ error: string }>().error).toBe('the body nests more than 128 levels deep; no AdmissionReview does');
  });

  it('refuses other methods with 405', async () => {
    const res = await httpsRequest(target, 'GET', '/mutate');
    expect(res.status).toBe(405);
    expect(res.headers.allow).toBe('POST');
  });

  it('answers 500 for its own failure and keeps serving', async () => {
    failNextAdmission = true;
    const review = loadAdmissionReview('plain-pod');
    expect((await postJson(target, '/mutate', review)).status).toBe(500);
    expect((await postJson(target, '/mutate', review)).status).toBe(200);
  });
});

describe('probes and metrics', () => {
  it('/healthz is ok while the process lives', async () => {
    expect((await httpsRequest(target, 'GET', '/healthz')).text).toBe('ok\n');
  });

  it('/readyz says why it is not ready, then ok', async () => {
    ready = false;
    const notReady = await httpsRequest(target, 'GET', '/readyz');
    expect(notReady.status).toBe(503);
    expect(notReady.text).toBe('not ready: Checkpoint cache not synced yet\n');
    ready = true;
    expect((await httpsRequest(target, 'GET', '/readyz')).status).toBe(200);
  });

  it('/metrics counts decisions and bad requests under the cryo_ prefix', async () => {
    await postJson(target, '/mutate', loadAdmissionReview('plain-pod'));
    const text = (await httpsRequest(target, 'GET', '/metrics')).text;
    expect(text).toMatch(/cryo_webhook_admissions_total\{decision="unchanged",reason=""\} \d+/);
    expect(text).toMatch(/cryo_webhook_bad_requests_total\{reason="not-json"\} [1-9]/);
    expect(text).toContain('cryo_webhook_admission_duration_seconds_bucket');
    expect(text).toContain('cryo_process_resident_memory_bytes');
  });

  it('answers unknown paths with 404', async () => {
    expect((await httpsRequest(target, 'GET', '/nope')).status).toBe(404);
  });
});

describe('nestingDepth', () => {
  it.each([
    ['a flat object', '{"a":1,"b":[1,2]}', 2],
    ['brackets inside strings', '{"a":"[[[{{{","b":"\\"[["}', 1],
    ['an escaped backslash before the closing quote', '{"a":"\\\\","b":[[1]]}', 3],
    ['a scalar', '"[[["', 0],
  ])('counts %s', (_what, text, depth) => {
    expect(nestingDepth(text)).toBe(depth);
  });

  it('stops counting just past the limit', () => {
    expect(nestingDepth('['.repeat(1_000_000), 128)).toBe(129);
  });
});
