import https from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger, createCertificateAuthority, issueServingCertificate, serviceDnsNames } from '@cryo/common';
import { httpsRequest, postJson, type HttpsTarget } from '../../test/src/harness/https-request.ts';
import { loadAdmissionReview } from '../../test/src/fixtures/load-fixture.ts';
import { createAdmissionHandler, type AdmissionHandler } from './admission/admission-handler.ts';
import { createWebhookApp, listenHttps, type RunningServer } from './server.ts';
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
    ['a body over the limit', `{"pad":"${'x'.repeat(MAX_BODY)}"}`, { 'content-type': 'application/json' }, `larger than ${MAX_BODY} bytes`],
    ['a review of the wrong apiVersion', '{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1beta1"}', { 'content-type': 'application/json' }, 'admissionReviewVersions: [v1]'],
    ['a review without request', '{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1"}', { 'content-type': 'application/json' }, 'no "request" object'],
  ])('refuses %s with 400 and says why', async (_what, body, headers, message) => {
    const res = await httpsRequest(target, 'POST', '/mutate', body, headers);
    expect(res.status).toBe(400);
    expect(res.json<{ error: string }>().error).toContain(message);
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
    expect((await httpsRequest(target, 'GET', '/healthz')).text).toBe('ok');
  });

  it('/readyz says why it is not ready, then ok', async () => {
    ready = false;
    const notReady = await httpsRequest(target, 'GET', '/readyz');
    expect(notReady.status).toBe(503);
    expect(notReady.text).toBe('not ready: Checkpoint cache not synced yet');
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
