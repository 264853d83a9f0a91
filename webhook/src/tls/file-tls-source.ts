/**
 * TLS from files someone else renews, typically a cert-manager Secret mounted into the pod.
 * The kubelet updates such a volume by writing a new `..data_tmp` directory and renaming it over
 * the `..data` symlink the files point through, so the files themselves never see a write event:
 * we watch the containing directories instead, and poll as well in case an event is missed.
 * A pair that does not load (half-written, mismatched, garbage) is logged and the old one kept.
 */
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { checkKeyPair, CoalescingRunner, unrefTimeout, type CertificateInfo, type Logger, type Metrics, type TlsKeyPair } from '@cryo/common';
import { tlsMetrics } from './tls-metrics.ts';
import { ServedCertificate, type TlsSource, type TlsStatus } from './tls-source.ts';

export interface FileTlsSourceOptions {
  certFile: string;
  keyFile: string;
  /** Re-read the files this often even without a change event. */
  pollSeconds: number;
  logger: Logger;
  metrics: Metrics;
  /** Wait this long after a change event before reading, so both files of a swap have landed. */
  settleMs?: number;
}

export class FileTlsSource implements TlsSource {
  private readonly options: FileTlsSourceOptions;
  private readonly logger: Logger;
  private readonly served: ServedCertificate;
  private readonly watchers = new Map<string, FSWatcher>();
  private starting: Promise<TlsKeyPair> | undefined;
  private stopped = false;
  private pollTimer: NodeJS.Timeout | undefined;
  private settleTimer: NodeJS.Timeout | undefined;
  private readonly reloads = new CoalescingRunner(() => this.reloadOnce(), () => !this.stopped);
  private lastRejected: string | undefined;

  constructor(options: FileTlsSourceOptions) {
    this.options = options;
    this.logger = options.logger;
    this.served = new ServedCertificate(this.logger, tlsMetrics(options.metrics));
  }

  get status(): TlsStatus {
    return this.served.status;
  }

  onChange(listener: (pair: TlsKeyPair) => void): void {
    this.served.onChange(listener);
  }

  /** Rejects when the files do not hold a usable pair at start: that is a deployment mistake to surface. */
  start(): Promise<TlsKeyPair> {
    this.starting ??= this.firstLoad();
    return this.starting;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.pollTimer);
    clearTimeout(this.settleTimer);
    for (const watcher of this.watchers.values()) watcher.close();
    this.watchers.clear();
    await this.reloads.inFlight;
  }

  private async firstLoad(): Promise<TlsKeyPair> {
    const loaded = await this.read();
    if (!loaded.ok) throw new Error(`cannot serve TLS from ${this.options.certFile} and ${this.options.keyFile}: ${loaded.reason}`);
    this.served.set(loaded.pair, loaded.info, `loaded from ${this.options.certFile}`);
    this.warnIfExpired(loaded.info);
    this.watchDirectories();
    this.schedulePoll();
    return loaded.pair;
  }

  private async read(): Promise<{ ok: true; pair: TlsKeyPair; info: CertificateInfo } | { ok: false; reason: string }> {
    let pair: TlsKeyPair;
    try {
      const [cert, key] = await Promise.all([readFile(this.options.certFile, 'utf8'), readFile(this.options.keyFile, 'utf8')]);
      pair = { cert, key };
    } catch (err) {
      return { ok: false, reason: err instanceof Error ? err.message : String(err) };
    }
    const check = checkKeyPair(pair);
    return check.ok ? { ok: true, pair, info: check.info } : { ok: false, reason: check.reason };
  }

  /** Re-reads the files now (or right after the read in flight) and serves them if they changed and load. */
  reload(): Promise<void> {
    return this.reloads.run();
  }

  private async reloadOnce(): Promise<void> {
    const loaded = await this.read();
    if (this.stopped) return;
    if (!loaded.ok) {
      this.rejected(loaded.reason);
      return;
    }
    const current = this.served.current;
    if (current?.cert === loaded.pair.cert && current.key === loaded.pair.key) return;
    this.lastRejected = undefined;
    this.served.set(loaded.pair, loaded.info, `reloaded from ${this.options.certFile}`);
    this.warnIfExpired(loaded.info);
  }

  // Logged once per distinct failure, not on every poll while the files stay broken.
  private rejected(reason: string): void {
    if (reason === this.lastRejected) return;
    this.lastRejected = reason;
    this.logger.error(
      { certFile: this.options.certFile, keyFile: this.options.keyFile, reason, servingSerial: this.served.status.serial },
      'TLS files do not hold a usable pair; keeping the current certificate',
    );
  }

  private warnIfExpired(info: CertificateInfo): void {
    if (Date.now() >= info.notAfter.getTime()) {
      this.logger.warn({ certFile: this.options.certFile, notAfter: info.notAfter }, 'the TLS certificate from file has expired');
    }
  }

  private watchDirectories(): void {
    for (const dir of new Set([dirname(this.options.certFile), dirname(this.options.keyFile)])) {
      if (this.watchers.has(dir)) continue;
      try {
        const watcher = watch(dir, { persistent: false }, () => this.changed());
        watcher.on('error', (err) => {
          this.logger.warn({ dir, err }, 'watching the TLS directory failed; relying on polling');
          watcher.close();
          this.watchers.delete(dir);
        });
        this.watchers.set(dir, watcher);
      } catch (err) {
        this.logger.warn({ dir, err }, 'cannot watch the TLS directory; relying on polling');
      }
    }
  }

  private changed(): void {
    if (this.stopped) return;
    clearTimeout(this.settleTimer);
    this.settleTimer = unrefTimeout(() => void this.reload(), this.options.settleMs ?? 100);
  }

  private schedulePoll(): void {
    if (this.stopped) return;
    this.pollTimer = unrefTimeout(() => {
      // A directory that vanished and came back needs a new watcher.
      this.watchDirectories();
      void this.reload().finally(() => this.schedulePoll());
    }, this.options.pollSeconds * 1000);
  }
}
