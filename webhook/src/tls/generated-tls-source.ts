/**
 * Generated TLS: the shared Secret holds the CA and serving certificate, the caBundle keeper
 * makes the API server trust that CA, and one timer re-syncs the Secret every resync interval and
 * exactly when the certificate enters its renewal window. Whichever replica gets there first
 * renews; the others pick the new certificate up from the Secret on their next sync.
 */
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { describeApiError, type Logger, type Metrics, Backoff, unrefTimeout, type BackoffOptions, serviceDnsNames, type TlsKeyPair } from '@cryo/common';
import { CaBundleKeeper, type CaBundleState } from './ca-bundle.ts';
import { SharedTlsSecret, type SyncResult } from './shared-tls-secret.ts';
import { tlsMetrics } from './tls-metrics.ts';
import { ServedCertificate, type TlsSource, type TlsStatus } from './tls-source.ts';

export interface GeneratedTlsSourceOptions {
  kubeConfig: KubeConfig;
  namespace: string;
  serviceName: string;
  webhookConfigName: string;
  secretName: string;
  validitySeconds: number;
  renewBeforeSeconds: number;
  resyncSeconds: number;
  logger: Logger;
  metrics: Metrics;
  backoff?: BackoffOptions;
}

export interface GeneratedTlsStatus extends TlsStatus {
  caBundle: CaBundleState;
}

// Never sync more often than this, even if a misconfigured renewal window is always open.
const MIN_SYNC_INTERVAL_MS = 200;

export class GeneratedTlsSource implements TlsSource {
  private readonly options: GeneratedTlsSourceOptions;
  private readonly logger: Logger;
  private readonly served: ServedCertificate;
  private readonly secret: SharedTlsSecret;
  private readonly caBundle: CaBundleKeeper;
  private readonly backoff: Backoff;
  private readonly renewBeforeSeconds: number;
  private starting: Promise<TlsKeyPair> | undefined;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private wakeUp: (() => void) | undefined;
  private syncing: Promise<void> | undefined;

  constructor(options: GeneratedTlsSourceOptions) {
    this.options = options;
    this.logger = options.logger;
    const metrics = tlsMetrics(options.metrics);
    this.served = new ServedCertificate(this.logger, metrics);
    this.backoff = new Backoff(options.backoff);
    this.renewBeforeSeconds = effectiveRenewBefore(options, this.logger);
    this.secret = new SharedTlsSecret({
      coreApi: options.kubeConfig.makeApiClient(CoreV1Api),
      namespace: options.namespace,
      name: options.secretName,
      dnsNames: serviceDnsNames(options.serviceName, options.namespace),
      validitySeconds: options.validitySeconds,
      renewBeforeSeconds: this.renewBeforeSeconds,
      logger: this.logger,
    });
    this.caBundle = new CaBundleKeeper({
      kubeConfig: options.kubeConfig,
      webhookConfigName: options.webhookConfigName,
      logger: this.logger,
      resyncSeconds: options.resyncSeconds,
      onWrite: () => metrics.caBundleWrites.inc(),
      backoff: options.backoff,
    });
  }

  get status(): GeneratedTlsStatus {
    return { ...this.served.status, caBundle: this.caBundle.state };
  }

  onChange(listener: (pair: TlsKeyPair) => void): void {
    this.served.onChange(listener);
  }

  start(): Promise<TlsKeyPair> {
    this.starting ??= this.firstSync();
    return this.starting;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.wakeUp?.();
    await Promise.all([this.caBundle.stop(), this.syncing?.catch(() => undefined)]);
  }

  // Until the first certificate arrives there is nothing to serve, so keep trying (the pod stays
  // unready meanwhile) instead of crashing on an API server that is briefly unavailable.
  private async firstSync(): Promise<TlsKeyPair> {
    for (;;) {
      if (this.stopped) throw new Error('TLS source stopped before it had a certificate');
      try {
        const result = await this.secret.sync();
        if (this.stopped) break;
        this.apply(result);
        break;
      } catch (err) {
        const delay = this.backoff.next();
        this.logger.error({ secret: this.options.secretName, err: describeApiError(err), retryInMs: delay }, 'could not load the TLS Secret; retrying');
        await this.sleep(delay);
      }
    }
    if (this.stopped) throw new Error('TLS source stopped before it had a certificate');
    this.backoff.reset();
    this.caBundle.start();
    this.scheduleSync(this.nextSyncDelay());
    const pair = this.served.current;
    if (pair === undefined) throw new Error('TLS source has no certificate after its first sync');
    return pair;
  }

  private apply(result: SyncResult): void {
    const { material, outcome } = result;
    const why = { created: 'created the TLS Secret', renewed: 'renewed the serving certificate', current: 'read from the TLS Secret' }[outcome];
    this.served.set(material.serving, material.servingInfo, why);
    this.caBundle.setCaCert(material.ca.cert);
  }

  private scheduleSync(delayMs: number): void {
    clearTimeout(this.timer);
    if (this.stopped) return;
    this.timer = unrefTimeout(() => {
      this.syncing = this.resync().finally(() => {
        this.syncing = undefined;
      });
    }, delayMs);
  }

  private async resync(): Promise<void> {
    try {
      const result = await this.secret.sync();
      if (this.stopped) return;
      this.apply(result);
      this.backoff.reset();
      this.scheduleSync(this.nextSyncDelay());
    } catch (err) {
      if (this.stopped) return;
      const delay = Math.min(this.backoff.next(), this.options.resyncSeconds * 1000);
      const status = this.served.status;
      this.logger.error(
        { secret: this.options.secretName, err: describeApiError(err), retryInMs: delay, servingNotAfter: status.notAfter },
        'could not sync the TLS Secret; still serving the current certificate',
      );
      this.scheduleSync(delay);
    }
  }

  /** The next resync, or the moment the certificate in use enters its renewal window if sooner. */
  private nextSyncDelay(): number {
    const resyncMs = this.options.resyncSeconds * 1000;
    const notAfter = this.served.status.notAfter;
    if (notAfter === undefined) return resyncMs;
    // A few ms past the boundary, so the sync sees the window as open.
    const untilRenewalMs = notAfter.getTime() - this.renewBeforeSeconds * 1000 - Date.now() + 10;
    return Math.max(MIN_SYNC_INTERVAL_MS, Math.min(resyncMs, untilRenewalMs));
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = unrefTimeout(done, ms);
      this.wakeUp = done;
      function done() {
        clearTimeout(timer);
        resolve();
      }
    });
  }
}

// A renewal window as long as the validity would renew every certificate the moment it is issued.
function effectiveRenewBefore(options: GeneratedTlsSourceOptions, logger: Logger): number {
  if (options.renewBeforeSeconds < options.validitySeconds) return options.renewBeforeSeconds;
  const renewBefore = options.validitySeconds / 3;
  logger.warn(
    { validitySeconds: options.validitySeconds, renewBeforeSeconds: options.renewBeforeSeconds, usingSeconds: renewBefore },
    'serving-cert-renew-before is not shorter than serving-cert-validity; renewing when a third of the lifetime is left',
  );
  return renewBefore;
}
