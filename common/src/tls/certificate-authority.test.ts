import { X509Certificate } from 'node:crypto';
import forge from 'node-forge';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CA_COMMON_NAME,
  createCertificateAuthority,
  issueServingCertificate,
  randomSerialHex,
  serviceDnsNames,
  type TlsKeyPair,
} from './certificate-authority.ts';
import { checkKeyPair, parseCertificate } from './certificate-info.ts';
import { callServer, startHttpsServer, type TestHttpsServer } from '@cryo/test';

const dnsNames = serviceDnsNames('cryo-webhook', 'cryo-system');

describe('the webhook CA and its serving certificates', () => {
  let ca: TlsKeyPair;
  let serving: TlsKeyPair;
  let server: TestHttpsServer;
  const issuedAt = new Date();

  beforeAll(async () => {
    ca = await createCertificateAuthority();
    serving = await issueServingCertificate(ca, { dnsNames, validitySeconds: 3600, now: issuedAt });
    server = await startHttpsServer(serving);
  });
  afterAll(() => server.close());

  it('names the Service the way the API server dials it', () => {
    expect(dnsNames).toEqual([
      'cryo-webhook',
      'cryo-webhook.cryo-system',
      'cryo-webhook.cryo-system.svc',
      'cryo-webhook.cryo-system.svc.cluster.local',
    ]);
  });

  it('creates a ten-year CA that may only sign certificates', () => {
    const x509 = new X509Certificate(ca.cert);
    expect(x509.ca).toBe(true);
    expect(x509.subject).toBe(`CN=${CA_COMMON_NAME}`);
    expect(x509.issuer).toBe(x509.subject);
    const years = (x509.validToDate.getTime() - Date.now()) / (365 * 86400_000);
    expect(years).toBeGreaterThan(9.99);
    expect(years).toBeLessThan(10.01);
    const forgeCert = forge.pki.certificateFromPem(ca.cert);
    expect(forgeCert.getExtension('basicConstraints')).toMatchObject({ cA: true, critical: true });
    expect(forgeCert.getExtension('keyUsage')).toMatchObject({ keyCertSign: true, cRLSign: true, critical: true, digitalSignature: false });
  });

  it('issues a serving certificate for the Service names, valid as configured and backdated a minute', () => {
    const info = parseCertificate(serving.cert);
    expect(info.dnsNames).toEqual(dnsNames);
    expect(info.isCA).toBe(false);
    // X.509 times have whole seconds.
    const seconds = (date: Date) => Math.floor(date.getTime() / 1000);
    expect(seconds(info.notAfter)).toBe(seconds(issuedAt) + 3600);
    expect(seconds(info.notBefore)).toBe(seconds(issuedAt) - 60);
    expect(new X509Certificate(serving.cert).keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']); // serverAuth
  });

  it('gives every certificate a different positive 16-byte serial', async () => {
    const another = await issueServingCertificate(ca, { dnsNames, validitySeconds: 60 });
    const serials = [ca, serving, another].map((pair) => parseCertificate(pair.cert).serial);
    expect(new Set(serials).size).toBe(3);
    for (const serial of serials) expect(serial).toMatch(/^[4-7][0-9A-F]{31}$/);
    expect(randomSerialHex()).not.toBe(randomSerialHex());
  });

  it('serves TLS that a client trusting only the CA accepts for the Service name', async () => {
    const result = await callServer({ port: server.port, ca: ca.cert, servername: 'cryo-webhook.cryo-system.svc' });
    expect(result.status).toBe(200);
    expect(result.serial).toBe(parseCertificate(serving.cert).serial);
  });

  it('fails hostname verification for any other name', async () => {
    await expect(
      callServer({ port: server.port, ca: ca.cert, servername: 'other-webhook.cryo-system.svc' }),
    ).rejects.toMatchObject({ code: 'ERR_TLS_CERT_ALTNAME_INVALID' });
  });

  it('is rejected by a client that trusts a different CA', async () => {
    const stranger = await createCertificateAuthority();
    await expect(
      callServer({ port: server.port, ca: stranger.cert, servername: 'cryo-webhook.cryo-system.svc' }),
    ).rejects.toMatchObject({ code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' });
  });

  describe('checkKeyPair', () => {
    it('accepts a matching pair signed by the CA for the names, in date', () => {
      const check = checkKeyPair(serving, { caCert: ca.cert, dnsNames, now: new Date() });
      expect(check).toMatchObject({ ok: true, info: { dnsNames } });
    });

    it('rejects a key that belongs to another certificate', async () => {
      const other = await issueServingCertificate(ca, { dnsNames, validitySeconds: 60 });
      expect(checkKeyPair({ cert: serving.cert, key: other.key })).toEqual({
        ok: false,
        reason: 'private key does not match the certificate',
      });
    });

    it('rejects a certificate from another CA', async () => {
      const stranger = await createCertificateAuthority();
      expect(checkKeyPair(serving, { caCert: stranger.cert })).toEqual({ ok: false, reason: 'certificate is not signed by the CA' });
    });

    it('rejects a certificate missing a name, an expired one and garbage', () => {
      expect(checkKeyPair(serving, { dnsNames: ['cryo-webhook.elsewhere.svc'] })).toEqual({
        ok: false,
        reason: 'certificate does not cover cryo-webhook.elsewhere.svc',
      });
      const later = new Date(issuedAt.getTime() + 7200_000);
      expect(checkKeyPair(serving, { now: later })).toMatchObject({ ok: false, reason: expect.stringMatching(/^certificate expired at/) });
      expect(checkKeyPair({ cert: 'nonsense', key: serving.key })).toMatchObject({ ok: false, reason: expect.stringMatching(/does not parse/) });
      expect(checkKeyPair({ cert: serving.cert, key: 'nonsense' })).toMatchObject({ ok: false, reason: expect.stringMatching(/private key does not parse/) });
    });
  });
});
