import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { KubeConfig, V1Lease } from '@kubernetes/client-node';
import { silentLogger } from '@cryo/common';
import { FakeKubeApiServer, waitFor } from '@cryo/test';
import { LeaderElector, leaderIdentity } from './leader-election.ts';

const NAMESPACE = 'cryo-system';
const LEASE = 'cryo-controller';
// Short, in the proportions of the defaults (15 s, 10 s, 2 s).
const TIMING = { leaseDurationMs: 3000, renewDeadlineMs: 2000, retryPeriodMs: 200 };

let api: FakeKubeApiServer;
const electors: LeaderElector[] = [];
/** Who leads, as the callbacks said, in order: `+a` started, `-a` stopped. */
let timeline: string[];

beforeEach(async () => {
  api = await FakeKubeApiServer.start();
  timeline = [];
});

afterEach(async () => {
  await Promise.all(electors.splice(0).map((e) => e.stop()));
  await api.stop();
});

function elector(name: string, kubeConfig: KubeConfig = api.kubeConfig()): LeaderElector {
  const e = new LeaderElector({
    kubeConfig,
    namespace: NAMESPACE,
    leaseName: LEASE,
    identity: name,
    ...TIMING,
    logger: silentLogger(),
    onStartedLeading: () => timeline.push(`+${name}`),
    onStoppedLeading: () => timeline.push(`-${name}`),
  });
  electors.push(e);
  return e;
}

const lease = () => api.get<V1Lease>('coordination.k8s.io/v1', 'leases', NAMESPACE, LEASE);
const leaders = () => electors.filter((e) => e.isLeader).map((e) => e.identity);

/** Never two leaders at once: every +x is preceded by the -y of the one before. */
function expectOneAtATime(events: string[]): void {
  let current: string | undefined;
  for (const event of events) {
    const name = event.slice(1);
    if (event.startsWith('+')) {
      expect(current, `${event} while ${current} led: ${events.join(' ')}`).toBeUndefined();
      current = name;
    } else {
      expect(current).toBe(name);
      current = undefined;
    }
  }
}

describe('LeaderElector', () => {
  it('of two replicas, exactly one leads, and it holds the Lease, renewing it', async () => {
    const a = elector('a');
    const b = elector('b');
    a.start();
    b.start();
    const [leader] = await waitFor(() => (leaders().length === 1 ? leaders() : undefined), { what: 'a leader' });
    const first = lease()!;
    expect(first.spec).toMatchObject({ holderIdentity: leader, leaseDurationSeconds: 3, leaseTransitions: 0 });
    // MicroTimes: six fractional digits, or the real apiserver refuses the write.
    expect(String(first.spec!.renewTime)).toMatch(/\.\d{6}Z$/);
    await new Promise((resolve) => setTimeout(resolve, 2 * TIMING.leaseDurationMs));
    expect(leaders()).toEqual([leader]);
    expect(lease()!.spec!.holderIdentity).toBe(leader);
    expect(lease()!.spec!.renewTime).not.toBe(first.spec!.renewTime);
    expect(lease()!.spec!.acquireTime).toBe(first.spec!.acquireTime);
    expect(timeline).toEqual([`+${leader}`]);
  });

  it('a leader that stops releases the Lease, and the other takes over at once rather than after the lease duration', async () => {
    const a = elector('a');
    a.start();
    await waitFor(() => a.isLeader, { what: 'a to lead' });
    const b = elector('b');
    b.start();
    await new Promise((resolve) => setTimeout(resolve, 3 * TIMING.retryPeriodMs));
    expect(b.isLeader).toBe(false);
    const stoppedAt = Date.now();
    await a.stop();
    expect(a.isLeader).toBe(false);
    await waitFor(() => b.isLeader, { what: 'b to take over' });
    expect(Date.now() - stoppedAt).toBeLessThan(TIMING.leaseDurationMs);
    expect(lease()!.spec).toMatchObject({ holderIdentity: 'b', leaseTransitions: 1 });
    expect(timeline).toEqual(['+a', '-a', '+b']);
  });

  it('a leader cut off from the apiserver stops acting within the renew deadline, before the other takes over', async () => {
    const cutOff = api.kubeConfig();
    const a = elector('a', cutOff);
    a.start();
    await waitFor(() => a.isLeader, { what: 'a to lead' });
    const b = elector('b');
    b.start();
    await new Promise((resolve) => setTimeout(resolve, 3 * TIMING.retryPeriodMs));
    // Its token is refused from now on (401): it can neither renew nor release.
    const cutAt = Date.now();
    (cutOff.getCurrentUser() as { token: string }).token = 'revoked';
    await waitFor(() => timeline.includes('-a'), { what: 'a to stop leading', timeoutMs: 5000 });
    const stoppedAfter = Date.now() - cutAt;
    // A timer fires then, whatever the renewals hang on (a little late on a busy machine).
    expect(stoppedAfter).toBeLessThanOrEqual(TIMING.renewDeadlineMs + 250);
    await waitFor(() => b.isLeader, { what: 'b to take over', timeoutMs: 5000 });
    expect(timeline).toEqual(['+a', '-a', '+b']);
    expectOneAtATime(timeline);
    expect(lease()!.spec).toMatchObject({ holderIdentity: 'b', leaseTransitions: 1 });
  });

  it('a leader whose Lease was taken over stops at its next try, whatever its clock says', async () => {
    const a = elector('a');
    a.start();
    await waitFor(() => a.isLeader, { what: 'a to lead' });
    const current = lease()!;
    api.put({ ...current, spec: { ...current.spec, holderIdentity: 'intruder' } });
    await waitFor(() => timeline.includes('-a'), { what: 'a to stop leading' });
    expect(a.isLeader).toBe(false);
    // And it does not take it back while the intruder's record is fresh.
    await new Promise((resolve) => setTimeout(resolve, 3 * TIMING.retryPeriodMs));
    expect(a.isLeader).toBe(false);
  });

  it('takes over a Lease its holder stopped renewing once it has seen it unchanged for the lease duration', async () => {
    api.put({ apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: LEASE, namespace: NAMESPACE }, spec: { holderIdentity: 'gone', leaseDurationSeconds: 1, renewTime: '2020-01-01T00:00:00.000000Z', leaseTransitions: 4 } });
    const b = elector('b');
    const startedAt = Date.now();
    b.start();
    await waitFor(() => b.isLeader, { what: 'b to take over', timeoutMs: 5000 });
    // Counted on b's clock from when it first saw the record, not from the (ancient) renewTime in it.
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(1000);
    expect(lease()!.spec).toMatchObject({ holderIdentity: 'b', leaseTransitions: 5 });
  });

  it('of replicas racing for a new Lease, one creates it and the other gets the conflict', async () => {
    const all = ['a', 'b', 'c'].map((name) => elector(name));
    for (const e of all) e.start();
    await waitFor(() => (leaders().length === 1 ? true : undefined), { what: 'a leader' });
    await new Promise((resolve) => setTimeout(resolve, 5 * TIMING.retryPeriodMs));
    expect(leaders()).toHaveLength(1);
    expectOneAtATime(timeline);
  });

  it('makes identities unique per start: the name and a random suffix', () => {
    expect(leaderIdentity('cryo-controller-7d9f-x2')).toMatch(/^cryo-controller-7d9f-x2_[0-9a-f]{8}$/);
    expect(leaderIdentity('cryo-controller-7d9f-x2')).not.toBe(leaderIdentity('cryo-controller-7d9f-x2'));
    expect(leaderIdentity('')).toMatch(/_[0-9a-f]{8}$/);
  });
});
