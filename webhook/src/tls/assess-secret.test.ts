/** When a TLS Secret read from the cluster is served as is, and what a renewal keeps. */
import type { V1Secret } from '@kubernetes/client-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { createCertificateAuthority, issueServingCertificate, serviceDnsNames, type TlsKeyPair, parseCertificate } from '@cryo/common';
import { assessSecret, type AssessOptions } from './shared-tls-secret.ts';

const dnsNames = serviceDnsNames('cryo-webhook', 'cryo-system');
const b64 = (text: string) => Buffer.from(text).toString('base64');

function secretOf(ca: TlsKeyPair, serving: TlsKeyPair): V1Secret {
  return {
    metadata: { name: 'cryo-webhook-tls', namespace: 'cryo-system', resourceVersion: '7' },
    type: 'kubernetes.io/tls',
    data: { 'tls.crt': b64(serving.cert), 'tls.key': b64(serving.key), 'ca.crt': b64(ca.cert), 'ca.key': b64(ca.key) },
  };
}

describe('assessSecret', () => {
  let ca: TlsKeyPair;
  let serving: TlsKeyPair;
  let options: AssessOptions;

  beforeAll(async () => {
    ca = await createCertificateAuthority();
    serving = await issueServingCertificate(ca, { dnsNames, validitySeconds: 3600 });
    options = { dnsNames, validitySeconds: 3600, renewBeforeSeconds: 600, now: new Date() };
  });

  it('serves a complete Secret whose certificate is far from expiry', () => {
    const assessment = assessSecret(secretOf(ca, serving), options);
    expect(assessment).toMatchObject({ usable: true, material: { ca, serving, servingInfo: { serial: parseCertificate(serving.cert).serial } } });
  });

  it('renews, keeping the CA, once the certificate is within renewBefore of expiry', () => {
    const later = new Date(options.now.getTime() + 3001_000);
    const assessment = assessSecret(secretOf(ca, serving), { ...options, now: later });
    expect(assessment).toMatchObject({ usable: false, reason: expect.stringMatching(/^serving certificate expires at/), keepCa: ca });
  });

  it('renews, keeping the CA, when the serving certificate lacks one of our names (the Service was renamed)', async () => {
    const other = await issueServingCertificate(ca, { dnsNames: serviceDnsNames('old-name', 'cryo-system'), validitySeconds: 3600 });
    expect(assessSecret(secretOf(ca, other), options)).toMatchObject({ usable: false, reason: expect.stringMatching(/does not cover cryo-webhook/), keepCa: ca });
  });

  it('renews, keeping the CA, when the serving pair is missing, mismatched or signed by another CA', async () => {
    const incomplete = secretOf(ca, serving);
    delete incomplete.data!['tls.key'];
    expect(assessSecret(incomplete, options)).toMatchObject({ usable: false, reason: 'tls.crt or tls.key missing', keepCa: ca });

    const mismatched = secretOf(ca, { cert: serving.cert, key: ca.key });
    expect(assessSecret(mismatched, options)).toMatchObject({ usable: false, reason: expect.stringMatching(/does not match/), keepCa: ca });

    const stranger = await createCertificateAuthority();
    const foreign = await issueServingCertificate(stranger, { dnsNames, validitySeconds: 3600 });
    expect(assessSecret(secretOf(ca, foreign), options)).toMatchObject({ usable: false, reason: expect.stringMatching(/not signed by the CA/), keepCa: ca });
  });

  it('starts over with a new CA when the CA is missing, corrupt or would expire before a new certificate', async () => {
    const noCa = secretOf(ca, serving);
    delete noCa.data!['ca.key'];
    const corrupt = secretOf(ca, serving);
    corrupt.data!['ca.crt'] = b64('-----BEGIN CERTIFICATE-----\nbm9wZQ==\n-----END CERTIFICATE-----\n');
    const shortCa = await createCertificateAuthority({ validitySeconds: 1800 });
    const empty: V1Secret = { metadata: { name: 'cryo-webhook-tls' }, type: 'kubernetes.io/tls' };

    for (const secret of [noCa, corrupt, secretOf(shortCa, serving), empty]) {
      const assessment = assessSecret(secret, options);
      expect(assessment.usable).toBe(false);
      expect(assessment).not.toHaveProperty('keepCa');
      expect(assessment).toMatchObject({ reason: expect.stringMatching(/^(CA: |ca\.crt or ca\.key missing)/) });
    }
  });

  it('does not take a serving certificate as CA', () => {
    const leafAsCa = secretOf(serving, serving);
    expect(assessSecret(leafAsCa, options)).toMatchObject({ usable: false, reason: 'CA: certificate is not a CA' });
  });
});
