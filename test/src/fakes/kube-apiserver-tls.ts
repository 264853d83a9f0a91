/**
 * A throwaway CA and a serving certificate for 127.0.0.1/localhost, so clients verify TLS
 * exactly as against a real cluster (no skipTLSVerify anywhere). Keys come from node:crypto
 * because forge's pure-JS RSA key generation takes seconds; forge only signs.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import forge from 'node-forge';

export interface ServingCertificates {
  caPem: string;
  certPem: string;
  keyPem: string;
}

interface KeyPair {
  privateKey: forge.pki.rsa.PrivateKey;
  publicKey: forge.pki.rsa.PublicKey;
  privateKeyPem: string;
}

function rsaKeyPair(): KeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  });
  return {
    privateKey: forge.pki.privateKeyFromPem(privateKey),
    publicKey: forge.pki.publicKeyFromPem(publicKey),
    privateKeyPem: privateKey,
  };
}

function newCertificate(publicKey: forge.pki.rsa.PublicKey, subject: forge.pki.CertificateField[], issuer: forge.pki.CertificateField[]): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  // A leading 0x01 keeps the serial positive, as DER integers are signed.
  cert.serialNumber = `01${randomBytes(15).toString('hex')}`;
  // An hour of slack for clock skew between the test processes is plenty.
  cert.validity.notBefore = new Date(Date.now() - 60 * 60 * 1000);
  cert.validity.notAfter = new Date(Date.now() + 24 * 60 * 60 * 1000);
  cert.setSubject(subject);
  cert.setIssuer(issuer);
  return cert;
}

let shared: ServingCertificates | undefined;

/**
 * The certificates of every fake apiserver in this process: made on the first start and then
 * reused, because two RSA keys cost a few hundred milliseconds on a loaded CI machine and most
 * tests start a server of their own. Nothing depends on servers having distinct CAs.
 */
export function servingCertificates(): ServingCertificates {
  shared ??= createServingCertificates();
  return shared;
}

export function createServingCertificates(): ServingCertificates {
  const caKeys = rsaKeyPair();
  const caName = [{ name: 'commonName', value: 'cryo-fake-kube-apiserver-ca' }];
  const ca = newCertificate(caKeys.publicKey, caName, caName);
  ca.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  ca.sign(caKeys.privateKey, forge.md.sha256.create());

  const serverKeys = rsaKeyPair();
  const server = newCertificate(serverKeys.publicKey, [{ name: 'commonName', value: 'kube-apiserver' }], caName);
  server.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    // type 7 is an IP address, type 2 a DNS name (RFC 5280 GeneralName).
    { name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }, { type: 2, value: 'localhost' }] },
    { name: 'authorityKeyIdentifier', keyIdentifier: ca.generateSubjectKeyIdentifier().getBytes() },
  ]);
  server.sign(caKeys.privateKey, forge.md.sha256.create());

  return {
    caPem: forge.pki.certificateToPem(ca),
    certPem: forge.pki.certificateToPem(server),
    keyPem: serverKeys.privateKeyPem,
  };
}
