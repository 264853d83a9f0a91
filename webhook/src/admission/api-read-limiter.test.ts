import { describe, expect, it } from 'vitest';
import { ApiReadLimiter, ApiReadThrottled, DEFAULT_API_READ_LIMITS, type ApiReadLimits } from './api-read-limiter.ts';

const LIMITS: ApiReadLimits = { perNamespace: { perSecond: 2, burst: 3 }, global: { perSecond: 5, burst: 6 } };

function limiter(limits = LIMITS) {
  const clock = { now: 1000 };
  return { clock, limiter: new ApiReadLimiter(limits, () => clock.now) };
}

const grants = (l: ApiReadLimiter, namespace: string, times: number) =>
  Array.from({ length: times }, () => l.acquire(namespace).granted).filter(Boolean).length;

describe('ApiReadLimiter', () => {
  it("gives a namespace its burst, then its rate, and says when the next read is due", () => {
    const { clock, limiter: l } = limiter();
    expect(grants(l, 'shop', 10)).toBe(3);
    expect(l.acquire('shop')).toEqual({ granted: false, scope: 'namespace', retryAfterSeconds: 0.5 });
    clock.now += 0.5;
    expect(grants(l, 'shop', 10)).toBe(1);
    clock.now += 10;
    expect(grants(l, 'shop', 10)).toBe(3);
  });

  it('leaves other namespaces their reads while one floods, up to the global budget', () => {
    const { clock, limiter: l } = limiter();
    expect(grants(l, 'flood', 100)).toBe(3);
    expect(grants(l, 'a', 1)).toBe(1);
    expect(grants(l, 'b', 1)).toBe(1);
    expect(grants(l, 'c', 1)).toBe(1);
    // Six in all: the global bucket is empty, whoever asks.
    expect(l.acquire('d')).toEqual({ granted: false, scope: 'global', retryAfterSeconds: 0.2 });
    clock.now += 1;
    expect(grants(l, 'd', 100)).toBe(3);
  });

  it('takes from both buckets or from neither', () => {
    const { clock, limiter: l } = limiter();
    expect(grants(l, 'a', 3) + grants(l, 'b', 3)).toBe(6);
    // 'c' is refused for the global bucket: its own stays full.
    expect(l.acquire('c').granted).toBe(false);
    clock.now += 0.6;
    expect(grants(l, 'c', 10)).toBe(3);
  });

  it('holds a bounded number of namespaces, whatever the number named', () => {
    const { clock, limiter: l } = limiter(DEFAULT_API_READ_LIMITS);
    let granted = 0;
    for (let i = 0; i < 100_000; i++) {
      if (l.acquire(`ns-${i}`).granted) granted++;
      clock.now += 0.001;
    }
    // 100 s at 20/s, plus the burst.
    expect(granted).toBeLessThanOrEqual(20 * 100 + 40);
    expect(l.trackedNamespaces).toBeLessThanOrEqual(2 * (40 + 20 * 2));
  });

  it('says what is over the limit, and when to retry, in the refusal', () => {
    const { limiter: l } = limiter();
    grants(l, 'shop', 3);
    const permit = l.acquire('shop');
    expect(permit.granted).toBe(false);
    if (permit.granted) return;
    expect(new ApiReadThrottled('shop', permit, LIMITS).message).toBe(
      'the webhook reads Checkpoints its cache has not seen from the API at most 2/s per namespace and 5/s in all, ' +
        'and namespace "shop" is over its share; retry in 1 s',
    );
  });
});
