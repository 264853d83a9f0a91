/** The patch that puts our CA into the webhook configuration, touching only entries that lack it. */
import { describe, expect, it } from 'vitest';
import { caBundlePatch } from './ca-bundle.ts';

const ours = Buffer.from('-----BEGIN CERTIFICATE-----\n...').toString('base64');

function configuration(...caBundles: (string | undefined)[]) {
  return {
    metadata: { name: 'cryo-webhook' },
    webhooks: caBundles.map((caBundle, i) => ({
      name: `hook-${i}.cryo.dev`,
      clientConfig: { service: { name: 'cryo-webhook', namespace: 'cryo-system' }, ...(caBundle === undefined ? {} : { caBundle }) },
      sideEffects: 'None',
      admissionReviewVersions: ['v1'],
    })),
  };
}

describe('caBundlePatch', () => {
  it('is empty when every webhook already trusts our CA', () => {
    expect(caBundlePatch(configuration(ours, ours), ours)).toEqual([]);
  });

  it('guards each write with a test of the webhook name at that index', () => {
    expect(caBundlePatch(configuration(ours, undefined, 'c3RhbGU='), ours)).toEqual([
      { op: 'test', path: '/webhooks/1/name', value: 'hook-1.cryo.dev' },
      { op: 'add', path: '/webhooks/1/clientConfig/caBundle', value: ours },
      { op: 'test', path: '/webhooks/2/name', value: 'hook-2.cryo.dev' },
      { op: 'add', path: '/webhooks/2/clientConfig/caBundle', value: ours },
    ]);
  });

  it('has nothing to do for a configuration without webhooks', () => {
    expect(caBundlePatch({ metadata: { name: 'cryo-webhook' } }, ours)).toEqual([]);
  });
});
