import { describe, expect, it } from 'vitest';
import type { V1Pod } from '@kubernetes/client-node';
import { checkPod } from './pod-checks.ts';

function pod(overrides: Partial<V1Pod['status']> = {}, spec: Partial<V1Pod['spec']> = {}): V1Pod {
  return {
    metadata: { name: 'app-0', namespace: 'shop' },
    spec: { containers: [{ name: 'app' }, { name: 'sidecar' }], ...spec },
    status: {
      phase: 'Running',
      containerStatuses: [
        { name: 'app', state: { running: {} } },
        { name: 'sidecar', state: { running: {} } },
      ] as never,
      ...overrides,
    },
  };
}

describe('checkPod', () => {
  it('takes all containers when none are named, or the named ones', () => {
    expect(checkPod(pod(), 'shop', 'app-0', undefined)).toEqual({ containers: ['app', 'sidecar'] });
    expect(checkPod(pod(), 'shop', 'app-0', ['app'])).toEqual({ containers: ['app'] });
  });

  it.each([
    ['a missing pod', undefined, undefined, /pod shop\/app-0 does not exist; name a running pod/],
    ['a pending pod', pod({ phase: 'Pending' }), undefined, /is Pending, not Running/],
    ['an unknown container', pod(), ['app', 'db'], /has no container "db"; its containers are app, sidecar/],
    ['init containers still running', pod({ initContainerStatuses: [{ name: 'migrate', state: { running: {} } }] as never }), undefined, /init containers that have not completed: migrate/],
    ['a container not running', pod({ containerStatuses: [{ name: 'app', state: { waiting: { reason: 'CrashLoopBackOff' } } }] as never }), ['app'], /container "app" of pod shop\/app-0 is not running/],
  ])('refuses %s with the reason', (_what, input, wanted, message) => {
    const result = checkPod(input, 'shop', 'app-0', wanted);
    expect('error' in result && result.error).toMatch(message);
  });

  it('does not wait for sidecar init containers, which keep running', () => {
    const p = pod({ initContainerStatuses: [{ name: 'proxy', state: { running: {} } }] as never }, { initContainers: [{ name: 'proxy', restartPolicy: 'Always' }] });
    expect(checkPod(p, 'shop', 'app-0', undefined)).toEqual({ containers: ['app', 'sidecar'] });
  });
});
