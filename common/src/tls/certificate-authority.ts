/**
 * The webhook's own small PKI: a CA generated at runtime and short-lived serving certificates
 * signed by it, the way vault-k8s does it. node-forge builds and signs the certificates; the RSA
 * keys come from node:crypto because forge's pure-JS key generation takes seconds per key.
 */
import { generateKeyPair, randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import forge from 'node-forge';

/** A PEM certificate and its PEM private key: what `https.createServer` and `setSecureContext` take. */
export interface TlsKeyPair {
  cert: string;
  key: string;
}

export interface CertificateAuthorityOptions {
  commonName?: string;
  validitySeconds?: number;
  now?: Date;
}

export interface ServingCertificateOptions {
  /** DNS SANs; the first one is also the subject CN. */
  dnsNames: readonly string[];
  /** IP address SANs (e.g. 127.0.0.1 for a server tests reach by address). */
  ipAddresses?: readonly string[];
  validitySeconds: number;
  now?: Date;
}

export const CA_COMMON_NAME = 'cryo-webhook-ca';
export const CA_VALIDITY_SECONDS = 10 * 365 * 86400;
/** notBefore is backdated so a peer whose clock runs a little behind still accepts a fresh cert. */
export const CLOCK_SKEW_SECONDS = 60;

const generateRsaKeyPair = promisify(generateKeyPair);

/** The names the API server may use to reach the Service: `svc`, `svc.ns`, `svc.ns.svc`, and the FQDN. */
export function serviceDnsNames(serviceName: string, namespace: string): string[] {
  return [
    serviceName,
    `${serviceName}.${namespace}`,
    `${serviceName}.${namespace}.svc`,
    `${serviceName}.${namespace}.svc.cluster.local`,
  ];
}

export async function createCertificateAuthority(options: CertificateAuthorityOptions = {}): Promise<TlsKeyPair> {
  const keys = await generateKeys();
  const commonName = options.commonName ?? CA_COMMON_NAME;
  const cert = newCertificate(keys.publicKey, options.now ?? new Date(), options.validitySeconds ?? CA_VALIDITY_SECONDS);
  const subject = [{ name: 'commonName', value: commonName }];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(keys.privateKey, forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert), key: keys.pem };
}

export async function issueServingCertificate(ca: TlsKeyPair, options: ServingCertificateOptions): Promise<TlsKeyPair> {
  if (options.dnsNames.length === 0) throw new Error('a serving certificate needs at least one DNS name');
  const caCert = forge.pki.certificateFromPem(ca.cert);
  const caKey = forge.pki.privateKeyFromPem(ca.key);
  const keys = await generateKeys();
  const cert = newCertificate(keys.publicKey, options.now ?? new Date(), options.validitySeconds);
  cert.setSubject([{ name: 'commonName', value: options.dnsNames[0] }]);
  cert.setIssuer(caCert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    // GeneralName type 2 is a DNS name, 7 an IP address (RFC 5280).
    {
      name: 'subjectAltName',
      altNames: [
        ...options.dnsNames.map((value) => ({ type: 2, value })),
        ...(options.ipAddresses ?? []).map((ip) => ({ type: 7, ip })),
      ],
    },
    { name: 'subjectKeyIdentifier' },
    // Lets verifiers pick the right CA when the bundle holds more than one.
    { name: 'authorityKeyIdentifier', keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
  ]);
  cert.sign(caKey, forge.md.sha256.create());
  return { cert: forge.pki.certificateToPem(cert), key: keys.pem };
}

/** A random positive 128-bit serial: the top bit is cleared (positive) and the next set (no leading zero byte). */
export function randomSerialHex(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] & 0x7f) | 0x40;
  return bytes.toString('hex');
}

function newCertificate(publicKey: forge.pki.PublicKey, now: Date, validitySeconds: number): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  cert.serialNumber = randomSerialHex();
  cert.validity.notBefore = new Date(now.getTime() - CLOCK_SKEW_SECONDS * 1000);
  cert.validity.notAfter = new Date(now.getTime() + validitySeconds * 1000);
  return cert;
}

async function generateKeys(): Promise<{ publicKey: forge.pki.rsa.PublicKey; privateKey: forge.pki.rsa.PrivateKey; pem: string }> {
  const { publicKey, privateKey } = await generateRsaKeyPair('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  return {
    publicKey: forge.pki.publicKeyFromPem(publicKey),
    privateKey: forge.pki.privateKeyFromPem(privateKey),
    pem: privateKey,
  };
}
