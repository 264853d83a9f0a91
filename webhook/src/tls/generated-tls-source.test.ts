/**
 * Generated TLS against the fake kube-apiserver: replicas share one CA and serving certificate
 * through the Secret, the caBundle is put back when something resets it, renewals reach every
 * replica, and API errors are retried rather than fatal.
 */
import { Metrics, createCertificateAuthority, issueServingCertificate, serviceDnsNames, type TlsKeyPair, parseCertificate } from '@cryo/common';
import { FakeKubeApiServer, captureLogger, type CapturedLogger, callServer, startHttpsServer, waitFor } from '@cryo/test';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GeneratedTlsSource, type GeneratedTlsSourceOptions } from './generated-tls-source.ts';
import { createTlsSource } from './serving-tls.ts';

const NAMESPACE = 'cryo-system';
const SECRET = 'cryo-webhook-tls';
const WEBHOOK_CONFIG = 'cryo-webhook';
const SERVERNAME = 'cryo-webhook.cryo-system.svc';
const SECRETS_PATH = `/api/v1/namespaces/${NAMESPACE}/secrets`;
const MWC_PATH = `/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/${WEBHOOK_CONFIG}`;

function webhookConfiguration(caBundle?: string) {
  const webhook = (name: string, path: string) => ({
    name,
    clientConfig: { service: { name: 'cryo-webhook', namespace: NAMESPACE, path }, ...(caBundle === undefined ? {} : { caBundle }) },
    rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'] }],
    admissionReviewVersions: ['v1'],
    sideEffects: 'None',
    failurePolicy: 'Ignore',
  });
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'MutatingWebhookConfiguration',
    metadata: { name: WEBHOOK_CONFIG },
    webhooks: [webhook('restore.cryo.dev', '/mutate'), webhook('hooks.cryo.dev', '/mutate-hooks')],
  };
}

const b64 = (text: string) => Buffer.from(text).toString('base64');
const fromB64 = (text: string) => Buffer.from(text, 'base64').toString('utf8');

describe('GeneratedTlsSource', () => {
  let fake: FakeKubeApiServer;
  let sources: GeneratedTlsSource[];
  let logs: CapturedLogger[];

  beforeEach(async () => {
    fake = await FakeKubeApiServer.start();
    sources = [];
    logs = [];
  });
  afterEach(async () => {
    await Promise.all(sources.map((source) => source.stop()));
    await fake.stop();
  });

  function replica(overrides: Partial<GeneratedTlsSourceOptions> = {}): { source: GeneratedTlsSource; log: CapturedLogger; metrics: Metrics } {
    const log = captureLogger();
    const metrics = new Metrics({ defaultMetrics: false });
    const source = new GeneratedTlsSource({
      kubeConfig: fake.kubeConfig(),
      namespace: NAMESPACE,
      serviceName: 'cryo-webhook',
      webhookConfigName: WEBHOOK_CONFIG,
      secretName: SECRET,
      validitySeconds: 3600,
      renewBeforeSeconds: 600,
      resyncSeconds: 60,
      logger: log.logger,
      metrics,
      backoff: { initialMs: 50, maxMs: 500 },
      ...overrides,
    });
    sources.push(source);
    logs.push(log);
    return { source, log, metrics };
  }

  const storedSecret = () => fake.get<{ data: Record<string, string>; type: string }>('v1', 'secrets', NAMESPACE, SECRET);
  const storedCaBundles = () => {
    const mwc = fake.get<{ webhooks: { clientConfig: { caBundle?: string } }[] }>(
      'admissionregistration.k8s.io/v1',
      'mutatingwebhookconfigurations',
      undefined,
      WEBHOOK_CONFIG,
    );
    return mwc?.webhooks.map((webhook) => webhook.clientConfig.caBundle);
  };
  const succeeded = (method: string, pathPrefix: string) =>
    fake.requests.filter((r) => r.method === method && r.path.startsWith(pathPrefix) && r.status < 300);

  it('has replicas starting together agree on one CA and one serving certificate, created once', async () => {
    fake.put(webhookConfiguration());
    const [a, b] = [replica(), replica()];
    const [pairA, pairB] = await Promise.all([a.source.start(), b.source.start()]);

    expect(pairB).toEqual(pairA);
    expect(succeeded('POST', SECRETS_PATH)).toHaveLength(1);
    const secret = storedSecret()!;
    expect(secret.type).toBe('kubernetes.io/tls');
    expect(Object.keys(secret.data).sort()).toEqual(['ca.crt', 'ca.key', 'tls.crt', 'tls.key']);
    expect(fromB64(secret.data['tls.crt'])).toBe(pairA.cert);
    expect(a.source.status).toMatchObject({ ready: true, serial: parseCertificate(pairA.cert).serial });

    // The API server is told to trust exactly the CA in the Secret, on every webhook.
    await waitFor(() => storedCaBundles()?.every((caBundle) => caBundle === b64(fromB64(secret.data['ca.crt']))), { what: 'the caBundle' });
    await waitFor(() => a.source.status.caBundle === 'in-sync' && b.source.status.caBundle === 'in-sync', { what: 'both keepers in sync' });
  });

  it('serves TLS that a client trusting only the caBundle accepts for the Service name', async () => {
    fake.put(webhookConfiguration());
    const { source } = replica();
    const server = await startHttpsServer(await source.start());
    try {
      const caBundle = await waitFor(() => storedCaBundles()?.[0], { what: 'the caBundle' });
      const result = await callServer({ port: server.port, ca: fromB64(caBundle), servername: SERVERNAME });
      expect(result.serial).toBe(source.status.serial);
    } finally {
      await server.close();
    }
  });

  it('rewrites a caBundle that something reset, as soon as the watch reports it', async () => {
    fake.put(webhookConfiguration());
    const { source, metrics } = replica();
    await source.start();
    const expected = await waitFor(() => storedCaBundles()?.[0], { what: 'the first caBundle write' });
    await waitFor(() => source.status.caBundle === 'in-sync', { what: 'the keeper in sync' });

    // A GitOps sync applies the manifest as written: no caBundle.
    fake.put(webhookConfiguration(''));
    await waitFor(() => storedCaBundles()?.every((caBundle) => caBundle === expected), { timeoutMs: 2_000, what: 'the rewrite' });
    // Counted once the API server's answer is back, a moment after the store changed.
    await waitFor(async () => (await metrics.render()).body.includes('cryo_webhook_ca_bundle_writes_total 2'), { what: 'the second write counted' });
  });

  it('waits for a missing webhook configuration without failing, and fills it in once it appears', async () => {
    const { source, log } = replica();
    await source.start();
    await waitFor(() => source.status.caBundle === 'missing', { what: 'the missing state' });
    expect(log.messages('warn')).toContain('MutatingWebhookConfiguration not found; will set its caBundle once it exists');

    fake.put(webhookConfiguration());
    const secret = storedSecret()!;
    await waitFor(() => storedCaBundles()?.every((caBundle) => caBundle === secret.data['ca.crt']), { timeoutMs: 2_000, what: 'the caBundle' });
  });

  it('keeps writing after the watch is cut', async () => {
    fake.put(webhookConfiguration());
    const { source } = replica();
    await source.start();
    const expected = await waitFor(() => storedCaBundles()?.[0], { what: 'the first caBundle write' });
    fake.closeWatches();
    fake.put(webhookConfiguration('c3RhbGU='));
    await waitFor(() => storedCaBundles()?.every((caBundle) => caBundle === expected), { timeoutMs: 3_000, what: 'the rewrite after reconnecting' });
  });

  it('renews a certificate near expiry in one replica; the other picks it up on resync and swaps it in', async () => {
    fake.put(webhookConfiguration());
    // a renews when 2 s of its 3 s are left; b would wait until 0.5 s, so a always gets there first.
    const a = replica({ validitySeconds: 3, renewBeforeSeconds: 2, resyncSeconds: 60 });
    const b = replica({ validitySeconds: 3, renewBeforeSeconds: 0.5, resyncSeconds: 0.2 });
    const first = await a.source.start();
    await b.source.start();
    const issuedByA = new Set<string>();
    a.source.onChange((pair) => issuedByA.add(parseCertificate(pair.cert).serial));
    const seenByB: TlsKeyPair[] = [];
    b.source.onChange((pair) => seenByB.push(pair));

    // b's own HTTPS server, wired the way the webhook wires it.
    const server = await startHttpsServer(first);
    b.source.onChange((pair) => server.server.setSecureContext(pair));
    try {
      await waitFor(() => seenByB.length > 0, { timeoutMs: 4_000, what: "b's first rotation" });
      const renewed = parseCertificate(seenByB[0].cert).serial;
      expect(renewed).not.toBe(parseCertificate(first.cert).serial);
      expect(succeeded('PUT', `${SECRETS_PATH}/${SECRET}`).length).toBeGreaterThanOrEqual(1);
      // a hears back from its write a moment after b may already have read it.
      await waitFor(() => issuedByA.has(renewed), { what: 'a serving what it renewed' });
      expect(logs[0].messages('info')).toContain('renewed the shared TLS Secret');
      expect(logs[1].messages('info')).not.toContain('renewed the shared TLS Secret');

      // New connections to b now get a renewed certificate, still trusted through the same CA.
      const caBundle = await waitFor(() => storedCaBundles()?.[0], { what: 'the caBundle' });
      const result = await callServer({ port: server.port, ca: fromB64(caBundle), servername: SERVERNAME });
      expect(result.serial).not.toBe(parseCertificate(first.cert).serial);
      expect(b.source.status.notAfter!.getTime()).toBeGreaterThan(parseCertificate(first.cert).notAfter.getTime());
      expect((await b.metrics.render()).body).toMatch(/cryo_webhook_serving_cert_rotations_total [1-9]/);
    } finally {
      await server.close();
    }
  });

  it('replaces a Secret issued for other names, keeping its CA so the caBundle stays valid', async () => {
    fake.put(webhookConfiguration());
    const ca = await createCertificateAuthority();
    const old = await issueServingCertificate(ca, { dnsNames: serviceDnsNames('renamed-webhook', NAMESPACE), validitySeconds: 3600 });
    fake.put({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: SECRET, namespace: NAMESPACE, labels: { team: 'platform' } },
      type: 'kubernetes.io/tls',
      data: { 'tls.crt': b64(old.cert), 'tls.key': b64(old.key), 'ca.crt': b64(ca.cert), 'ca.key': b64(ca.key) },
    });
    const { source } = replica();
    const pair = await source.start();

    expect(parseCertificate(pair.cert).dnsNames).toEqual(serviceDnsNames('cryo-webhook', NAMESPACE));
    const secret = storedSecret() as unknown as { data: Record<string, string>; metadata: { labels: Record<string, string> } };
    expect(fromB64(secret.data['ca.crt'])).toBe(ca.cert);
    expect(fromB64(secret.data['tls.crt'])).toBe(pair.cert);
    expect(secret.metadata.labels).toEqual({ team: 'platform' });
    expect(succeeded('POST', SECRETS_PATH)).toHaveLength(0);
  });

  it('retries API errors instead of failing: on the Secret at start and on the caBundle patch', async () => {
    fake.put(webhookConfiguration());
    fake.failNext({ method: 'GET', pathPrefix: SECRETS_PATH, status: 500, times: 2 });
    fake.failNext({ method: 'PATCH', pathPrefix: MWC_PATH, status: 503, times: 1 });
    const { source, log } = replica();

    await source.start();
    const secretReads = fake.requests.filter((r) => r.method === 'GET' && r.path.startsWith(SECRETS_PATH));
    expect(secretReads.map((r) => r.status).slice(0, 3)).toEqual([500, 500, 404]);
    expect(log.messages('error').filter((msg) => msg === 'could not load the TLS Secret; retrying')).toHaveLength(2);

    const secret = storedSecret()!;
    await waitFor(() => storedCaBundles()?.every((caBundle) => caBundle === secret.data['ca.crt']), { what: 'the caBundle after the failed patch' });
    const patches = fake.requests.filter((r) => r.method === 'PATCH' && r.path.startsWith(MWC_PATH));
    expect(patches.map((r) => r.status)).toEqual([503, 200]);
  });

  it('keeps serving its certificate while the Secret cannot be read, and stops cleanly', async () => {
    fake.put(webhookConfiguration());
    const { source, log } = replica({ resyncSeconds: 0.1 });
    const pair = await source.start();
    fake.failNext({ method: 'GET', pathPrefix: SECRETS_PATH, status: 500, times: 3 });
    await waitFor(() => log.messages('error').filter((msg) => msg.startsWith('could not sync the TLS Secret')).length === 3, { what: 'three failed resyncs' });
    expect(source.status).toMatchObject({ ready: true, serial: parseCertificate(pair.cert).serial });

    await source.stop();
    const after = fake.requests.length;
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(fake.requests.length).toBe(after);
  });

  it('is what createTlsSource picks without TLS files', () => {
    const metrics = new Metrics({ defaultMetrics: false });
    const source = createTlsSource(
      {
        namespace: NAMESPACE,
        serviceName: 'cryo-webhook',
        webhookConfigName: WEBHOOK_CONFIG,
        tlsSecretName: SECRET,
        tlsCertFile: '',
        tlsKeyFile: '',
        servingCertValiditySeconds: 3600,
        servingCertRenewBeforeSeconds: 600,
        tlsResyncSeconds: 60,
      },
      { kubeConfig: fake.kubeConfig(), logger: captureLogger().logger, metrics },
    );
    expect(source).toBeInstanceOf(GeneratedTlsSource);
  });
});
