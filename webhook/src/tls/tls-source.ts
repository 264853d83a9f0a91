/**
 * What the HTTPS server takes its certificate from, and the bookkeeping every source shares:
 * the pair in use, change listeners, status for /readyz, the expiry gauge and rotation counter.
 */
import type { Logger, TlsKeyPair, CertificateInfo } from '@cryo/common';
import type { TlsMetrics } from './tls-metrics.ts';

export type { TlsKeyPair } from '@cryo/common';

export interface TlsStatus {
  /** A certificate is loaded and in date. */
  ready: boolean;
  notAfter?: Date;
  serial?: string;
}

export interface TlsSource {
  /** Resolves with the first pair to serve; keeps it current from then on until `stop()`. */
  start(): Promise<TlsKeyPair>;
  /** Called with each new pair after `start()` resolved (hand it to `server.setSecureContext`). */
  onChange(listener: (pair: TlsKeyPair) => void): void;
  stop(): Promise<void>;
  readonly status: TlsStatus;
}

export class ServedCertificate {
  private readonly logger: Logger;
  private readonly metrics: TlsMetrics;
  private readonly listeners: ((pair: TlsKeyPair) => void)[] = [];
  private pair: TlsKeyPair | undefined;
  private info: CertificateInfo | undefined;

  constructor(logger: Logger, metrics: TlsMetrics) {
    this.logger = logger;
    this.metrics = metrics;
  }

  get current(): TlsKeyPair | undefined {
    return this.pair;
  }

  get status(): TlsStatus {
    if (this.info === undefined) return { ready: false };
    return { ready: Date.now() < this.info.notAfter.getTime(), notAfter: this.info.notAfter, serial: this.info.serial };
  }

  onChange(listener: (pair: TlsKeyPair) => void): void {
    this.listeners.push(listener);
  }

  /** Serves `pair` from now on; tells the listeners when it replaces another certificate. */
  set(pair: TlsKeyPair, info: CertificateInfo, why: string): boolean {
    if (this.info?.serial === info.serial && this.pair?.cert === pair.cert) return false;
    const previous = this.info;
    this.pair = pair;
    this.info = info;
    this.metrics.servingCertExpiry.set(info.notAfter.getTime() / 1000);
    if (previous === undefined) {
      this.logger.info({ serial: info.serial, notAfter: info.notAfter, why }, 'serving certificate loaded');
      return true;
    }
    this.metrics.servingCertRotations.inc();
    this.logger.info({ serial: info.serial, previousSerial: previous.serial, notAfter: info.notAfter, why }, 'serving certificate rotated');
    for (const listener of this.listeners) {
      try {
        listener(pair);
      } catch (err) {
        this.logger.error({ err }, 'TLS change listener failed');
      }
    }
    return true;
  }
}
