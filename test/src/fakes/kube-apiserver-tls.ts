/**
 * A throwaway CA and a serving certificate for 127.0.0.1/localhost, so clients verify TLS
 * exactly as against a real cluster (no skipTLSVerify anywhere). Made with the same small PKI
 * the webhook uses (@cryo/common).
 */
import { createCertificateAuthority, issueServingCertificate } from '@cryo/common';

export interface ServingCertificates {
  caPem: string;
  certPem: string;
  keyPem: string;
}

let shared: Promise<ServingCertificates> | undefined;

/**
 * The certificates of every fake apiserver in this process: made on the first start and then
 * reused, because two RSA keys cost a few hundred milliseconds on a loaded CI machine and most
 * tests start a server of their own. Nothing depends on servers having distinct CAs.
 */
export function servingCertificates(): Promise<ServingCertificates> {
  shared ??= createServingCertificates();
  return shared;
}

async function createServingCertificates(): Promise<ServingCertificates> {
  const ca = await createCertificateAuthority({ commonName: 'cryo-fake-kube-apiserver-ca', validitySeconds: 86400 });
  const server = await issueServingCertificate(ca, { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], validitySeconds: 86400 });
  return { caPem: ca.cert, certPem: server.cert, keyPem: server.key };
}
