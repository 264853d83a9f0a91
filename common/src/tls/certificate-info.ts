/**
 * Reading certificates back (serial, validity, SANs) and checking that a key pair is fit to serve:
 * the key matches the certificate, the certificate chains to the CA, covers the names and is in
 * date. Everything loaded from a Secret or from files goes through here before it is served.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import type { TlsKeyPair } from './certificate-authority.ts';

export interface CertificateInfo {
  /** Upper-case hex, the form `tlsSocket.getPeerCertificate().serialNumber` reports. */
  serial: string;
  notBefore: Date;
  notAfter: Date;
  dnsNames: string[];
  subject: string;
  isCA: boolean;
}

export type PairCheck = { ok: true; info: CertificateInfo } | { ok: false; reason: string };

export interface PairCheckOptions {
  /** PEM of the CA the certificate must be signed by. */
  caCert?: string;
  /** Names the certificate must cover. */
  dnsNames?: readonly string[];
  /** When given, the certificate must be valid at this instant. */
  now?: Date;
}

/** Throws when the PEM holds no parsable certificate; with a chain, describes the first one. */
export function parseCertificate(pem: string): CertificateInfo {
  return describe(new X509Certificate(pem));
}

export function checkKeyPair(pair: TlsKeyPair, options: PairCheckOptions = {}): PairCheck {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pair.cert);
  } catch (err) {
    return { ok: false, reason: `certificate does not parse: ${errorMessage(err)}` };
  }
  try {
    if (!cert.checkPrivateKey(createPrivateKey(pair.key))) {
      return { ok: false, reason: 'private key does not match the certificate' };
    }
  } catch (err) {
    return { ok: false, reason: `private key does not parse: ${errorMessage(err)}` };
  }
  const info = describe(cert);
  if (options.caCert !== undefined) {
    let ca: X509Certificate;
    try {
      ca = new X509Certificate(options.caCert);
    } catch (err) {
      return { ok: false, reason: `CA certificate does not parse: ${errorMessage(err)}` };
    }
    if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) {
      return { ok: false, reason: 'certificate is not signed by the CA' };
    }
  }
  const missing = (options.dnsNames ?? []).filter((name) => !info.dnsNames.includes(name));
  if (missing.length > 0) return { ok: false, reason: `certificate does not cover ${missing.join(', ')}` };
  if (options.now !== undefined) {
    if (options.now < info.notBefore) return { ok: false, reason: `certificate is not valid before ${info.notBefore.toISOString()}` };
    if (options.now >= info.notAfter) return { ok: false, reason: `certificate expired at ${info.notAfter.toISOString()}` };
  }
  return { ok: true, info };
}

function describe(cert: X509Certificate): CertificateInfo {
  return {
    serial: cert.serialNumber.toUpperCase(),
    notBefore: cert.validFromDate,
    notAfter: cert.validToDate,
    dnsNames: parseDnsNames(cert.subjectAltName),
    subject: cert.subject,
    isCA: cert.ca,
  };
}

// Node renders SANs as "DNS:a, DNS:b, IP Address:10.0.0.1" (values with odd characters quoted).
function parseDnsNames(subjectAltName: string | undefined): string[] {
  if (subjectAltName === undefined) return [];
  return subjectAltName
    .split(', ')
    .filter((entry) => entry.startsWith('DNS:'))
    .map((entry) => entry.slice('DNS:'.length).replace(/^"(.*)"$/, '$1'));
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
