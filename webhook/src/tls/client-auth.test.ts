/**
 * --client-ca-file and --client-allowed-names on a real HTTPS server on 127.0.0.1: /mutate answers
 * only a client certificate the CA signed (and, when names are given, one of those names), before
 * reading the body; probes and metrics need no certificate; a rotated serving certificate keeps
 * the client CA.
 */
import { generateKeyPairSync } from 'node:crypto';
import https from 'node:https';
import forge from 'node-forge';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createCertificateAuthority,
  issueServingCertificate,
  parseCertificate,
  randomSerialHex,
  serviceDnsNames,
  silentLogger,
  type TlsKeyPair,
} from '@cryo/common';
import { httpsRequest, postJson, type HttpsTarget, loadAdmissionReview } from '@cryo/test';
import { createAdmissionHandler, type AdmissionHandler } from '../admission/admission-handler.ts';
import { createWebhookApp, listenHttps, type RunningServer } from '../server.ts';
import { createWebhookMetrics, type WebhookMetrics } from '../webhook-metrics.ts';

const APISERVER = 'kube-apiserver-webhook-client';

/** A client certificate (clientAuth) signed by `ca`, as cluster.sh's `cert` helper makes them. */
function issueClientCertificate(ca: TlsKeyPair, commonName: string, dnsNames: string[] = []): TlsKeyPair {
  const keys = generateKeyPairSync('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } });
  const caCert = forge.pki.certificateFromPem(ca.cert);
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(keys.publicKey);
  cert.serialNumber = randomSerialHex();
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + 3600_000);
  cert.setSubject([{ name: 'commonName', value: commonName }]);
  cert.setIssuer(caCert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', clientAuth: true },
    ...(dnsNames.length > 0 ? [{ name: 'subjectAltName', altNames: dnsNames.map((value) => ({ type: 2, value })) }] : []),
  ]);
  cert.sign(forge.pki.privateKeyFromPem(ca.key), forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert), key: keys.privateKey };
}

describe('/mutate with --client-ca-file and --client-allowed-names', () => {
  let servingCa: TlsKeyPair;
  let clientCa: TlsKeyPair;
  let server: RunningServer;
  let target: HttpsTarget;
  let metrics: WebhookMetrics;
  let decided = 0;
  const agents: https.Agent[] = [];
  /** A target presenting this client certificate (none when absent), on a connection of its own. */
  const as = (pair?: TlsKeyPair, keepAlive = false): HttpsTarget => {
    const agent = new https.Agent({ ...pair, keepAlive, maxSockets: 1 });
    agents.push(agent);
    return { ...target, agent };
  };
  const badRequests = async (reason: string) => (await metrics.badRequests.get()).values.find((v) => v.labels.reason === reason)?.value ?? 0;

  beforeAll(async () => {
    [servingCa, clientCa] = await Promise.all([createCertificateAuthority(), createCertificateAuthority({ commonName: 'cluster-ca' })]);
    const pair = await issueServingCertificate(servingCa, { dnsNames: serviceDnsNames('cryo-webhook', 'cryo-system'), validitySeconds: 3600 });
    metrics = createWebhookMetrics();
    const real = createAdmissionHandler({ lookup: { get: () => Promise.resolve(undefined) }, options: { hostHooksDir: '/var/run/cryo/hooks', pullSecret: '' }, logger: silentLogger(), metrics });
    const handleAdmission: AdmissionHandler = (body) => {
      decided++;
      return real(body);
    };
    const clientAuth = { ca: clientCa.cert, allowedNames: [APISERVER, 'cryo-webhook.cryo-system.svc'] };
    const app = createWebhookApp({ handleAdmission, logger: silentLogger(), metrics, notReadyReason: () => undefined, maxBodyBytes: 64 * 1024, clientAuth });
    server = await listenHttps(app, pair, 0, '127.0.0.1', clientAuth.ca);
    target = { port: server.port, ca: servingCa.cert, servername: 'cryo-webhook.cryo-system.svc', agent: false };
  });
  afterAll(async () => {
    for (const agent of agents) agent.destroy();
    await server.close();
  });

  it('refuses a client without a certificate with 401, says what to configure, and decides nothing', async () => {
    const before = { decided, counted: await badRequests('no-client-certificate') };
    const res = await postJson(as(), '/mutate', loadAdmissionReview('hooks-only-pod'));
    expect(res.status).toBe(401);
    const message =
      "no client certificate; this webhook answers only the kube-apiserver: configure the kube-apiserver's admission configuration " +
      "(--admission-control-config-file) with a client certificate signed by --client-ca-file for this webhook's Service; " +
      'see docs/security.md#the-webhook-answers-only-the-kube-apiserver';
    // Also a metav1.Status, whose message a refused kube-apiserver shows in its own error.
    expect(res.json()).toEqual({ error: message, kind: 'Status', apiVersion: 'v1', status: 'Failure', code: 401, reason: 'Unauthorized', message });
    expect(decided).toBe(before.decided);
    expect(await badRequests('no-client-certificate')).toBe(before.counted + 1);
  });

  it('refuses a certificate another CA signed with 401, naming why TLS did not verify it', async () => {
    const stranger = issueClientCertificate(await createCertificateAuthority({ commonName: 'cluster-ca' }), APISERVER);
    const res = await postJson(as(stranger), '/mutate', loadAdmissionReview('hooks-only-pod'));
    expect(res.status).toBe(401);
    expect(res.json<{ error: string }>().error).toMatch(/^the client certificate \(kube-apiserver-webhook-client\) is not signed by --client-ca-file \([A-Z_]+\); configure/);
    expect(await badRequests('untrusted-client-certificate')).toBeGreaterThan(0);
  });

  it('refuses a certificate of the CA for servers only (no clientAuth usage) with 401', async () => {
    const serverOnly = await issueServingCertificate(clientCa, { dnsNames: [APISERVER], validitySeconds: 3600 });
    const res = await postJson(as(serverOnly), '/mutate', loadAdmissionReview('hooks-only-pod'));
    expect(res.status).toBe(401);
    expect(res.json<{ error: string }>().error).toContain('(INVALID_PURPOSE)');
  });

  it('refuses a certificate of the CA with a name not allowed with 403 (a kubelet\'s, say)', async () => {
    const before = decided;
    const kubelet = issueClientCertificate(clientCa, 'system:node:node-1', ['node-1']);
    const res = await postJson(as(kubelet), '/mutate', loadAdmissionReview('hooks-only-pod'));
    expect(res.status).toBe(403);
    expect(res.json()).toMatchObject({ kind: 'Status', code: 403, reason: 'Forbidden' });
    expect(res.json<{ error: string }>().error).toBe(
      'the client certificate names "system:node:node-1", "node-1", none of --client-allowed-names; give the kube-apiserver a certificate ' +
        'with one of those names (or add its name to the flag); see docs/security.md#the-webhook-answers-only-the-kube-apiserver',
    );
    expect(decided).toBe(before);
    expect(await badRequests('client-name-not-allowed')).toBe(1);
  });

  it('answers the allowed certificate, named by its CommonName or a DNS SAN, on a kept connection', async () => {
    const apiserver = as(issueClientCertificate(clientCa, APISERVER), true);
    const review = loadAdmissionReview('hooks-only-pod');
    const first = await postJson(apiserver, '/mutate', review);
    expect(first.status).toBe(200);
    expect(first.json()).toMatchObject({ kind: 'AdmissionReview', response: { uid: review.request.uid, allowed: true, patchType: 'JSONPatch' } });
    const second = await postJson(apiserver, '/mutate', review);
    expect(second.status).toBe(200);
    expect(second.socket).toBe(first.socket);
    const bySan = await postJson(as(issueClientCertificate(clientCa, 'apiserver-7', ['cryo-webhook.cryo-system.svc'])), '/mutate', review);
    expect(bySan.status).toBe(200);
  });

  it('refuses before the body comes: a declared gigabyte gets 401 at once, not 413', async () => {
    const res = await httpsRequest(as(), 'POST', '/mutate', undefined, { 'content-type': 'application/json', 'content-length': String(1024 ** 3) }).catch((err: Error) => err);
    // The answer comes before the (never sent) body; the connection is then cut.
    expect(res).toMatchObject({ status: 401 });
  });

  it('answers /healthz, /readyz and /metrics without a client certificate', async () => {
    expect((await httpsRequest(as(), 'GET', '/healthz')).text).toBe('ok\n');
    expect((await httpsRequest(as(), 'GET', '/readyz')).status).toBe(200);
    const text = (await httpsRequest(as(), 'GET', '/metrics')).text;
    expect(text).toMatch(/cryo_webhook_bad_requests_total\{reason="no-client-certificate"\} [1-9]/);
    expect(text).toMatch(/cryo_webhook_bad_requests_total\{reason="client-name-not-allowed"\} 1/);
  });

  it('keeps requiring the client CA after the serving certificate rotates', async () => {
    const next = await issueServingCertificate(servingCa, { dnsNames: serviceDnsNames('cryo-webhook', 'cryo-system'), validitySeconds: 3600 });
    server.rotate(next);
    const apiserver = await postJson(as(issueClientCertificate(clientCa, APISERVER)), '/mutate', loadAdmissionReview('hooks-only-pod'));
    expect(apiserver.status).toBe(200);
    expect(apiserver.peerSerial).toBe(parseCertificate(next.cert).serial);
    expect((await postJson(as(), '/mutate', loadAdmissionReview('hooks-only-pod'))).status).toBe(401);
    const kubelet = issueClientCertificate(clientCa, 'system:node:node-1');
    expect((await postJson(as(kubelet), '/mutate', loadAdmissionReview('hooks-only-pod'))).status).toBe(403);
  });
});
