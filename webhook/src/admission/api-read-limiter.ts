/**
 * Bounds the webhook's direct API reads of Checkpoints (the read it makes before refusing a pod
 * whose Checkpoint its cache has not seen, or not yet seen Succeeded). Without a bound, a flood
 * of pods naming Checkpoints that do not exist would be a flood of GETs on the apiserver.
 *
 * Two token buckets: one per namespace, so one namespace's flood leaves the others their reads,
 * and one for all, which bounds the total. A read takes a token from both or from neither. A
 * namespace's bucket that has filled up again is the same as none, so it is forgotten: of the
 * buckets kept, only those that gave a token in the last few seconds are not full, at most the
 * global burst plus what the global rate refills while a namespace's bucket refills, and the
 * full ones are dropped past twice that, whatever the number of namespaces named.
 */

export interface RateLimit {
  /** Tokens added per second. */
  perSecond: number;
  /** Most tokens held: reads that may run at once after a quiet spell. */
  burst: number;
}

export interface ApiReadLimits {
  perNamespace: RateLimit;
  global: RateLimit;
}

/**
 * A GET of one Checkpoint costs the apiserver little, and the cache answers nearly every
 * admission (a read happens only in the moment between a Checkpoint's creation or success and
 * its watch event, or for a name that does not exist). A Deployment scaling out in that moment
 * reads in bursts the per-namespace budget covers; concurrent reads of one name share one GET.
 */
export const DEFAULT_API_READ_LIMITS: ApiReadLimits = {
  perNamespace: { perSecond: 5, burst: 10 },
  global: { perSecond: 20, burst: 40 },
};

export type ReadPermit = { granted: true } | { granted: false; scope: 'namespace' | 'global'; retryAfterSeconds: number };

class TokenBucket {
  private readonly limit: RateLimit;
  private tokens: number;
  private updated: number;
  constructor(limit: RateLimit, now: number) {
    this.limit = limit;
    this.tokens = limit.burst;
    this.updated = now;
  }

  refill(now: number): void {
    this.tokens = Math.min(this.limit.burst, this.tokens + Math.max(0, now - this.updated) * this.limit.perSecond);
    this.updated = now;
  }

  get available(): boolean {
    return this.tokens >= 1;
  }

  get full(): boolean {
    return this.tokens >= this.limit.burst;
  }

  take(): void {
    this.tokens -= 1;
  }

  /** Seconds until a token is available (after refill). */
  get wait(): number {
    return this.available ? 0 : (1 - this.tokens) / this.limit.perSecond;
  }
}

export class ApiReadLimiter {
  readonly limits: ApiReadLimits;
  private readonly now: () => number;
  private readonly global: TokenBucket;
  private readonly namespaces = new Map<string, TokenBucket>();
  /** Past this many namespaces' buckets, the full ones are forgotten (twice the most that can be non-full). */
  private readonly pruneAbove: number;

  /** `now` in seconds (monotonic); tests pass a fake clock. */
  constructor(limits: ApiReadLimits = DEFAULT_API_READ_LIMITS, now: () => number = () => performance.now() / 1000) {
    this.limits = limits;
    this.now = now;
    this.global = new TokenBucket(limits.global, now());
    const { global, perNamespace } = limits;
    this.pruneAbove = 2 * Math.ceil(global.burst + (global.perSecond * perNamespace.burst) / perNamespace.perSecond);
  }

  /** Takes one read from the namespace's budget and the global one, or says why not and for how long. */
  acquire(namespace: string): ReadPermit {
    const now = this.now();
    this.global.refill(now);
    const bucket = this.namespaces.get(namespace) ?? new TokenBucket(this.limits.perNamespace, now);
    bucket.refill(now);
    if (!bucket.available) return { granted: false, scope: 'namespace', retryAfterSeconds: bucket.wait };
    if (!this.global.available) return { granted: false, scope: 'global', retryAfterSeconds: this.global.wait };
    bucket.take();
    this.global.take();
    this.namespaces.set(namespace, bucket);
    if (this.namespaces.size > this.pruneAbove) this.forgetFull(now);
    return { granted: true };
  }

  /** How many namespaces' buckets are kept (tests: the map stays bounded). */
  get trackedNamespaces(): number {
    return this.namespaces.size;
  }

  private forgetFull(now: number): void {
    for (const [namespace, bucket] of this.namespaces) {
      bucket.refill(now);
      if (bucket.full) this.namespaces.delete(namespace);
    }
  }
}

/** A direct read refused by the limiter: the pod is refused with 503 `checkpoint-read-failed` and this message. */
export class ApiReadThrottled extends Error {
  override name = 'ApiReadThrottled';
  readonly retryAfterSeconds: number;
  constructor(namespace: string, permit: Extract<ReadPermit, { granted: false }>, limits: ApiReadLimits) {
    const seconds = Math.max(1, Math.ceil(permit.retryAfterSeconds));
    const over = permit.scope === 'namespace' ? `namespace "${namespace}" is over its share` : 'all namespaces together are over it';
    super(
      `the webhook reads Checkpoints its cache has not seen from the API at most ${limits.perNamespace.perSecond}/s per namespace ` +
        `and ${limits.global.perSecond}/s in all, and ${over}; retry in ${seconds} s`,
    );
    this.retryAfterSeconds = seconds;
  }
}
