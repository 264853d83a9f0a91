/** The shared Secret under contention: replicas converge on one write and never loop. */
import { CoreV1Api } from '@kubernetes/client-node';
import { silentLogger, createCertificateAuthority, issueServingCertificate, serviceDnsNames, parseCertificate } from '@cryo/common';
import { FakeKubeApiServer } from '@cryo/test';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SharedTlsSecret, type SharedTlsSecretOptions } from './shared-tls-secret.ts';

const NAMESPACE = 'cryo-system';
const SECRET = 'cryo-webhook-tls';
const SECRET_PATH = `/api/v1/namespaces/${NAMESPACE}/secrets/${SECRET}`;
const dnsNames = serviceDnsNames('cryo-webhook', NAMESPACE);
const b64 = (text: string) => Buffer.from(text).toString('base64');

describe('SharedTlsSecret', () => {
  let fake: FakeKubeApiServer;

  beforeEach(async () => {
    fake = await FakeKubeApiServer.start();
  });
  afterEach(() => fake.stop());

  const replica = (overrides: Partial<SharedTlsSecretOptions> = {}) =>
    new SharedTlsSecret({
      coreApi: fake.kubeConfig().makeApiClient(CoreV1Api),
      namespace: NAMESPACE,
      name: SECRET,
      dnsNames,
      validitySeconds: 3600,
      renewBeforeSeconds: 600,
      logger: silentLogger(),
      ...overrides,
    });

  async function seedNearExpiry(): Promise<string> {
    const ca = await createCertificateAuthority();
    const old = await issueServingCertificate(ca, { dnsNames, validitySeconds: 300 });
    fake.put({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: SECRET, namespace: NAMESPACE },
      type: 'kubernetes.io/tls',
      data: { 'tls.crt': b64(old.cert), 'tls.key': b64(old.key), 'ca.crt': b64(ca.cert), 'ca.key': b64(ca.key) },
    });
    return ca.cert;
  }

  it('lets exactly one of two replicas renew a certificate near expiry; the other takes the result', async () => {
    const caCert = await seedNearExpiry();
    fake.clearRequests();
    const [a, b] = await Promise.all([replica().sync(), replica().sync()]);

    expect([a.outcome, b.outcome].sort()).toEqual(['current', 'renewed']);
    expect(a.material.servingInfo.serial).toBe(b.material.servingInfo.serial);
    expect(a.material.ca.cert).toBe(caCert);
    const puts = fake.requests.filter((r) => r.method === 'PUT' && r.path === SECRET_PATH).map((r) => r.status);
    expect(puts.sort()).toEqual([200, 409]);
  });

  it('gives up after a bounded number of conflicts, for the caller to retry later', async () => {
    await seedNearExpiry();
    fake.failNext({ method: 'PUT', pathPrefix: SECRET_PATH, status: 409, reason: 'Conflict', times: 10 });
    await expect(replica({ maxAttempts: 3 }).sync()).rejects.toThrow(/kept changing under us \(3 attempts\)/);
    expect(fake.requests.filter((r) => r.method === 'PUT')).toHaveLength(3);
  });

  it('reads a healthy Secret without writing it', async () => {
    const created = await replica().sync();
    expect(created.outcome).toBe('created');
    fake.clearRequests();
    const read = await replica().sync();
    expect(read).toMatchObject({ outcome: 'current', material: { servingInfo: { serial: parseCertificate(created.material.serving.cert).serial } } });
    expect(fake.requests.map((r) => r.method)).toEqual(['GET']);
  });

  it('passes other API errors to the caller', async () => {
    fake.failNext({ method: 'GET', pathPrefix: SECRET_PATH, status: 403 });
    await expect(replica().sync()).rejects.toMatchObject({ code: 403 });
  });
});
