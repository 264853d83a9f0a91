/**
 * The CheckpointSchedule controller in the real controller process against the fake
 * kube-apiserver, on an injected clock: the test moves the time and asks the controller to look
 * (resync), then reads what it created, deleted and recorded.
 */
import { readFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { V1Pod } from '@kubernetes/client-node';
import {
  annotations,
  CHECKPOINT_API_VERSION,
  CHECKPOINT_PLURAL,
  CHECKPOINT_SCHEDULE_KIND,
  CHECKPOINT_SCHEDULE_PLURAL,
  SCHEDULE_LABEL,
  silentLogger,
  type Checkpoint,
  type CheckpointPhase,
  type CheckpointSchedule,
  type CheckpointScheduleSpec,
} from '@cryo/common';
import { FakeKubeApiServer, succeededCheckpointStatus, testPod, waitFor, type KubeObject } from '@cryo/test';
import { readControllerConfig } from '../config.ts';
import { startController, type RunningController } from '../controller.ts';
import { SCHEDULE_EVENT_REASONS, scheduledCheckpointName } from './schedule-reconciler.ts';

const NS = 'shop';

let api: FakeKubeApiServer;
let now: Date;
let controller: RunningController | undefined;
/** Replicas started besides `controller` (leader election tests). */
const others: RunningController[] = [];

beforeEach(async () => {
  api = await FakeKubeApiServer.start();
  now = new Date('2026-12-04T10:07:00Z');
});

afterEach(async () => {
  await Promise.all(others.splice(0).map((c) => c.stop()));
  await controller?.stop();
  controller = undefined;
  await api.stop();
});

function startReplica(): Promise<RunningController> {
  const config = readControllerConfig(
    ['--port', '0', '--leader-election-lease-duration', '2s', '--leader-election-renew-deadline', '1s', '--leader-election-retry-period', '100ms'],
    { POD_NAMESPACE: 'cryo-system' },
  );
  return startController(config, { kubeConfig: api.kubeConfig(), logger: silentLogger(), host: '127.0.0.1', clock: () => now });
}

async function start(): Promise<RunningController> {
  controller = await startReplica();
  await waitFor(() => controller!.isLeader, { what: 'the controller to lead' });
  return controller;
}

/** Moves the clock and has the controller look at every schedule; resolves when it has. */
async function at(time: string): Promise<void> {
  now = new Date(time);
  controller!.schedules.resync();
  await controller!.schedules.idle();
}

function createSchedule(name: string, spec: CheckpointScheduleSpec, createdAt = '2026-12-04T10:00:00Z'): CheckpointSchedule {
  return api.put({
    apiVersion: CHECKPOINT_API_VERSION,
    kind: CHECKPOINT_SCHEDULE_KIND,
    metadata: { name, namespace: NS, creationTimestamp: createdAt },
    spec,
  }) as unknown as CheckpointSchedule;
}

const schedule = (name: string) => api.get<CheckpointSchedule>(CHECKPOINT_API_VERSION, CHECKPOINT_SCHEDULE_PLURAL, NS, name);
const checkpoints = () => api.list<Checkpoint>(CHECKPOINT_API_VERSION, CHECKPOINT_PLURAL, NS).map((c) => c.metadata!.name!).sort();
const checkpoint = (name: string) => api.get<Checkpoint>(CHECKPOINT_API_VERSION, CHECKPOINT_PLURAL, NS, name);
const checkpointCreations = () => api.requests.filter((r) => r.method === 'POST' && r.path === `/apis/${CHECKPOINT_API_VERSION}/namespaces/${NS}/${CHECKPOINT_PLURAL}`).length;

/** Events recorded about a schedule, oldest first: `Type Reason: note`. */
function events(name: string): string[] {
  return api
    .list<KubeObject & { type: string; reason: string; note: string; regarding: { kind: string; name: string } }>('events.k8s.io/v1', 'events', NS)
    .filter((e) => e.regarding.kind === CHECKPOINT_SCHEDULE_KIND && e.regarding.name === name)
    .sort((a, b) => Number(a.metadata?.resourceVersion) - Number(b.metadata?.resourceVersion))
    .map((e) => `${e.type} ${e.reason}: ${e.note}`);
}

/** Waits until the schedule's status says `predicate`, answering the schedule. */
function statusWhere(name: string, predicate: (s: CheckpointSchedule) => boolean, what: string): Promise<CheckpointSchedule> {
  return waitFor(() => {
    const found = schedule(name);
    return found !== undefined && predicate(found) ? found : undefined;
  }, { what: `${name}: ${what} (status: ${JSON.stringify(schedule(name)?.status)})` });
}

const condition = (s: CheckpointSchedule | undefined, type: string) => s?.status?.conditions?.find((c) => c.type === type);

describe('a run', () => {
  it('creates one Checkpoint per Running pod the selector picks, owned by the schedule, once its time comes', async () => {
    api.put(testPod(NS, 'web-1', 'node-a', { labels: { app: 'web', tier: 'front' } }));
    api.put(testPod(NS, 'web-2', 'node-b', { labels: { app: 'web', tier: 'front' } }));
    api.put(testPod(NS, 'web-starting', undefined, { phase: 'Pending', labels: { app: 'web', tier: 'front' } }));
    api.put(testPod(NS, 'web-canary', 'node-a', { labels: { app: 'web', tier: 'canary' } }));
    api.put(testPod(NS, 'db-0', 'node-a', { labels: { app: 'db' } }));
    api.put(testPod('other', 'web-1', 'node-a', { labels: { app: 'web', tier: 'front' } }));
    await start();
    const created = createSchedule('snap', {
      schedule: '*/15 * * * *',
      selector: { matchLabels: { app: 'web' }, matchExpressions: [{ key: 'tier', operator: 'NotIn', values: ['canary'] }] },
      checkpointTemplate: { storageClassName: 'team-registry', containers: ['app'] },
    });

    // 10:07: nothing is due before 10:15.
    const waiting = await statusWhere('snap', (s) => s.status?.nextScheduleTime !== undefined, 'the next run recorded');
    expect(waiting.status?.nextScheduleTime).toBe('2026-12-04T10:15:00.000Z');
    expect(waiting.status?.lastScheduleTime).toBeUndefined();
    expect(condition(waiting, 'Ready')).toMatchObject({ status: 'True', reason: 'Scheduled', message: 'next run at 2026-12-04T10:15:00.000Z' });
    expect(checkpoints()).toEqual([]);

    await at('2026-12-04T10:15:20Z');
    const ran = await statusWhere('snap', (s) => s.status?.lastScheduleTime !== undefined, 'the run recorded');
    expect(checkpoints()).toEqual(['snap-web-1-202612041015', 'snap-web-2-202612041015']);
    const first = checkpoint('snap-web-1-202612041015')!;
    expect(first.metadata?.labels).toEqual({ [SCHEDULE_LABEL]: 'snap' });
    expect(first.metadata?.annotations).toEqual({ [annotations.SCHEDULED_TIME]: '2026-12-04T10:15:00.000Z' });
    expect(first.metadata?.ownerReferences).toEqual([{ apiVersion: CHECKPOINT_API_VERSION, kind: CHECKPOINT_SCHEDULE_KIND, name: 'snap', uid: created.metadata!.uid, controller: true }]);
    expect(first.spec).toEqual({ podName: 'web-1', storageClassName: 'team-registry', containers: ['app'], reason: 'scheduled by CheckpointSchedule snap' });
    expect(ran.status).toMatchObject({
      lastScheduleTime: '2026-12-04T10:15:00.000Z',
      nextScheduleTime: '2026-12-04T10:30:00.000Z',
      lastCheckpoints: [{ podName: 'web-1', checkpointName: 'snap-web-1-202612041015' }, { podName: 'web-2', checkpointName: 'snap-web-2-202612041015' }],
      observedGeneration: 1,
    });
    expect(condition(ran, 'LastRunSucceeded')).toMatchObject({ status: 'True', reason: 'CheckpointsCreated' });
    await waitFor(() => events('snap').length >= 2, { what: 'the Events' });
    expect(events('snap')).toEqual([
      'Normal CheckpointCreated: created Checkpoint snap-web-1-202612041015 of pod web-1 for the run due at 2026-12-04T10:15:00.000Z',
      'Normal CheckpointCreated: created Checkpoint snap-web-2-202612041015 of pod web-2 for the run due at 2026-12-04T10:15:00.000Z',
    ]);
    const metrics = (await controller!.metrics.metrics.render()).body;
    expect(metrics).toMatch(/^cryo_schedule_checkpoints_created_total 2$/m);
    expect(metrics).toMatch(/^cryo_schedule_runs_total\{result="created"\} 1$/m);

    // Looking again within the same period creates nothing more.
    await at('2026-12-04T10:29:59Z');
    expect(checkpointCreations()).toBe(2);
    await at('2026-12-04T10:30:00Z');
    await statusWhere('snap', (s) => s.status?.lastScheduleTime === '2026-12-04T10:30:00.000Z', 'the 10:30 run');
    expect(checkpoints()).toHaveLength(4);
  });

  it('makes up only the latest of several missed runs, once', async () => {
    api.put(testPod(NS, 'web-1', 'node-a'));
    createSchedule('hourly', { schedule: '0 * * * *', selector: { matchLabels: { app: 'web' } } }, '2026-12-04T06:30:00Z');
    now = new Date('2026-12-04T10:20:00Z');
    await start();
    await statusWhere('hourly', (s) => s.status?.lastScheduleTime !== undefined, 'the made-up run');
    expect(checkpoints()).toEqual(['hourly-web-1-202612041000']);
    await at('2026-12-04T10:40:00Z');
    expect(checkpointCreations()).toBe(1);
  });

  it('skips a missed run later than startingDeadlineSeconds, and runs the next on time', async () => {
    api.put(testPod(NS, 'web-1', 'node-a'));
    createSchedule('hourly', { schedule: '0 * * * *', selector: {}, startingDeadlineSeconds: 600 }, '2026-12-04T06:30:00Z');
    now = new Date('2026-12-04T10:20:00Z');
    await start();
    const waiting = await statusWhere('hourly', (s) => s.status?.nextScheduleTime !== undefined, 'the next run recorded');
    expect(waiting.status?.nextScheduleTime).toBe('2026-12-04T11:00:00.000Z');
    expect(waiting.status?.lastScheduleTime).toBeUndefined();
    expect(checkpoints()).toEqual([]);
    await at('2026-12-04T11:09:00Z');
    await statusWhere('hourly', (s) => s.status?.lastScheduleTime === '2026-12-04T11:00:00.000Z', 'the 11:00 run');
    expect(checkpoints()).toEqual(['hourly-web-1-202612041100']);
  });

  it('reads the schedule in its time zone', async () => {
    api.put(testPod(NS, 'web-1', 'node-a'));
    now = new Date('2026-12-04T00:00:00Z');
    await start();
    createSchedule('nightly', { schedule: '30 2 * * *', timeZone: 'Europe/Berlin', selector: {} }, '2026-12-03T23:00:00Z');
    // 02:30 in Berlin in December (CET, UTC+1) is 01:30 UTC.
    expect((await statusWhere('nightly', (s) => s.status?.nextScheduleTime !== undefined, 'the next run')).status?.nextScheduleTime).toBe('2026-12-04T01:30:00.000Z');
  });

  it('records a run that selects no Running pod, with a Warning', async () => {
    api.put(testPod(NS, 'web-1', undefined, { phase: 'Pending' }));
    await start();
    createSchedule('snap', { schedule: '*/15 * * * *', selector: { matchLabels: { app: 'web' } } });
    await statusWhere('snap', (s) => s.status?.nextScheduleTime !== undefined, 'the next run');
    await at('2026-12-04T10:15:00Z');
    const ran = await statusWhere('snap', (s) => s.status?.lastScheduleTime !== undefined, 'the run recorded');
    expect(ran.status?.lastCheckpoints).toEqual([]);
    expect(condition(ran, 'LastRunSucceeded')).toMatchObject({ status: 'False', reason: 'NoPodsSelected', message: 'no Running pod in namespace shop matches the selector app=web (run due at 2026-12-04T10:15:00.000Z)' });
    await waitFor(() => events('snap').length >= 1);
    expect(events('snap')).toEqual(['Warning NoPodsSelected: no Running pod in namespace shop matches the selector app=web (run due at 2026-12-04T10:15:00.000Z)']);
  });

  it('says so when a Checkpoint of its name exists that it did not create, and creates the others', async () => {
    api.put(testPod(NS, 'web-1', 'node-a'));
    api.put(testPod(NS, 'web-2', 'node-a'));
    const squatter = scheduledCheckpointName('snap', 'web-1', new Date('2026-12-04T10:15:00Z'));
    api.put({ apiVersion: CHECKPOINT_API_VERSION, kind: 'Checkpoint', metadata: { name: squatter, namespace: NS }, spec: { podName: 'web-1' } });
    await start();
    createSchedule('snap', { schedule: '*/15 * * * *', selector: {} });
    await statusWhere('snap', (s) => s.status?.nextScheduleTime !== undefined, 'the next run');
    await at('2026-12-04T10:15:00Z');
    const ran = await statusWhere('snap', (s) => s.status?.lastScheduleTime !== undefined, 'the run recorded');
    expect(ran.status?.lastCheckpoints).toEqual([{ podName: 'web-2', checkpointName: 'snap-web-2-202612041015' }]);
    expect(condition(ran, 'LastRunSucceeded')).toMatchObject({
      status: 'False',
      reason: 'CheckpointCreateFailed',
      message: `run due at 2026-12-04T10:15:00.000Z: created 1 of 2 Checkpoints; pod web-1: a Checkpoint named ${squatter} exists that this schedule did not create; delete or rename it`,
    });
  });
});

describe('suspend', () => {
  it('runs nothing while suspended, and makes up the latest missed run once resumed', async () => {
    api.put(testPod(NS, 'web-1', 'node-a'));
    await start();
    const created = createSchedule('snap', { schedule: '*/15 * * * *', selector: {}, suspend: true });
    await at('2026-12-04T10:50:00Z');
    const suspended = await statusWhere('snap', (s) => condition(s, 'Ready')?.reason === 'Suspended', 'Suspended');
    expect(condition(suspended, 'Ready')).toMatchObject({ status: 'False', message: 'spec.suspend is true: no runs until it is false' });
    expect(suspended.status?.nextScheduleTime).toBeUndefined();
    expect(checkpoints()).toEqual([]);

    api.put({ ...schedule('snap')!, spec: { ...created.spec, suspend: false } });
    const resumed = await statusWhere('snap', (s) => s.status?.lastScheduleTime !== undefined, 'the made-up run');
    expect(resumed.status?.lastScheduleTime).toBe('2026-12-04T10:45:00.000Z');
    expect(condition(resumed, 'Ready')).toMatchObject({ status: 'True', reason: 'Scheduled' });
    expect(checkpoints()).toEqual(['snap-web-1-202612041045']);
  });
});

describe('keepLast', () => {
  /** A Checkpoint this schedule created earlier, in `phase`. */
  function earlier(scheduleObject: CheckpointSchedule, podName: string, time: string, phase: CheckpointPhase | undefined, pod: V1Pod): string {
    const name = scheduledCheckpointName(scheduleObject.metadata!.name!, podName, new Date(time));
    api.put({
      apiVersion: CHECKPOINT_API_VERSION,
      kind: 'Checkpoint',
      metadata: {
        name,
        namespace: NS,
        annotations: { [annotations.SCHEDULED_TIME]: new Date(time).toISOString() },
        labels: { [SCHEDULE_LABEL]: scheduleObject.metadata!.name! },
        ownerReferences: [{ apiVersion: CHECKPOINT_API_VERSION, kind: CHECKPOINT_SCHEDULE_KIND, name: scheduleObject.metadata!.name!, uid: scheduleObject.metadata!.uid!, controller: true }],
      },
      spec: { podName },
      ...(phase === undefined ? {} : { status: phase === 'Succeeded' ? succeededCheckpointStatus(pod) : { phase } }),
    });
    return name;
  }

  it("keeps each pod's newest keepLast Succeeded and Failed ones, deletes older ones, and never one in progress or not its own", async () => {
    const web1 = api.put(testPod(NS, 'web-1', 'node-a')) as unknown as V1Pod;
    const web2 = api.put(testPod(NS, 'web-2', 'node-a')) as unknown as V1Pod;
    const snap = createSchedule('snap', { schedule: '0 * * * *', selector: {}, keepLast: 2 }, '2026-12-04T04:30:00Z');
    const oldestGood = earlier(snap, 'web-1', '2026-12-04T05:00:00Z', 'Succeeded', web1);
    const good = [earlier(snap, 'web-1', '2026-12-04T07:00:00Z', 'Succeeded', web1), earlier(snap, 'web-1', '2026-12-04T09:00:00Z', 'Succeeded', web1)];
    const oldestFailed = earlier(snap, 'web-1', '2026-12-04T06:00:00Z', 'Failed', web1);
    const failed = [earlier(snap, 'web-1', '2026-12-04T08:00:00Z', 'Failed', web1), earlier(snap, 'web-1', '2026-12-04T08:30:00Z', 'Expired', web1)];
    const stuck = earlier(snap, 'web-1', '2026-12-04T04:45:00Z', 'Running', web1);
    const otherPod = [earlier(snap, 'web-2', '2026-12-04T07:00:00Z', 'Succeeded', web2), earlier(snap, 'web-2', '2026-12-04T09:00:00Z', 'Succeeded', web2)];
    // Not this schedule's: no owner reference to it.
    api.put({ apiVersion: CHECKPOINT_API_VERSION, kind: 'Checkpoint', metadata: { name: 'manual', namespace: NS, labels: { [SCHEDULE_LABEL]: 'snap' } }, spec: { podName: 'web-1' }, status: { phase: 'Succeeded' } });
    now = new Date('2026-12-04T09:30:00Z');
    await start();

    await waitFor(() => !checkpoints().includes(oldestGood) && !checkpoints().includes(oldestFailed), { what: 'the oldest pruned' });
    expect(checkpoints()).toEqual([...good, ...failed, stuck, ...otherPod, 'manual'].sort());
    await waitFor(() => events('snap').length >= 2);
    expect(events('snap').sort()).toEqual([
      `Normal Pruned: deleted Failed Checkpoint ${oldestFailed} of pod web-1: keeping the last 2`,
      `Normal Pruned: deleted Succeeded Checkpoint ${oldestGood} of pod web-1: keeping the last 2`,
    ]);

    // The 10:00 run adds one per pod; the older good ones stay until it has succeeded.
    await at('2026-12-04T10:00:30Z');
    const fresh = 'snap-web-1-202612041000';
    await statusWhere('snap', (s) => s.status?.lastScheduleTime === '2026-12-04T10:00:00.000Z', 'the 10:00 run');
    expect(checkpoints()).toContain(fresh);
    expect(checkpoints()).toContain(good[0]);
    api.put({ ...checkpoint(fresh)!, status: succeededCheckpointStatus(web1) } as unknown as KubeObject);
    await waitFor(() => !checkpoints().includes(good[0]), { what: `${good[0]} pruned once ${fresh} succeeded` });
    expect(checkpoints().filter((n) => checkpoint(n)?.spec.podName === 'web-1' && checkpoint(n)?.status?.phase === 'Succeeded').sort()).toEqual([good[1], fresh, 'manual'].sort());
    // Counted once the delete has answered, a moment after the fake shows it.
    await waitFor(async () => /^cryo_schedule_checkpoints_pruned_total 3$/m.test((await controller!.metrics.metrics.render()).body), { what: '3 pruned counted' });
  });

  describe('never prunes a Checkpoint in use', () => {
    const restoreFrom = (name: string) => ({ [annotations.RESTORE_FROM]: name });
    const deferred = async (cause: string) => Number((await controller!.metrics.metrics.render()).body.match(new RegExp(`^cryo_schedule_prune_deferred_checkpoints\\{cause="${cause}"\\} (\\d+)$`, 'm'))?.[1]);

    /**
     * web-1 (the one pod the schedule selects) with three Succeeded scheduled Checkpoints and
     * keepLast 1: `oldest` (06:00) and `used` (07:00) are beyond it, `newest` (09:00) is kept. The
     * controller starts at 09:30, after the 09:00 run, so it only prunes until 10:00.
     */
    function threeCheckpoints(): { oldest: string; used: string; newest: string } {
      const web1 = api.put(testPod(NS, 'web-1', 'node-a', { labels: { role: 'primary' } })) as unknown as V1Pod;
      const snap = createSchedule('snap', { schedule: '0 * * * *', selector: { matchLabels: { role: 'primary' } }, keepLast: 1 }, '2026-12-04T05:30:00Z');
      const made = {
        oldest: earlier(snap, 'web-1', '2026-12-04T06:00:00Z', 'Succeeded', web1),
        used: earlier(snap, 'web-1', '2026-12-04T07:00:00Z', 'Succeeded', web1),
        newest: earlier(snap, 'web-1', '2026-12-04T09:00:00Z', 'Succeeded', web1),
      };
      now = new Date('2026-12-04T09:30:00Z');
      return made;
    }

    /** Waits until the controller has pruned `pruned` and said why it kept `kept`, then until it is idle. */
    async function settled(pruned: string, kept: string): Promise<void> {
      await waitFor(() => !checkpoints().includes(pruned), { what: `${pruned} pruned` });
      await waitFor(() => events('snap').some((e) => e.startsWith('Normal PruneDeferred:') && e.includes(kept)), { what: `PruneDeferred for ${kept} (events: ${events('snap').join(' | ')})` });
      await controller!.schedules.idle();
    }

    it('keeps one a running restored pod restores from, says so once, and prunes it at the next look once the pod is gone', async () => {
      const { oldest, used, newest } = threeCheckpoints();
      api.put(testPod(NS, 'web-restored', 'node-b', { annotations: { ...restoreFrom(used), [annotations.RESTORED_CHECKPOINT_UID]: checkpoint(used)!.metadata!.uid! } }));
      // A restored pod that has finished holds nothing.
      api.put(testPod(NS, 'web-done', 'node-b', { phase: 'Succeeded', annotations: restoreFrom(oldest) }));
      await start();

      await settled(oldest, used);
      expect(checkpoints()).toEqual([used, newest].sort());
      expect(events('snap')).toEqual([
        `Normal Pruned: deleted Succeeded Checkpoint ${oldest} of pod web-1: keeping the last 1`,
        `Normal PruneDeferred: keeps Succeeded Checkpoint ${used} of pod web-1 beyond the last 1: pod web-restored restores from it`,
      ]);
      expect(await deferred('pod')).toBe(1);

      // Looking again keeps it and says nothing new.
      await at('2026-12-04T09:40:00Z');
      expect(checkpoints()).toEqual([used, newest].sort());
      expect(events('snap')).toHaveLength(2);

      api.remove('v1', 'pods', NS, 'web-restored');
      await at('2026-12-04T09:45:00Z');
      expect(checkpoints()).toEqual([newest]);
      expect(events('snap').at(-1)).toBe(`Normal Pruned: deleted Succeeded Checkpoint ${used} of pod web-1: keeping the last 1`);
      expect(await deferred('pod')).toBe(0);
    });

    it("keeps one a Deployment's pod template restores from", async () => {
      const { oldest, used, newest } = threeCheckpoints();
      api.put({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', namespace: NS }, spec: { selector: {}, template: { metadata: { annotations: restoreFrom(used) }, spec: { containers: [{ name: 'app', image: 'registry.example/app:1' }] } } } });
      await start();

      await settled(oldest, used);
      expect(checkpoints()).toEqual([used, newest].sort());
      expect(events('snap').at(-1)).toBe(`Normal PruneDeferred: keeps Succeeded Checkpoint ${used} of pod web-1 beyond the last 1: Deployment web restores from it`);
      expect(await deferred('workload')).toBe(1);
    });

    it('keeps every one beyond keepLast while whether something restores from them cannot be read, and prunes them once it can', async () => {
      const { oldest, used, newest } = threeCheckpoints();
      api.failNext({ pathPrefix: `/apis/apps/v1/namespaces/${NS}/deployments`, status: 403, message: 'deployments.apps is forbidden', times: 1000 });
      await start();

      await waitFor(() => events('snap').filter((e) => e.startsWith('Normal PruneDeferred:')).length === 2, { what: `two PruneDeferred (events: ${events('snap').join(' | ')})` });
      await at('2026-12-04T09:40:00Z');
      expect(checkpoints()).toEqual([oldest, used, newest].sort());
      const unreadable = 'whether a pod or workload of namespace shop restores from it could not be read (HTTP 403: deployments.apps is forbidden); it stays until that can be read (the controller may list pods and workloads: manifests/operator-rbac.yaml)';
      expect(events('snap').sort()).toEqual([
        `Normal PruneDeferred: keeps Succeeded Checkpoint ${oldest} of pod web-1 beyond the last 1: ${unreadable}`,
        `Normal PruneDeferred: keeps Succeeded Checkpoint ${used} of pod web-1 beyond the last 1: ${unreadable}`,
      ]);
      expect(await deferred('unknown')).toBe(2);

      api.clearFailures();
      await at('2026-12-04T09:45:00Z');
      expect(checkpoints()).toEqual([newest]);
      expect(await deferred('unknown')).toBe(0);
    });
  });
});

describe('a schedule the controller cannot use', () => {
  it.each([
    ['a minute out of range', { schedule: '61 * * * *' }, /^schedule "61 \* \* \* \*": minute field "61": 61 is out of range 0-59; a schedule is five fields/],
    ['an unknown time zone', { schedule: '0 * * * *', timeZone: 'Mars/Olympus' }, /^timeZone "Mars\/Olympus" is not an IANA time zone name/],
    ['a date that never comes', { schedule: '0 0 30 2 *' }, /^schedule "0 0 30 2 \*" matches no date from now on$/],
    ['In without values', { schedule: '0 * * * *', selector: { matchExpressions: [{ key: 'app', operator: 'In' }] } }, /^selector.matchExpressions\[0\] \(key app\): operator In needs at least one value$/],
  ])('is not Ready, says why in status and a Warning, and runs nothing: %s', async (_, spec, message) => {
    api.put(testPod(NS, 'web-1', 'node-a'));
    await start();
    createSchedule('bad', { selector: {}, ...spec }, '2026-12-01T00:00:00Z');
    const bad = await statusWhere('bad', (s) => condition(s, 'Ready') !== undefined, 'Ready recorded');
    expect(condition(bad, 'Ready')).toMatchObject({ status: 'False', reason: 'InvalidSchedule', message: expect.stringMatching(message) });
    await waitFor(() => events('bad').length >= 1);
    expect(events('bad')).toEqual([expect.stringMatching(/^Warning InvalidSchedule: /)]);
    await at('2026-12-04T12:00:00Z');
    expect(checkpoints()).toEqual([]);
    expect(events('bad')).toHaveLength(1);
  });
});

describe('leader election', () => {
  it('only the leader runs schedules; when it stops, the other replica takes over and makes up the run missed meanwhile', async () => {
    api.put(testPod(NS, 'web-1', 'node-a'));
    const leader = await start();
    const follower = await startReplica();
    others.push(follower);
    expect(follower.isLeader).toBe(false);
    createSchedule('snap', { schedule: '*/15 * * * *', selector: {} });
    await statusWhere('snap', (s) => s.status?.nextScheduleTime !== undefined, 'the next run');
    await at('2026-12-04T10:15:00Z');
    await statusWhere('snap', (s) => s.status?.lastScheduleTime === '2026-12-04T10:15:00.000Z', 'the 10:15 run');
    // Asked to look, the follower does nothing: it does not lead.
    follower.schedules.resync();
    await follower.schedules.idle();
    const created = async (c: RunningController) => (await c.metrics.scheduledCheckpointsCreated.get()).values[0]?.value ?? 0;
    expect(await created(leader)).toBe(1);
    expect(await created(follower)).toBe(0);

    await leader.stop();
    controller = follower;
    others.splice(others.indexOf(follower), 1);
    now = new Date('2026-12-04T10:31:00Z');
    await waitFor(() => follower.isLeader, { what: 'the follower to take over', timeoutMs: 3000 });
    await statusWhere('snap', (s) => s.status?.lastScheduleTime === '2026-12-04T10:30:00.000Z', 'the 10:30 run made up by the new leader');
    expect(checkpoints()).toEqual(['snap-web-1-202612041015', 'snap-web-1-202612041030']);
    expect(await created(follower)).toBe(1);
  });
});

describe('docs/operations.md#checkpoint-schedules', () => {
  it('lists exactly the Events a schedule records', () => {
    const docs = readFileSync(new URL('../../../docs/operations.md', import.meta.url), 'utf8');
    const section = docs.slice(docs.indexOf('## Checkpoint schedules'), docs.indexOf('## Storage classes'));
    const table = section.slice(section.indexOf('| reason | type | when |'));
    const documented = [...table.slice(0, table.indexOf('\n\n')).matchAll(/^\| `([A-Za-z]+)` \|/gm)].map((m) => m[1]);
    expect(documented).toEqual(Object.keys(SCHEDULE_EVENT_REASONS));
  });
});
