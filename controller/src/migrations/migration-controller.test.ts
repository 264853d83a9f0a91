/**
 * The controller against the fake kube-apiserver, step by step: each phase, the failures of each
 * step with their messages, a bare pod re-created, a ReplicaSet's and a StatefulSet's replacement,
 * restartInPlace, a restart mid-way. The webhook's part (restoring the pods created) is played by
 * a small admission function here; test/controller/ runs the real webhook.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { V1Pod } from '@kubernetes/client-node';
import { annotations, CHECKPOINT_API_VERSION, silentLogger, type Migration, type MigrationPhase, type MigrationSpec } from '@cryo/common';
import { ApiError, FakeKubeApiServer, MigrationWorld, testMigration, testNode, testPod, waitFor, type AdmissionRequest, type KubeObject } from '@cryo/test';
import { readControllerConfig } from '../config.ts';
import { startController, type RunningController } from '../controller.ts';
import { checkpointNameOf, MIGRATION_UID_LABEL } from './migration-reconciler.ts';

const NS = 'shop';
const RS = { kind: 'ReplicaSet', name: 'web-7c9f8d6b5', uid: '6f1c1c9e-2a55-4f0b-9d8e-111111111111' };
const STS = { kind: 'StatefulSet', name: 'db', uid: '6f1c1c9e-2a55-4f0b-9d8e-222222222222' };

let api: FakeKubeApiServer;
let world: MigrationWorld;
const controllers: RunningController[] = [];

beforeEach(async () => {
  api = await FakeKubeApiServer.start();
  world = new MigrationWorld(api, NS);
  api.put(testNode('node-a'));
  api.put(testNode('node-b'));
  api.admission = fakeWebhook;
});

afterEach(async () => {
  await Promise.all(controllers.splice(0).map((c) => c.stop()));
  await api.stop();
});

/** What the webhook does to the pods the controller and the owners create: restore them. */
function fakeWebhook({ resource, object }: AdmissionRequest): KubeObject {
  if (resource.plural !== 'pods') return object;
  const pod = object as V1Pod;
  const podAnnotations = (pod.metadata!.annotations ??= {});
  const owner = pod.metadata?.ownerReferences?.find((r) => r.controller === true);
  const migration = owner === undefined ? undefined : api.list<Migration>(CHECKPOINT_API_VERSION, 'migrations', NS)
    .find((m) => m.status?.sourceOwner?.uid === owner.uid && ['StoppingSource', 'WaitingForNode', 'Restoring'].includes(m.status.phase ?? ''));
  const from = migration?.status?.checkpointName ?? podAnnotations[annotations.RESTORE_FROM];
  if (from !== undefined) {
    podAnnotations[annotations.RESTORE_FROM] = from;
    podAnnotations[annotations.RESTORED_CHECKPOINT_UID] = world.checkpoint(from)!.metadata!.uid!;
  }
  return pod as KubeObject;
}

async function start(timing: Record<string, number> = {}): Promise<RunningController> {
  const config = readControllerConfig(
    ['--port', '0', '--leader-election-lease-duration', '2s', '--leader-election-renew-deadline', '1s', '--leader-election-retry-period', '100ms'],
    { POD_NAMESPACE: 'cryo-system' },
  );
  const controller = await startController(config, {
    kubeConfig: api.kubeConfig(),
    logger: silentLogger(),
    host: '127.0.0.1',
    timing: { pollIntervalMs: 50, freshReplacementGraceMs: 300, ...timing },
  });
  controllers.push(controller);
  await waitFor(() => controller.isLeader, { what: 'the controller to lead' });
  return controller;
}

function migrate(name: string, spec: MigrationSpec): Migration {
  return api.put(testMigration(NS, name, spec)) as unknown as Migration;
}

async function phase(name: string, wanted: MigrationPhase, timeoutMs = 5000): Promise<Migration> {
  return waitFor(() => {
    const m = world.migration(name);
    return m?.status?.phase === wanted ? m : undefined;
  }, { timeoutMs, what: `Migration ${name} ${wanted} (it is ${world.migration(name)?.status?.phase}: ${world.migration(name)?.status?.message})` });
}

async function failed(name: string): Promise<string> {
  return (await phase(name, 'Failed')).status!.message!;
}

describe('a bare pod', () => {
  it('is checkpointed, evicted and re-created from the checkpoint on the target, under its name; each step is an Event', async () => {
    const source = api.put(testPod(NS, 'web', 'node-a')) as unknown as V1Pod;
    await start();
    const created = migrate('move-web', { podName: 'web', targetNodeName: 'node-b', storageClassName: 'team-registry', reason: 'rebalancing' });

    const checkpointing = await phase('move-web', 'Checkpointing');
    const checkpointName = checkpointNameOf(world.migration('move-web')!);
    expect(checkpointName).toMatch(/^move-web-[0-9a-f]{5}$/);
    expect(checkpointing.status).toMatchObject({ sourceNodeName: 'node-a', sourcePodUID: source.metadata!.uid, checkpointName, targetNodeName: 'node-b' });
    const checkpoint = await waitFor(() => world.checkpoint(checkpointName), { what: 'the Checkpoint' });
    expect(checkpoint.spec).toEqual({ podName: 'web', purpose: 'Migration', storageClassName: 'team-registry', reason: 'rebalancing' });
    expect(checkpoint.metadata!.labels).toEqual({ [MIGRATION_UID_LABEL]: created.metadata!.uid });
    expect(checkpoint.metadata!.ownerReferences).toEqual([{ apiVersion: CHECKPOINT_API_VERSION, kind: 'Migration', name: 'move-web', uid: created.metadata!.uid, controller: true }]);

    await world.finishCheckpoint(checkpointName, source);
    const restoring = await phase('move-web', 'Restoring');
    const recreated = await waitFor(() => world.pod('web'), { what: 'the pod re-created' });
    expect(recreated.metadata?.uid).not.toBe(source.metadata!.uid);
    expect(restoring.status?.conditions?.find((c) => c.type === 'SourceStopped')).toMatchObject({ status: 'True', reason: 'Evicted' });
    expect(api.requests.filter((r) => r.method === 'POST' && r.path === `/api/v1/namespaces/${NS}/pods/web/eviction`).map((r) => r.body)).toEqual([
      { apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name: 'web', namespace: NS }, deleteOptions: { preconditions: { uid: source.metadata!.uid } } },
    ]);
    expect(recreated.metadata?.annotations?.[annotations.RESTORE_FROM]).toBe(checkpointName);
    expect(recreated.spec?.nodeName).toBeUndefined();
    expect(recreated.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms).toEqual([
      { matchFields: [{ key: 'metadata.name', operator: 'In', values: ['node-b'] }] },
    ]);
    await waitFor(() => world.migration('move-web')?.status?.targetPodName === 'web', { what: 'the pod recorded' });

    await world.runReady('web', 'node-b');
    const done = await phase('move-web', 'Succeeded');
    expect(done.status).toMatchObject({ targetPodName: 'web', targetNodeName: 'node-b', completionTime: expect.any(String) });
    expect(done.status!.downtimeSeconds).toBeGreaterThanOrEqual(0);
    expect(done.status!.downtimeSeconds).toBeLessThan(5);
    expect(done.status!.message).toMatch(/^pod web runs Ready on node node-b, restored from Checkpoint move-web-[0-9a-f]{5}; downtime \d+\.\d s$/);
    expect(done.status!.conditions?.find((c) => c.type === 'Progressing')).toMatchObject({ status: 'False', reason: 'Succeeded' });
    await waitFor(() => world.events('move-web').length >= 5);
    expect(world.events('move-web').map((e) => e.split(':')[0])).toEqual(['Normal Checkpointing', 'Normal CheckpointSucceeded', 'Normal SourceEvicted', 'Normal PodRecreated', 'Normal Succeeded']);
  });

  it('restarts with state on its own node when the target is the source (restart with state)', async () => {
    const source = api.put(testPod(NS, 'web', 'node-a')) as unknown as V1Pod;
    await start();
    migrate('again', { podName: 'web', targetNodeName: 'node-a' });
    await phase('again', 'Checkpointing');
    await world.finishCheckpoint(checkpointNameOf(world.migration('again')!), source);
    await phase('again', 'Restoring');
    await world.runReady('web', 'node-a');
    expect((await phase('again', 'Succeeded')).status?.targetNodeName).toBe('node-a');
  });

  it('without a target goes to any other node: its re-created pod keeps off the source', async () => {
    const source = api.put(testPod(NS, 'web', 'node-a')) as unknown as V1Pod;
    await start();
    migrate('anywhere', { podName: 'web' });
    expect((await phase('anywhere', 'Checkpointing')).status?.targetNodeName).toBeUndefined();
    await world.finishCheckpoint(checkpointNameOf(world.migration('anywhere')!), source);
    await phase('anywhere', 'Restoring');
    expect((await waitFor(() => world.pod('web'))).spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms).toEqual([
      { matchFields: [{ key: 'metadata.name', operator: 'NotIn', values: ['node-a'] }] },
    ]);
    await world.runReady('web', 'node-b');
    expect((await phase('anywhere', 'Succeeded')).status?.targetNodeName).toBe('node-b');
  });

  it('warns that emptyDir contents are not carried, and moves all the same', async () => {
    api.put(testPod(NS, 'web', 'node-a', { volumes: [{ name: 'cache', emptyDir: {} }] }));
    await start();
    migrate('with-cache', { podName: 'web', targetNodeName: 'node-b' });
    await phase('with-cache', 'Checkpointing');
    await waitFor(() => world.events('with-cache').some((e) => e.startsWith('Warning VolumeContentsNotCarried')));
    expect(world.events('with-cache')).toContain('Warning VolumeContentsNotCarried: volume "cache" is an emptyDir: its contents are not carried, the copy starts with it empty while its restored memory may expect the files written there');
  });

  it('fails, leaving the pod gone, when the pod created is not restored (no webhook)', async () => {
    const source = api.put(testPod(NS, 'web', 'node-a')) as unknown as V1Pod;
    api.admission = undefined;
    await start();
    migrate('no-webhook', { podName: 'web', targetNodeName: 'node-b' });
    await phase('no-webhook', 'Checkpointing');
    await world.finishCheckpoint(checkpointNameOf(world.migration('no-webhook')!), source);
    expect(await failed('no-webhook')).toMatch(/^pod web was created but not restored from Checkpoint no-webhook-[0-9a-f]{5}: the webhook did not mutate it/);
  });

  it('retries creating the pod while the apiserver refuses it, saying why, then carries on', async () => {
    const source = api.put(testPod(NS, 'web', 'node-a')) as unknown as V1Pod;
    await start();
    migrate('refused', { podName: 'web', targetNodeName: 'node-b' });
    await phase('refused', 'Checkpointing');
    let refusals = 4;
    api.admission = (request) => {
      if (request.resource.plural === 'pods' && refusals-- > 0) throw new ApiError(403, 'admission webhook "restore.cryo.dev" denied the request: Checkpoint is Running');
      return fakeWebhook(request);
    };
    await world.finishCheckpoint(checkpointNameOf(world.migration('refused')!), source);
    await waitFor(() => /creating pod web from Checkpoint refused-[0-9a-f]{5} failed: HTTP 403: admission webhook "restore.cryo.dev" denied the request/.test(world.migration('refused')?.status?.message ?? ''), { what: 'the refusal in status' });
    await waitFor(() => world.pod('web'), { what: 'the pod re-created' });
    await world.runReady('web', 'node-b');
    await phase('refused', 'Succeeded');
  });
});

describe('a ReplicaSet pod', () => {
  it('is replaced by its owner; the replacement is restored, found by its annotation, and recorded', async () => {
    const source = api.put(testPod(NS, 'web-7c9f8d6b5-x2vqz', 'node-a', { owner: RS })) as unknown as V1Pod;
    const sibling = api.put(testPod(NS, 'web-7c9f8d6b5-aaaaa', 'node-b', { owner: RS })) as unknown as V1Pod;
    await start();
    migrate('move-rs', { podName: 'web-7c9f8d6b5-x2vqz', targetNodeName: 'node-b' });
    await phase('move-rs', 'Checkpointing');
    const checkpointName = checkpointNameOf(world.migration('move-rs')!);
    await world.finishCheckpoint(checkpointName, source);
    const restoring = await phase('move-rs', 'Restoring');
    expect(restoring.status?.sourceOwner).toEqual(RS);
    expect(world.pod('web-7c9f8d6b5-x2vqz')).toBeUndefined();
    // The ReplicaSet controller's part: a new pod from its template, through admission.
    const replacement = await createPod(testPod(NS, '', undefined, { owner: RS, phase: 'Pending' }), 'web-7c9f8d6b5-');
    expect(replacement.metadata?.annotations?.[annotations.RESTORED_CHECKPOINT_UID]).toBe(world.checkpoint(checkpointName)!.metadata!.uid);
    await waitFor(() => world.migration('move-rs')?.status?.targetPodName === replacement.metadata!.name, { what: 'the replacement recorded' });
    await world.runReady(replacement.metadata!.name!, 'node-b');
    const done = await phase('move-rs', 'Succeeded');
    expect(done.status).toMatchObject({ targetPodName: replacement.metadata!.name, targetNodeName: 'node-b' });
    expect(world.pod(sibling.metadata!.name!)?.metadata?.uid).toBe(sibling.metadata!.uid);
    expect(world.events('move-rs').some((e) => e.startsWith(`Normal ReplacementRestoring: ReplicaSet ${RS.name} created pod ${replacement.metadata!.name}`))).toBe(true);
  });

  it('fails, saying so, when the replacement started fresh (the webhook did not restore it)', async () => {
    const source = api.put(testPod(NS, 'web-7c9f8d6b5-x2vqz', 'node-a', { owner: RS })) as unknown as V1Pod;
    await start();
    migrate('fresh', { podName: 'web-7c9f8d6b5-x2vqz', targetNodeName: 'node-b' });
    await phase('fresh', 'Checkpointing');
    await world.finishCheckpoint(checkpointNameOf(world.migration('fresh')!), source);
    await phase('fresh', 'Restoring');
    api.admission = undefined;
    const replacement = await createPod(testPod(NS, '', undefined, { owner: RS, phase: 'Pending' }), 'web-7c9f8d6b5-');
    const message = await failed('fresh');
    expect(message).toContain(`ReplicaSet ${RS.name} replaced the pod with ${replacement.metadata!.name}, which started fresh, not from Checkpoint fresh-`);
    expect(message).toContain('the webhook (migrate.cryo.dev, failurePolicy Ignore so that workloads never wait on it) was unavailable or did not see this Migration');
  });

  it('waits for the replacement no longer than --restore-timeout, then says what may have happened', async () => {
    const source = api.put(testPod(NS, 'web-7c9f8d6b5-x2vqz', 'node-a', { owner: RS })) as unknown as V1Pod;
    await start({ restoreTimeoutMs: 400 });
    migrate('scaled-down', { podName: 'web-7c9f8d6b5-x2vqz', targetNodeName: 'node-b' });
    await phase('scaled-down', 'Checkpointing');
    await world.finishCheckpoint(checkpointNameOf(world.migration('scaled-down')!), source);
    expect(await failed('scaled-down')).toMatch(/^not restored within 0.4s: no replacement appeared: was ReplicaSet web-7c9f8d6b5 scaled down, deleted, or replaced by a rollout\?; Checkpoint scaled-down-[0-9a-f]{5} is kept$/);
  });
});

describe('a StatefulSet pod', () => {
  it('comes back under its name from its owner, restored', async () => {
    const source = api.put(testPod(NS, 'db-0', 'node-a', { owner: STS })) as unknown as V1Pod;
    await start();
    migrate('move-db', { podName: 'db-0', targetNodeName: 'node-b' });
    await phase('move-db', 'Checkpointing');
    await world.finishCheckpoint(checkpointNameOf(world.migration('move-db')!), source);
    await phase('move-db', 'Restoring');
    const replacement = await createPod(testPod(NS, 'db-0', undefined, { owner: STS, phase: 'Pending' }));
    expect(replacement.metadata?.uid).not.toBe(source.metadata!.uid);
    await world.runReady('db-0', 'node-b');
    expect((await phase('move-db', 'Succeeded')).status).toMatchObject({ targetPodName: 'db-0', targetNodeName: 'node-b', sourceOwner: STS });
  });
});

describe('restartInPlace', () => {
  it('waits after the eviction until its node is Ready and schedulable again, then restores there', async () => {
    const source = api.put(testPod(NS, 'web', 'node-a')) as unknown as V1Pod;
    await start();
    migrate('reboot', { podName: 'web', restartInPlace: true, reason: 'kernel upgrade' });
    await phase('reboot', 'Checkpointing');
    api.put(testNode('node-a', { unschedulable: true }));
    await world.finishCheckpoint(checkpointNameOf(world.migration('reboot')!), source);
    const waiting = await phase('reboot', 'WaitingForNode');
    await waitFor(() => world.migration('reboot')?.status?.message?.includes('is cordoned'), { what: 'the reason to wait' });
    expect(world.migration('reboot')!.status!.message).toBe('waiting for node node-a to be Ready and schedulable again (kubectl cryo uncordon node-a): node node-a is cordoned (unschedulable)');
    expect(waiting.status?.targetNodeName).toBe('node-a');
    expect(world.pod('web')).toBeUndefined();
    api.put(testNode('node-a', { ready: false }));
    await waitFor(() => world.migration('reboot')?.status?.message?.includes('is not Ready'), { what: 'the node rebooting' });
    api.put(testNode('node-a'));
    await phase('reboot', 'Restoring');
    expect((await waitFor(() => world.pod('web'))).spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms).toEqual([
      { matchFields: [{ key: 'metadata.name', operator: 'In', values: ['node-a'] }] },
    ]);
    await world.runReady('web', 'node-a');
    await phase('reboot', 'Succeeded');
    expect(world.events('reboot').map((e) => e.split(':')[0])).toContain('Normal NodeReady');
  });
});

describe('refusals before anything is done', () => {
  it.each<[string, () => unknown, MigrationSpec, string | RegExp]>([
    ['a pod that does not exist', () => undefined, { podName: 'nope', targetNodeName: 'node-b' }, 'pod shop/nope does not exist; name a running pod in spec.podName; nothing was done'],
    ['a pod not yet running', () => api.put(testPod(NS, 'web', undefined, { phase: 'Pending' })), { podName: 'web' }, 'pod shop/web is Pending, not Running on a node: only a running pod can be migrated; nothing was done'],
    ['restartInPlace with a target', () => api.put(testPod(NS, 'web', 'node-a')), { podName: 'web', targetNodeName: 'node-b', restartInPlace: true }, /^restartInPlace and targetNodeName exclude each other/],
    ['a target that does not exist', () => api.put(testPod(NS, 'web', 'node-a')), { podName: 'web', targetNodeName: 'node-z' }, 'target node node-z does not exist; nothing was done'],
    ['a target not Ready', () => { api.put(testNode('node-b', { ready: false })); api.put(testPod(NS, 'web', 'node-a')); }, { podName: 'web', targetNodeName: 'node-b' }, 'the pod cannot run on the target: node node-b is not Ready (KubeletNotReady); nothing was done'],
    ['a cordoned target', () => { api.put(testNode('node-b', { unschedulable: true })); api.put(testPod(NS, 'web', 'node-a')); }, { podName: 'web', targetNodeName: 'node-b' }, 'the pod cannot run on the target: node node-b is cordoned (unschedulable); nothing was done'],
    ['a target the pod does not tolerate', () => { api.put(testNode('node-b', { taints: [{ key: 'gpu', value: 'true', effect: 'NoSchedule' }] })); api.put(testPod(NS, 'web', 'node-a')); }, { podName: 'web', targetNodeName: 'node-b' }, 'the pod cannot run on the target: node node-b has the taint gpu=true:NoSchedule, which the pod does not tolerate; nothing was done'],
    ['no other node able to take it', () => { api.put(testNode('node-b', { unschedulable: true })); api.put(testPod(NS, 'web', 'node-a')); }, { podName: 'web' }, 'no node other than node-a can take pod web: node node-b is cordoned (unschedulable); nothing was done'],
    ['a DaemonSet pod', () => api.put(testPod(NS, 'agent-x', 'node-a', { owner: { kind: 'DaemonSet', name: 'agent', uid: 'u' } })), { podName: 'agent-x', targetNodeName: 'node-b' }, /^pod shop\/agent-x is controlled by DaemonSet agent, which would re-create it fresh/],
    ['a hostPath volume, to another node', () => api.put(testPod(NS, 'web', 'node-a', { volumes: [{ name: 'data', hostPath: { path: '/srv/web' } }] })), { podName: 'web', targetNodeName: 'node-b' }, 'pod web cannot move to node node-b: volume "data" is the hostPath /srv/web of node node-a: its files do not move to another node (migrate with targetNodeName: node-a to restart with state, or use a network volume); nothing was done'],
    ['a claim on a local volume', () => {
      api.put({ apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name: 'data-web', namespace: NS }, spec: { accessModes: ['ReadWriteOnce'], volumeName: 'pv-local' }, status: { phase: 'Bound', accessModes: ['ReadWriteOnce'] } });
      api.put({ apiVersion: 'v1', kind: 'PersistentVolume', metadata: { name: 'pv-local' }, spec: { accessModes: ['ReadWriteOnce'], local: { path: '/mnt/disks/1' }, nodeAffinity: { required: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: ['node-a'] }] }] } } } });
      api.put(testPod(NS, 'web', 'node-a', { volumes: [{ name: 'data', persistentVolumeClaim: { claimName: 'data-web' } }] }));
    }, { podName: 'web', targetNodeName: 'node-b' }, 'pod web cannot move to node node-b: volume "data" (claim data-web, ReadWriteOnce) is on PersistentVolume pv-local, a local volume on one node\'s disk: it cannot move to another node; nothing was done'],
    ['a claim whose volume the target cannot reach', () => {
      api.put(testNode('node-b', { labels: { 'topology.kubernetes.io/zone': 'b' } }));
      api.put({ apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name: 'data-web', namespace: NS }, spec: { accessModes: ['ReadWriteOnce'], volumeName: 'pv-zonal' }, status: { phase: 'Bound', accessModes: ['ReadWriteOnce'] } });
      api.put({ apiVersion: 'v1', kind: 'PersistentVolume', metadata: { name: 'pv-zonal' }, spec: { accessModes: ['ReadWriteOnce'], csi: { driver: 'ebs.csi.aws.com', volumeHandle: 'vol-1' }, nodeAffinity: { required: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'topology.kubernetes.io/zone', operator: 'In', values: ['a'] }] }] } } } });
      api.put(testPod(NS, 'web', 'node-a', { volumes: [{ name: 'data', persistentVolumeClaim: { claimName: 'data-web' } }] }));
    }, { podName: 'web', targetNodeName: 'node-b' }, 'pod web cannot move to node node-b: volume "data" (claim data-web, ReadWriteOnce) is on PersistentVolume pv-zonal, whose node affinity node node-b does not meet: it cannot be mounted there; nothing was done'],
  ])('refuses %s, saying why', async (_, setUp, spec, message) => {
    setUp();
    await start();
    migrate('m', spec);
    const failure = await failed('m');
    if (typeof message === 'string') expect(failure).toBe(message);
    else expect(failure).toMatch(message);
    expect(world.checkpoint(checkpointNameOf(world.migration('m')!))).toBeUndefined();
    expect(api.requests.some((r) => r.path.endsWith('/eviction'))).toBe(false);
    await waitFor(() => world.events('m').length > 0);
    expect(world.events('m')).toEqual([`Warning MigrationRefused: ${failure}`]);
  });

  it('moves a pod whose ReadWriteOnce network volume the target can mount, and a hostPath pod onto its own node', async () => {
    api.put({ apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name: 'data-web', namespace: NS }, spec: { accessModes: ['ReadWriteOnce'], volumeName: 'pv-net' }, status: { phase: 'Bound', accessModes: ['ReadWriteOnce'] } });
    api.put({ apiVersion: 'v1', kind: 'PersistentVolume', metadata: { name: 'pv-net' }, spec: { accessModes: ['ReadWriteOnce'], csi: { driver: 'rbd.csi.ceph.com', volumeHandle: 'v' } } });
    api.put(testPod(NS, 'web', 'node-a', { volumes: [{ name: 'data', persistentVolumeClaim: { claimName: 'data-web' } }] }));
    api.put(testPod(NS, 'local', 'node-a', { volumes: [{ name: 'data', hostPath: { path: '/srv' } }] }));
    await start();
    migrate('net', { podName: 'web', targetNodeName: 'node-b' });
    migrate('here', { podName: 'local', targetNodeName: 'node-a' });
    await phase('net', 'Checkpointing');
    await phase('here', 'Checkpointing');
  });

  it('refuses a second Migration of a pod another one is moving', async () => {
    api.put(testPod(NS, 'web', 'node-a'));
    await start();
    migrate('first', { podName: 'web', targetNodeName: 'node-b' });
    await phase('first', 'Checkpointing');
    migrate('second', { podName: 'web', targetNodeName: 'node-b' });
    expect(await failed('second')).toBe('Migration first is already moving pod web; wait for it to finish; nothing was done');
  });
});

describe('failures after the checkpoint was asked for', () => {
  it('a failed Checkpoint fails the Migration with its message; the source keeps running', async () => {
    const source = api.put(testPod(NS, 'web', 'node-a')) as unknown as V1Pod;
    await start();
    migrate('m', { podName: 'web', targetNodeName: 'node-b' });
    await phase('m', 'Checkpointing');
    const name = checkpointNameOf(world.migration('m')!);
    await waitFor(() => world.checkpoint(name));
    await world.finishCheckpoint(name, source, { phase: 'Failed', message: 'the container runtime failed to checkpoint: Connected TCP socket' });
    expect(await failed('m')).toBe(`Checkpoint ${name} failed: the container runtime failed to checkpoint: Connected TCP socket; the source pod keeps running`);
    expect(world.pod('web')?.metadata?.uid).toBe(source.metadata!.uid);
  });

  it('a Checkpoint that does not succeed within --checkpoint-timeout fails it, naming the node agent', async () => {
    api.put(testPod(NS, 'web', 'node-a'));
    await start({ checkpointTimeoutMs: 300 });
    migrate('m', { podName: 'web', targetNodeName: 'node-b' });
    expect(await failed('m')).toMatch(/^Checkpoint m-[0-9a-f]{5} did not succeed within 0.3s \(it is not yet claimed\); is the node agent running on node node-a\? The source pod keeps running$/);
  });

  it('a Checkpoint in one node\'s own directory store cannot go elsewhere: failed before the source is stopped', async () => {
    const source = api.put(testPod(NS, 'web', 'node-a')) as unknown as V1Pod;
    await start();
    migrate('m', { podName: 'web', targetNodeName: 'node-b' });
    await phase('m', 'Checkpointing');
    const name = checkpointNameOf(world.migration('m')!);
    await waitFor(() => world.checkpoint(name));
    await world.finishCheckpoint(name, source, { storage: { type: 'directory', shared: false } });
    expect(await failed('m')).toMatch(/^Checkpoint m-[0-9a-f]{5} is in the own directory store of node node-a, which only that node serves, so it cannot be restored on node node-b; .*; the source pod keeps running$/);
    expect(world.pod('web')?.metadata?.uid).toBe(source.metadata!.uid);
  });

  it('refuses to take over a Checkpoint of that name it did not create', async () => {
    api.put(testPod(NS, 'web', 'node-a'));
    const m = migrate('m', { podName: 'web', targetNodeName: 'node-b' });
    api.put({ apiVersion: CHECKPOINT_API_VERSION, kind: 'Checkpoint', metadata: { name: checkpointNameOf(m), namespace: NS }, spec: { podName: 'web' } });
    await start();
    expect(await failed('m')).toMatch(/^a Checkpoint named m-[0-9a-f]{5} exists that this Migration did not create/);
  });

  it('a PodDisruptionBudget that refuses the eviction is retried with backoff and said in status; then it goes on', async () => {
    const source = api.put(testPod(NS, 'web', 'node-a')) as unknown as V1Pod;
    await start();
    migrate('m', { podName: 'web', targetNodeName: 'node-b' });
    await phase('m', 'Checkpointing');
    api.failNext({ method: 'POST', pathPrefix: `/api/v1/namespaces/${NS}/pods/web/eviction`, status: 429, times: 2, message: "Cannot evict pod as it would violate the pod's disruption budget." });
    await world.finishCheckpoint(checkpointNameOf(world.migration('m')!), source);
    await waitFor(() => world.migration('m')?.status?.message?.includes('PodDisruptionBudget'), { what: 'the budget in status' });
    expect(world.migration('m')!.status).toMatchObject({
      phase: 'StoppingSource',
      message: "evicting pod web: refused (Cannot evict pod as it would violate the pod's disruption budget.), most likely by a PodDisruptionBudget; retrying with backoff for up to 10m",
    });
    expect(world.pod('web')).toBeDefined();
    await phase('m', 'Restoring', 10_000);
    expect(world.events('m').some((e) => e.startsWith('Warning EvictionBlocked'))).toBe(true);
  });

  it('an eviction refused otherwise (RBAC, say) is said in status and retried too', async () => {
    const source = api.put(testPod(NS, 'web', 'node-a')) as unknown as V1Pod;
    await start();
    migrate('m', { podName: 'web', targetNodeName: 'node-b' });
    await phase('m', 'Checkpointing');
    api.failNext({ method: 'POST', pathPrefix: `/api/v1/namespaces/${NS}/pods/web/eviction`, status: 403, times: 2, message: 'pods "web" is forbidden: cannot create resource "pods/eviction"' });
    await world.finishCheckpoint(checkpointNameOf(world.migration('m')!), source);
    await waitFor(() => world.migration('m')?.status?.message?.includes('forbidden'), { what: 'the refusal in status' });
    expect(world.migration('m')!.status!.message).toBe('evicting pod web: refused (HTTP 403: pods "web" is forbidden: cannot create resource "pods/eviction"); retrying with backoff for up to 10m');
    await phase('m', 'Restoring', 10_000);
  });

  it('a Checkpoint the apiserver refuses to create is said in status and retried', async () => {
    const source = api.put(testPod(NS, 'web', 'node-a')) as unknown as V1Pod;
    let refuse = true;
    api.admission = (request) => {
      if (refuse && request.resource.plural === 'checkpoints') throw new ApiError(403, 'checkpoints.cryo.dev is forbidden: exceeded quota');
      return fakeWebhook(request);
    };
    await start({ pollIntervalMs: 50 });
    migrate('m', { podName: 'web', targetNodeName: 'node-b' });
    await waitFor(() => world.migration('m')?.status?.message?.includes('exceeded quota'), { what: 'the refusal in status' });
    expect(world.migration('m')!.status!.message).toMatch(/^creating Checkpoint m-[0-9a-f]{5} failed: HTTP 403: checkpoints\.cryo\.dev is forbidden: exceeded quota; retrying$/);
    refuse = false;
    // A refused create is tried again 5 s later (migration-reconciler.ts), unless something else
    // wakes the Migration first: allow for a whole interval.
    await world.finishCheckpoint(checkpointNameOf(world.migration('m')!), source, {}, 15_000);
    await phase('m', 'Restoring', 10_000);
  });

  it('an eviction refused for longer than --eviction-timeout fails it; the source keeps running', async () => {
    const source = api.put(testPod(NS, 'web', 'node-a')) as unknown as V1Pod;
    await start({ evictionTimeoutMs: 1500 });
    migrate('m', { podName: 'web', targetNodeName: 'node-b' });
    await phase('m', 'Checkpointing');
    api.failNext({ method: 'POST', pathPrefix: `/api/v1/namespaces/${NS}/pods/web/eviction`, status: 429, times: 100, message: "Cannot evict pod as it would violate the pod's disruption budget." });
    await world.finishCheckpoint(checkpointNameOf(world.migration('m')!), source);
    expect(await failed('m')).toMatch(/^evicting pod web was refused for 1.5s \(Cannot evict pod as it would violate the pod's disruption budget\.\); the source pod keeps running/);
    expect(world.pod('web')?.metadata?.uid).toBe(source.metadata!.uid);
  });

  it('a re-created pod that does not run Ready within --restore-timeout fails it, in the kubelet\'s words', async () => {
    const source = api.put(testPod(NS, 'web', 'node-a')) as unknown as V1Pod;
    await start({ restoreTimeoutMs: 1000 });
    migrate('m', { podName: 'web', targetNodeName: 'node-b' });
    await phase('m', 'Checkpointing');
    await world.finishCheckpoint(checkpointNameOf(world.migration('m')!), source);
    await phase('m', 'Restoring');
    const pod = await waitFor(() => world.pod('web'));
    api.put({ ...pod, spec: { ...pod.spec!, nodeName: 'node-b' }, status: { phase: 'Pending', containerStatuses: [{ name: 'app', image: 'x', imageID: '', ready: false, restartCount: 0, state: { waiting: { reason: 'CreateContainerError', message: 'criu failed: type RESTORE errno 0' } } }] } });
    expect(await failed('m')).toMatch(/^not restored within 1s: waiting for pod web to run Ready: container app is waiting: CreateContainerError \(criu failed: type RESTORE errno 0\); Checkpoint m-[0-9a-f]{5} is kept$/);
  });
});

describe('status is the source of truth', () => {
  it('a controller restarted mid-way carries on from the recorded phase', async () => {
    const source = api.put(testPod(NS, 'web', 'node-a')) as unknown as V1Pod;
    const first = await start();
    migrate('m', { podName: 'web', targetNodeName: 'node-b' });
    await phase('m', 'Checkpointing');
    const name = checkpointNameOf(world.migration('m')!);
    await waitFor(() => world.checkpoint(name));
    await first.stop();
    controllers.splice(controllers.indexOf(first), 1);
    // While no controller runs, the node agent finishes.
    await world.finishCheckpoint(name, source);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(world.migration('m')!.status!.phase).toBe('Checkpointing');
    await start();
    await phase('m', 'Restoring');
    await world.runReady('web', 'node-b');
    await phase('m', 'Succeeded');
    // One Checkpoint, one eviction, one pod created: nothing done twice.
    expect(api.list(CHECKPOINT_API_VERSION, 'checkpoints', NS)).toHaveLength(1);
    expect(api.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/eviction'))).toHaveLength(1);
    expect(api.requests.filter((r) => r.method === 'POST' && r.path === `/api/v1/namespaces/${NS}/pods` && r.status === 201)).toHaveLength(1);
  });

  it('a controller restarted after the eviction re-creates the pod without evicting again', async () => {
    const source = api.put(testPod(NS, 'web', 'node-a')) as unknown as V1Pod;
    // Admission refuses the re-created pod until the first controller is gone.
    let refuse = true;
    api.admission = (request) => {
      if (refuse && request.resource.plural === 'pods') throw new ApiError(403, 'admission webhook "restore.cryo.dev" denied the request: not now');
      return fakeWebhook(request);
    };
    const first = await start();
    migrate('m', { podName: 'web', targetNodeName: 'node-b' });
    await phase('m', 'Checkpointing');
    await world.finishCheckpoint(checkpointNameOf(world.migration('m')!), source);
    await waitFor(() => world.migration('m')?.status?.message?.includes('not now'), { what: 'the refused create in status' });
    await first.stop();
    controllers.splice(controllers.indexOf(first), 1);
    refuse = false;
    await start();
    await waitFor(() => world.pod('web'), { what: 'the pod re-created' });
    await world.runReady('web', 'node-b');
    await phase('m', 'Succeeded');
    expect(api.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/eviction'))).toHaveLength(1);
  });

  it('leaves finished Migrations alone', async () => {
    api.put(testPod(NS, 'web', 'node-a'));
    api.put({ ...testMigration(NS, 'old', { podName: 'web', targetNodeName: 'node-b' }), status: { phase: 'Succeeded', message: 'done long ago' } });
    api.put({ ...testMigration(NS, 'older', { podName: 'web', targetNodeName: 'node-b' }), status: { phase: 'Failed', message: 'failed long ago' } });
    await start();
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(world.migration('old')!.status!.message).toBe('done long ago');
    expect(world.migration('older')!.status!.message).toBe('failed long ago');
    expect(api.requests.filter((r) => r.method !== 'GET' && r.path.includes('/migrations/'))).toEqual([]);
  });
});

describe('leader election', () => {
  it('of two controllers only the leader acts; when it stops, the other takes over and finishes the Migration', async () => {
    const source = api.put(testPod(NS, 'web', 'node-a')) as unknown as V1Pod;
    const a = await start();
    const b = await startFollower();
    expect(a.isLeader).toBe(true);
    expect(b.isLeader).toBe(false);
    migrate('m', { podName: 'web', targetNodeName: 'node-b' });
    await phase('m', 'Checkpointing');
    const transitions = async (c: RunningController): Promise<number> => (await c.metrics.phaseTransitions.get()).values.reduce((sum, v) => sum + v.value, 0);
    // Counted once the write has answered, a moment after the status shows it.
    await waitFor(async () => (await transitions(a)) === 1, { what: 'the leader to count its step' });
    expect(await transitions(b)).toBe(0);
    await a.stop();
    controllers.splice(controllers.indexOf(a), 1);
    await waitFor(() => b.isLeader, { what: 'b to take over', timeoutMs: 3000 });
    await world.finishCheckpoint(checkpointNameOf(world.migration('m')!), source);
    await phase('m', 'Restoring');
    await world.runReady('web', 'node-b');
    await phase('m', 'Succeeded');
    await waitFor(async () => (await transitions(b)) === 3, { what: 'the new leader to count its steps' });
    expect((await b.metrics.leader.get()).values[0].value).toBe(1);
  });
});

describe('the apiserver failing the controller', () => {
  const statusPath = (name: string) => `/apis/cryo.dev/v1alpha1/namespaces/${NS}/migrations/${name}/status`;
  const checkpointCreates = () => api.requests.filter((r) => r.method === 'POST' && r.path === `/apis/cryo.dev/v1alpha1/namespaces/${NS}/checkpoints`);

  it('a status write that conflicts (409: written since it was read) is read again and carried on from: one Checkpoint, one step each', async () => {
    const source = api.put(testPod(NS, 'web', 'node-a')) as unknown as V1Pod;
    api.failNext({ method: 'PUT', pathPrefix: statusPath('m'), status: 409, reason: 'Conflict', message: 'Operation cannot be fulfilled on migrations.cryo.dev "m": the object has been modified; please apply your changes to the latest version and try again' });
    const controller = await start();
    migrate('m', { podName: 'web', targetNodeName: 'node-b' });
    await phase('m', 'Checkpointing');
    expect(api.requests.filter((r) => r.method === 'PUT' && r.path === statusPath('m')).map((r) => r.status).slice(0, 2)).toEqual([409, 200]);
    // A conflict is expected, not an error to alert on.
    expect(await reconcileErrors(controller)).toBe(0);
    await world.finishCheckpoint(checkpointNameOf(world.migration('m')!), source);
    await phase('m', 'Restoring');
    await world.runReady('web', 'node-b');
    await phase('m', 'Succeeded');
    expect(checkpointCreates().filter((r) => r.status === 201)).toHaveLength(1);
    await waitFor(() => world.events('m').length >= 5);
    expect(world.events('m').map((e) => e.split(':')[0])).toEqual(['Normal Checkpointing', 'Normal CheckpointSucceeded', 'Normal SourceEvicted', 'Normal PodRecreated', 'Normal Succeeded']);
  });

  it('a status write the apiserver fails (503) is retried with backoff, counted as a reconcile error, and the Migration carries on', async () => {
    const source = api.put(testPod(NS, 'web', 'node-a')) as unknown as V1Pod;
    api.failNext({ method: 'PUT', pathPrefix: statusPath('m'), status: 503, times: 2 });
    const controller = await start();
    migrate('m', { podName: 'web', targetNodeName: 'node-b' });
    await phase('m', 'Checkpointing');
    expect(api.requests.filter((r) => r.method === 'PUT' && r.path === statusPath('m')).map((r) => r.status).slice(0, 3)).toEqual([503, 503, 200]);
    expect(await reconcileErrors(controller)).toBe(2);
    expect((await controller.metrics.metrics.render()).body).toMatch(/^cryo_migration_reconcile_errors_total 2$/m);
    await world.finishCheckpoint(checkpointNameOf(world.migration('m')!), source);
    await phase('m', 'Restoring');
    // Each step is recorded before its side effect: the failed writes created nothing twice.
    expect(checkpointCreates()).toHaveLength(1);
  });

  it('the watch of Migrations failing (500) and dropping is listed again; a Migration created meanwhile is carried out', async () => {
    api.put(testPod(NS, 'web', 'node-a'));
    await start();
    api.failNext({ method: 'GET', pathPrefix: `/apis/cryo.dev/v1alpha1/migrations`, status: 500, times: 2 });
    api.closeWatches();
    migrate('m', { podName: 'web', targetNodeName: 'node-b' });
    await phase('m', 'Checkpointing', 15_000);
    expect(api.requests.filter((r) => r.method === 'GET' && r.path === '/apis/cryo.dev/v1alpha1/migrations' && r.status === 500)).toHaveLength(2);
  });
});

async function reconcileErrors(controller: RunningController): Promise<number> {
  return (await controller.metrics.reconcileErrors.get()).values[0]?.value ?? 0;
}

/** A second controller, which finds the Lease held. */
async function startFollower(): Promise<RunningController> {
  const config = readControllerConfig(
    ['--port', '0', '--leader-election-lease-duration', '2s', '--leader-election-renew-deadline', '1s', '--leader-election-retry-period', '100ms'],
    { POD_NAMESPACE: 'cryo-system' },
  );
  const controller = await startController(config, { kubeConfig: api.kubeConfig(), logger: silentLogger(), host: '127.0.0.1', timing: { pollIntervalMs: 50 } });
  controllers.push(controller);
  await controller.migrations.synced;
  return controller;
}

/** Creates a pod through the API (so admission runs), as an owner's controller does. */
async function createPod(pod: V1Pod, generateName?: string): Promise<V1Pod> {
  const { CoreV1Api } = await import('@kubernetes/client-node');
  const body = generateName === undefined ? pod : { ...pod, metadata: { ...pod.metadata, name: undefined, generateName } };
  delete body.status;
  return api.kubeConfig().makeApiClient(CoreV1Api).createNamespacedPod({ namespace: NS, body });
}
