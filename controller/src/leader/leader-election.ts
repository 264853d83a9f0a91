/**
 * Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection does it
 * (@kubernetes/client-node 2.0 has none): so that of the controller's replicas one at a time acts.
 *
 * - **Acquire**: a candidate reads the Lease every retry period. It takes a Lease that does not
 *   exist (create), that nobody holds (released), or whose record it has seen unchanged for the
 *   lease duration (the holder stopped renewing) — measured on the candidate's own clock from
 *   when it saw the record change, never from the times written in it, so clock skew between
 *   nodes does not matter. Every write carries the resourceVersion it read: of two candidates
 *   one wins, the other gets 409.
 * - **Renew**: the leader rewrites renewTime every retry period. When it has not renewed for the
 *   renew deadline (shorter than the lease duration, config.ts checks), it stops acting at once —
 *   a timer, so a renewal stuck in a dead connection cannot delay that — and becomes a candidate
 *   again. Another replica can take over only a lease duration after it last saw a renewal, by
 *   which time this one has stopped.
 * - **Release**: a leader that stops clears holderIdentity (lease duration 1 s), so another
 *   replica takes over at its next try instead of waiting out the lease.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { CoordinationV1Api, V1MicroTime, type KubeConfig, type V1Lease, type V1LeaseSpec } from '@kubernetes/client-node';
import { describeApiError, isConflict, isNotFound, unrefTimeout, type Logger } from '@cryo/common';

export interface LeaderElectionOptions {
  kubeConfig: KubeConfig;
  namespace: string;
  leaseName: string;
  /** Unique among the replicas; see leaderIdentity(). */
  identity: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  logger: Logger;
  onStartedLeading: () => void;
  /** Called when leadership ends for any reason (renewal failed, taken over, stopped). */
  onStoppedLeading: (why: string) => void;
}

/** `<name>_<random>`: a restarted replica is a new holder, which waits out an unreleased lease of its previous self. */
export function leaderIdentity(name: string): string {
  return `${name === '' ? hostname() : name}_${randomBytes(4).toString('hex')}`;
}

/** One try: acquired (or renewed), or not; `heldBy` when a Lease this replica led is now another's. */
type Attempt = { acquired: true } | { acquired: false; heldBy?: string };

/** The time fields are MicroTimes on the wire; client-node hands back what it read as strings. */
type LeaseSpecOnWire = Omit<V1LeaseSpec, 'acquireTime' | 'renewTime'> & { acquireTime?: V1MicroTime | string; renewTime?: V1MicroTime | string };

export class LeaderElector {
  private readonly options: LeaderElectionOptions;
  private readonly api: CoordinationV1Api;
  private leading = false;
  private running = false;
  private lastRenewedAt = 0;
  /** The Lease's record as last seen, and when (performance.now()) it was seen to change. */
  private observed: { record: string; at: number } | undefined;
  private tickTimer: NodeJS.Timeout | undefined;
  private deadlineTimer: NodeJS.Timeout | undefined;
  private attempt: Promise<void> | undefined;

  constructor(options: LeaderElectionOptions) {
    this.options = options;
    this.api = options.kubeConfig.makeApiClient(CoordinationV1Api);
  }

  get identity(): string {
    return this.options.identity;
  }

  /** True while this replica holds the Lease and renewed it within the renew deadline. */
  get isLeader(): boolean {
    return this.leading && performance.now() - this.lastRenewedAt < this.options.renewDeadlineMs;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.schedule(0);
  }

  /** Stops trying; a leader stops acting and releases the Lease. */
  async stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.tickTimer);
    await this.attempt;
    if (this.leading) {
      this.stopLeading('this replica is stopping');
      await this.release();
    }
  }

  private schedule(delayMs: number): void {
    if (!this.running) return;
    clearTimeout(this.tickTimer);
    this.tickTimer = unrefTimeout(() => {
      this.attempt = this.tick().finally(() => {
        this.attempt = undefined;
      });
    }, delayMs);
  }

  private async tick(): Promise<void> {
    // Renewal counts from when it was sent: the others can only have seen it later.
    const sentAt = performance.now();
    let result: Attempt;
    try {
      result = await this.tryAcquireOrRenew();
    } catch (error) {
      this.options.logger.warn({ lease: this.leaseRef, err: describeApiError(error), leading: this.leading }, 'could not read or write the leader-election Lease');
      result = { acquired: false };
    }
    if (!this.running) return;
    // A renewal that took longer than the deadline is worth nothing: act only on a fresh one.
    if (result.acquired && performance.now() - sentAt < this.options.renewDeadlineMs) {
      this.lastRenewedAt = sentAt;
      this.armDeadline(sentAt);
      if (!this.leading) {
        this.leading = true;
        this.options.logger.info({ lease: this.leaseRef, identity: this.identity }, 'became the leader');
        this.options.onStartedLeading();
      }
    } else if (this.leading && !result.acquired && result.heldBy !== undefined) {
      this.stopLeading(`the Lease is held by ${result.heldBy || 'nobody'}`);
    }
    // A candidate's retries are spread a little, so that replicas started together do not collide forever.
    const jitter = this.leading ? 1 : 1 + Math.random() * 0.2;
    this.schedule(this.options.retryPeriodMs * jitter);
  }

  /** After each renewal: leadership ends by itself if the next one does not come in time. */
  private armDeadline(renewedAt: number): void {
    clearTimeout(this.deadlineTimer);
    this.deadlineTimer = unrefTimeout(() => {
      if (this.leading) this.stopLeading(`could not renew the Lease within ${this.options.renewDeadlineMs} ms`);
    }, renewedAt + this.options.renewDeadlineMs - performance.now());
  }

  private stopLeading(why: string): void {
    if (!this.leading) return;
    this.leading = false;
    clearTimeout(this.deadlineTimer);
    this.options.logger.warn({ lease: this.leaseRef, identity: this.identity, why }, 'stopped leading');
    this.options.onStoppedLeading(why);
  }

  private get leaseRef(): string {
    return `${this.options.namespace}/${this.options.leaseName}`;
  }

  private async tryAcquireOrRenew(): Promise<Attempt> {
    const { namespace, leaseName: name } = this.options;
    const now = performance.now();
    let lease: V1Lease;
    try {
      lease = await this.api.readNamespacedLease({ name, namespace });
    } catch (error) {
      if (!isNotFound(error)) throw error;
      try {
        await this.api.createNamespacedLease({ namespace, body: { metadata: { name, namespace }, spec: this.spec(undefined) as V1LeaseSpec } });
        return { acquired: true };
      } catch (createError) {
        if (isConflict(createError)) return { acquired: false };
        throw createError;
      }
    }
    const spec = (lease.spec ?? {}) as LeaseSpecOnWire;
    const holder = spec.holderIdentity ?? '';
    const record = JSON.stringify([holder, String(spec.renewTime ?? ''), spec.leaseDurationSeconds ?? 0, spec.leaseTransitions ?? 0]);
    if (this.observed?.record !== record) this.observed = { record, at: now };
    const durationMs = (spec.leaseDurationSeconds ?? this.options.leaseDurationMs / 1000) * 1000;
    // It was ours and is not any more (taken over, or released by someone): whatever the clock says, it is lost.
    if (this.leading && holder !== this.identity) return { acquired: false, heldBy: holder };
    if (holder !== '' && holder !== this.identity && this.observed.at + durationMs > now) return { acquired: false };
    try {
      await this.api.replaceNamespacedLease({ name, namespace, body: { ...lease, spec: this.spec(spec) as V1LeaseSpec } });
    } catch (error) {
      // Someone wrote it since we read it: next time we see who.
      if (isConflict(error)) return { acquired: false };
      throw error;
    }
    return { acquired: true };
  }

  /** The spec that makes this replica the holder, from the current one (none: a new Lease). */
  private spec(current: LeaseSpecOnWire | undefined): LeaseSpecOnWire {
    const renewing = current !== undefined && current.holderIdentity === this.identity;
    const now = new V1MicroTime();
    return {
      holderIdentity: this.identity,
      // Rounded up: the others then wait at least as long as this replica counts on.
      leaseDurationSeconds: Math.max(1, Math.ceil(this.options.leaseDurationMs / 1000)),
      acquireTime: renewing ? (current.acquireTime ?? now) : now,
      renewTime: now,
      leaseTransitions: (current?.leaseTransitions ?? 0) + (renewing || current === undefined ? 0 : 1),
    };
  }

  /** Hands the Lease over at once: nobody holds it, and it lasts a second. */
  private async release(): Promise<void> {
    const { namespace, leaseName: name } = this.options;
    try {
      const lease = await this.api.readNamespacedLease({ name, namespace });
      const spec = (lease.spec ?? {}) as LeaseSpecOnWire;
      if (spec.holderIdentity !== this.identity) return;
      const now = new V1MicroTime();
      const released: LeaseSpecOnWire = { leaseDurationSeconds: 1, acquireTime: now, renewTime: now, leaseTransitions: spec.leaseTransitions ?? 0 };
      await this.api.replaceNamespacedLease({ name, namespace, body: { ...lease, spec: released as V1LeaseSpec } });
      this.options.logger.info({ lease: this.leaseRef, identity: this.identity }, 'released the Lease');
    } catch (error) {
      this.options.logger.warn({ lease: this.leaseRef, err: describeApiError(error) }, 'could not release the Lease; another replica takes over when it expires');
    }
  }
}
