/**
 * Client certificates on POST /mutate (--client-ca-file, --client-allowed-names): the webhook
 * answers only the kube-apiserver, which presents a certificate from its admission configuration.
 * The TLS handshake asks every client for a certificate but lets one without through (the
 * kubelet's probes and metrics scrapers have none); /mutate then refuses it by what the socket says.
 */
import { readFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { OptionError } from '@cryo/common';

export interface ClientAuth {
  /** PEM certificates a client certificate must chain to. */
  ca: string;
  /** CommonNames or DNS SANs accepted; any the CA signed when empty. */
  allowedNames: readonly string[];
}

export interface ClientRefusal {
  status: 401 | 403;
  reason: 'no-client-certificate' | 'untrusted-client-certificate' | 'client-name-not-allowed';
  message: string;
  /** The names the certificate carries, for the log. */
  names?: string[];
}

const DOCS = 'docs/security.md#the-webhook-answers-only-the-kube-apiserver';
const FIX = `configure the kube-apiserver's admission configuration (--admission-control-config-file) with a client certificate signed by --client-ca-file for this webhook's Service; see ${DOCS}`;

/** The certificates of a PEM CA bundle file; an OptionError naming the flag when there are none. */
export function readClientCaFile(file: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new OptionError(`cannot read ${file}: ${(err as Error).message}`);
  }
  const blocks = text.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw new OptionError(`${file} holds no PEM certificate (-----BEGIN CERTIFICATE-----); expected the CA bundle that signs the kube-apiserver's client certificate`);
  blocks.forEach((block, i) => {
    try {
      new X509Certificate(block);
    } catch (err) {
      throw new OptionError(`certificate ${i + 1} of ${blocks.length} in ${file} does not parse: ${(err as Error).message}`);
    }
  });
  return `${blocks.join('\n')}\n`;
}

/** What the socket's client certificate does not satisfy, or undefined when it may be answered. */
export function clientRefusal(socket: TLSSocket, allowedNames: readonly string[]): ClientRefusal | undefined {
  const peer = socket.getPeerCertificate();
  // No certificate at all reads as an empty object (and authorizationError UNABLE_TO_GET_ISSUER_CERT).
  if (peer === null || Object.keys(peer).length === 0) {
    return { status: 401, reason: 'no-client-certificate', message: `no client certificate; this webhook answers only the kube-apiserver: ${FIX}` };
  }
  const names = certificateNames(peer);
  if (!socket.authorized) {
    const why = String(socket.authorizationError ?? 'not verified');
    return {
      status: 401,
      reason: 'untrusted-client-certificate',
      message: `the client certificate (${names.join(', ') || 'no name'}) is not signed by --client-ca-file (${why}); ${FIX}`,
      names,
    };
  }
  if (allowedNames.length > 0 && !names.some((name) => allowedNames.includes(name))) {
    return {
      status: 403,
      reason: 'client-name-not-allowed',
      message: `the client certificate names ${names.map((n) => JSON.stringify(n)).join(', ') || 'nothing'}, none of --client-allowed-names; give the kube-apiserver a certificate with one of those names (or add its name to the flag); see ${DOCS}`,
      names,
    };
  }
  return undefined;
}

/** The subject CommonName(s) and DNS SANs. */
function certificateNames(peer: ReturnType<TLSSocket['getPeerCertificate']>): string[] {
  // Typed a string, but an array when the subject has several.
  const cn: unknown = peer.subject?.CN;
  const dns = (peer.subjectaltname ?? '')
    .split(', ')
    .filter((entry) => entry.startsWith('DNS:'))
    .map((entry) => entry.slice(4));
  return [...(Array.isArray(cn) ? (cn as string[]) : typeof cn === 'string' ? [cn] : []), ...dns];
}
