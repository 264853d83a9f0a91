/**
 * One CA and one serving certificate for all replicas, shared through a `kubernetes.io/tls`
 * Secret. Replicas that each generated their own CA would fight over the caBundle and the API
 * server would see "x509: certificate signed by unknown authority" from whichever lost.
 *
 * Every write is optimistic: create fails with 409 if another replica created first, replace
 * fails with 409 if another replica wrote since we read. Either way we re-read and take theirs,
 * so replicas converge instead of overwriting each other; the attempts are bounded.
 */
import type { CoreV1Api, V1Secret } from '@kubernetes/client-node';
import { describeApiError, isConflict, isNotFound, type Logger, createCertificateAuthority, issueServingCertificate, type TlsKeyPair, checkKeyPair, type CertificateInfo } from '@cryo/common';

export const SECRET_KEYS = { cert: 'tls.crt', key: 'tls.key', caCert: 'ca.crt', caKey: 'ca.key' } as const;

export interface SharedTlsMaterial {
  ca: TlsKeyPair;
  serving: TlsKeyPair;
  servingInfo: CertificateInfo;
}

/**
 * `created`: this replica created the Secret. `renewed`: this replica replaced its content.
 * `current`: the Secret was fine as read (possibly written by another replica, possibly after
 * losing a race).
 */
export type SyncOutcome = 'created' | 'renewed' | 'current';

export interface SyncResult {
  material: SharedTlsMaterial;
  outcome: SyncOutcome;
}

export interface SharedTlsSecretOptions {
  coreApi: CoreV1Api;
  namespace: string;
  name: string;
  dnsNames: readonly string[];
  validitySeconds: number;
  /** Renew once less than this is left of the serving certificate. */
  renewBeforeSeconds: number;
  logger: Logger;
  /** Read-decide-write rounds before giving up on a contended Secret (the caller retries later). */
  maxAttempts?: number;
  now?: () => Date;
}

/** What a read Secret is good for: serve it as is, or replace it (keeping the CA when it is intact). */
export type SecretAssessment =
  | { usable: true; material: SharedTlsMaterial }
  | { usable: false; reason: string; keepCa?: TlsKeyPair };

export class SharedTlsSecret {
  private readonly options: SharedTlsSecretOptions;

  constructor(options: SharedTlsSecretOptions) {
    this.options = options;
  }

  /**
   * Reads the Secret and returns material fit to serve, creating or renewing it when needed.
   * API errors other than the expected 404/409 are thrown for the caller to retry.
   */
  async sync(): Promise<SyncResult> {
    const { coreApi, namespace, name, logger } = this.options;
    const maxAttempts = this.options.maxAttempts ?? 5;
    for (let attempt = 1; attempt <= maxAttempts; attempt++) {
      let secret: V1Secret | undefined;
      try {
        secret = await coreApi.readNamespacedSecret({ name, namespace });
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }

      if (secret === undefined) {
        const material = await this.generate();
        try {
          await coreApi.createNamespacedSecret({ namespace, body: this.newSecret(material) });
          logger.info({ secret: name, serial: material.servingInfo.serial, notAfter: material.servingInfo.notAfter }, 'created the shared TLS Secret with a new CA');
          return { material, outcome: 'created' };
        } catch (err) {
          if (!isConflict(err)) throw err;
          logger.info({ secret: name }, 'another replica created the TLS Secret first; using theirs');
          continue;
        }
      }

      const assessment = assessSecret(secret, this.assessOptions());
      if (assessment.usable) return { material: assessment.material, outcome: 'current' };

      logger.info({ secret: name, reason: assessment.reason, keepCa: assessment.keepCa !== undefined }, 'renewing the shared TLS Secret');
      const material = await this.generate(assessment.keepCa);
      try {
        await coreApi.replaceNamespacedSecret({ name, namespace, body: updatedSecret(secret, material) });
        logger.info({ secret: name, serial: material.servingInfo.serial, notAfter: material.servingInfo.notAfter }, 'renewed the shared TLS Secret');
        return { material, outcome: 'renewed' };
      } catch (err) {
        if (!isConflict(err) && !isNotFound(err)) throw err;
        // Another replica renewed (or deleted) it since we read it: look again rather than overwrite.
        logger.info({ secret: name, err: describeApiError(err) }, 'the TLS Secret changed while renewing; re-reading');
      }
    }
    throw new Error(`TLS Secret ${namespace}/${name} kept changing under us (${maxAttempts} attempts); will retry`);
  }

  private assessOptions(): AssessOptions {
    return {
      dnsNames: this.options.dnsNames,
      validitySeconds: this.options.validitySeconds,
      renewBeforeSeconds: this.options.renewBeforeSeconds,
      now: this.now(),
    };
  }

  private now(): Date {
    return this.options.now?.() ?? new Date();
  }

  private async generate(keepCa?: TlsKeyPair): Promise<SharedTlsMaterial> {
    const now = this.now();
    const ca = keepCa ?? (await createCertificateAuthority({ now }));
    const serving = await issueServingCertificate(ca, { dnsNames: this.options.dnsNames, validitySeconds: this.options.validitySeconds, now });
    const check = checkKeyPair(serving, { caCert: ca.cert });
    if (!check.ok) throw new Error(`freshly issued serving certificate is unusable: ${check.reason}`);
    return { ca, serving, servingInfo: check.info };
  }

  private newSecret(material: SharedTlsMaterial): V1Secret {
    return {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: {
        name: this.options.name,
        namespace: this.options.namespace,
        labels: { 'app.kubernetes.io/managed-by': 'cryo-webhook', 'app.kubernetes.io/component': 'webhook-tls' },
      },
      type: 'kubernetes.io/tls',
      data: encodeData(material),
    };
  }
}

export interface AssessOptions {
  dnsNames: readonly string[];
  validitySeconds: number;
  renewBeforeSeconds: number;
  now: Date;
}

export function assessSecret(secret: V1Secret, options: AssessOptions): SecretAssessment {
  const data = decodeData(secret);
  const caCheck = assessCa(data, options);
  if (!caCheck.ok) return { usable: false, reason: caCheck.reason };
  const ca = caCheck.ca;

  if (data.cert === undefined || data.key === undefined) {
    return { usable: false, reason: `${SECRET_KEYS.cert} or ${SECRET_KEYS.key} missing`, keepCa: ca };
  }
  const serving = { cert: data.cert, key: data.key };
  const check = checkKeyPair(serving, { caCert: ca.cert, dnsNames: options.dnsNames, now: options.now });
  if (!check.ok) return { usable: false, reason: `serving certificate: ${check.reason}`, keepCa: ca };
  const msLeft = check.info.notAfter.getTime() - options.now.getTime();
  if (msLeft <= options.renewBeforeSeconds * 1000) {
    return { usable: false, reason: `serving certificate expires at ${check.info.notAfter.toISOString()}`, keepCa: ca };
  }
  return { usable: true, material: { ca, serving, servingInfo: check.info } };
}

type DecodedData = Partial<Record<keyof typeof SECRET_KEYS, string>>;

function assessCa(data: DecodedData, options: AssessOptions): { ok: true; ca: TlsKeyPair } | { ok: false; reason: string } {
  if (data.caCert === undefined || data.caKey === undefined) return { ok: false, reason: `${SECRET_KEYS.caCert} or ${SECRET_KEYS.caKey} missing` };
  const ca = { cert: data.caCert, key: data.caKey };
  // The CA must outlive any certificate issued now, or the serving cert would fail before its time.
  const mustBeValidUntil = new Date(options.now.getTime() + options.validitySeconds * 1000);
  const check = checkKeyPair(ca);
  if (!check.ok) return { ok: false, reason: `CA: ${check.reason}` };
  if (!check.info.isCA) return { ok: false, reason: 'CA: certificate is not a CA' };
  if (check.info.notAfter <= mustBeValidUntil) return { ok: false, reason: `CA: expires at ${check.info.notAfter.toISOString()}` };
  return { ok: true, ca };
}

function decodeData(secret: V1Secret): DecodedData {
  const decoded: DecodedData = {};
  for (const [field, key] of Object.entries(SECRET_KEYS) as [keyof typeof SECRET_KEYS, string][]) {
    const value = secret.data?.[key];
    if (value !== undefined && value !== '') decoded[field] = Buffer.from(value, 'base64').toString('utf8');
  }
  return decoded;
}

function encodeData(material: SharedTlsMaterial): Record<string, string> {
  const b64 = (pem: string) => Buffer.from(pem, 'utf8').toString('base64');
  return {
    [SECRET_KEYS.cert]: b64(material.serving.cert),
    [SECRET_KEYS.key]: b64(material.serving.key),
    [SECRET_KEYS.caCert]: b64(material.ca.cert),
    [SECRET_KEYS.caKey]: b64(material.ca.key),
  };
}

// Keeps what others put on the Secret (labels, annotations, owner, extra keys, its type, which is
// immutable) and the resourceVersion we read, so a concurrent write makes this one fail with 409.
function updatedSecret(read: V1Secret, material: SharedTlsMaterial): V1Secret {
  const metadata = { ...read.metadata };
  delete metadata.managedFields;
  return { ...read, metadata, data: { ...read.data, ...encodeData(material) } };
}
