import { describe, expect, it } from 'vitest';
import { applyPatch, type Operation } from 'rfc6902';
import type { V1Pod } from '@kubernetes/client-node';
import { annotations, nodeLabels, silentLogger, type Checkpoint, type Migration, type MigrationStatus } from '@cryo/common';
import { loadAdmissionReview, loadCheckpoint, type RecordedAdmissionReview } from '@cryo/test';
import { createAdmissionHandler } from './admission-handler.ts';
import { findMigrationReplacement, type MigrationLookup } from './migration-replacement.ts';
import type { CheckpointLookup } from './pod-mutator.ts';
import { createWebhookMetrics } from '../webhook-metrics.ts';

const RS_UID = '5d1f4c2a-9b7e-4f0e-8f43-2a6b1c9d0e11';
const CHECKPOINT = 'orders-api-warm';

class Lookups implements CheckpointLookup, MigrationLookup {
  readonly checkpoints = new Map<string, Checkpoint>();
  readonly migrations: Migration[] = [];
  freshReads = 0;
  get(namespace: string, name: string, options: { fresh?: boolean } = {}) {
    if (options.fresh) this.freshReads++;
    return Promise.resolve(this.checkpoints.get(`${namespace}/${name}`));
  }
  list(namespace: string) {
    return this.migrations.filter((m) => m.metadata?.namespace === namespace);
  }
  withCheckpoint(checkpoint: Checkpoint = loadCheckpoint('succeeded-registry')) {
    this.checkpoints.set(`${checkpoint.metadata!.namespace}/${checkpoint.metadata!.name}`, checkpoint);
    return this;
  }
  withMigration(name: string, spec: Partial<Migration['spec']>, status: MigrationStatus, created = '2026-12-01T10:00:00Z') {
    this.migrations.push({
      apiVersion: 'cryo.dev/v1alpha1',
      kind: 'Migration',
      metadata: { name, namespace: 'shop', uid: `uid-${name}`, creationTimestamp: created as unknown as Date },
      spec: { podName: 'orders-api-7c9f8d6b5-x2vqz', ...spec },
      status,
    });
    return this;
  }
}

/** An active Migration of one of the ReplicaSet's pods, evicted, to node worker-b. */
const evicted: MigrationStatus = {
  phase: 'Restoring',
  sourceNodeName: 'worker-a',
  sourceOwner: { kind: 'ReplicaSet', name: 'orders-api-7c9f8d6b5', uid: RS_UID },
  checkpointName: CHECKPOINT,
};

/** A pod of the ReplicaSet as its controller creates it, without Cryo annotations. */
function replicaSetPod(): RecordedAdmissionReview {
  const review = loadAdmissionReview('restore-deployment-pod');
  delete review.request.object.metadata!.annotations![annotations.RESTORE_FROM];
  return review;
}

function handler(lookups: Lookups) {
  return createAdmissionHandler({ lookup: lookups, migrations: lookups, options: { hostHooksDir: '/var/run/cryo/hooks', pullSecret: '' }, logger: silentLogger(), metrics: createWebhookMetrics() });
}

function patched(pod: V1Pod, patch: string | undefined): V1Pod {
  const result = structuredClone(pod);
  if (patch === undefined) return result;
  const errors = applyPatch(result, JSON.parse(Buffer.from(patch, 'base64').toString('utf8')) as Operation[]);
  expect(errors.filter((e) => e !== null)).toEqual([]);
  return result;
}

const find = (lookups: Lookups, pod: V1Pod, name?: string) => findMigrationReplacement(pod, 'shop', name, lookups, lookups);

describe('findMigrationReplacement', () => {
  it("takes a new pod of the Migration's source owner, between eviction and restore, for the replacement", async () => {
    const lookups = new Lookups().withCheckpoint().withMigration('move', { targetNodeName: 'worker-b' }, evicted);
    expect(await find(lookups, replicaSetPod().request.object)).toEqual({
      migration: 'move',
      checkpointName: CHECKPOINT,
      nodeRequirement: { key: 'metadata.name', operator: 'In', values: ['worker-b'] },
      owner: 'ReplicaSet/orders-api-7c9f8d6b5',
      replaces: 'orders-api-7c9f8d6b5-x2vqz',
    });
  });

  it.each([['StoppingSource'], ['WaitingForNode'], ['Restoring']] as const)('matches in phase %s', async (phase) => {
    const lookups = new Lookups().withCheckpoint().withMigration('move', { targetNodeName: 'worker-b' }, { ...evicted, phase });
    expect((await find(lookups, replicaSetPod().request.object))?.migration).toBe('move');
  });

  it('keeps the pod off the source node when the Migration names no target, and on it for restartInPlace', async () => {
    const anywhere = new Lookups().withCheckpoint().withMigration('move', {}, evicted);
    expect((await find(anywhere, replicaSetPod().request.object))?.nodeRequirement).toEqual({ key: 'metadata.name', operator: 'NotIn', values: ['worker-a'] });
    const inPlace = new Lookups().withCheckpoint().withMigration('reboot', { restartInPlace: true }, { ...evicted, phase: 'WaitingForNode' });
    expect((await find(inPlace, replicaSetPod().request.object))?.nodeRequirement).toEqual({ key: 'metadata.name', operator: 'In', values: ['worker-a'] });
  });

  it.each([
    ['the Migration is still checkpointing', (l: Lookups) => l.withMigration('move', {}, { ...evicted, phase: 'Checkpointing' })],
    ['the Migration has finished', (l: Lookups) => l.withMigration('move', {}, { ...evicted, phase: 'Succeeded' })],
    ['the Migration failed', (l: Lookups) => l.withMigration('move', {}, { ...evicted, phase: 'Failed' })],
    ['the Migration moves a pod of another owner', (l: Lookups) => l.withMigration('move', {}, { ...evicted, sourceOwner: { ...evicted.sourceOwner!, uid: 'other' } })],
    ['the Migration found its replacement already', (l: Lookups) => l.withMigration('move', {}, { ...evicted, targetPodName: 'orders-api-7c9f8d6b5-abcde' })],
    ['the Migration records no checkpoint', (l: Lookups) => l.withMigration('move', {}, { ...evicted, checkpointName: undefined })],
    ['the checkpoint does not exist', (l: Lookups) => { l.checkpoints.clear(); l.withMigration('move', {}, evicted); }],
    ['the checkpoint has other container names (the template changed since)', (l: Lookups) => {
      const checkpoint = loadCheckpoint('succeeded-registry');
      checkpoint.status!.containers = checkpoint.status!.containers!.slice(0, 1);
      l.withCheckpoint(checkpoint).withMigration('move', {}, evicted);
    }],
  ])('leaves the pod alone when %s', async (_, arrange) => {
    const lookups = new Lookups().withCheckpoint();
    arrange(lookups);
    expect(await find(lookups, replicaSetPod().request.object)).toBeUndefined();
  });

  it('leaves alone a pod in another namespace, a pod whose owner is no ReplicaSet or StatefulSet, and a pod that owner does not control', async () => {
    const lookups = new Lookups().withCheckpoint().withMigration('move', {}, evicted);
    const pod = replicaSetPod().request.object;
    expect(await findMigrationReplacement(pod, 'billing', undefined, lookups, lookups)).toBeUndefined();
    const daemonSetPod = structuredClone(pod);
    daemonSetPod.metadata!.ownerReferences![0].kind = 'DaemonSet';
    expect(await find(lookups, daemonSetPod)).toBeUndefined();
    const notControlled = structuredClone(pod);
    notControlled.metadata!.ownerReferences![0].controller = false;
    expect(await find(lookups, notControlled)).toBeUndefined();
  });

  it('for a StatefulSet, takes only the pod of the migrated pod\'s name', async () => {
    const statefulSet = { kind: 'StatefulSet', name: 'orders-db', uid: 'sts-uid' };
    const lookups = new Lookups().withCheckpoint().withMigration('move-db', { podName: 'orders-db-1' }, { ...evicted, sourceOwner: statefulSet });
    const pod = replicaSetPod().request.object;
    pod.metadata!.ownerReferences = [{ apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'orders-db', uid: 'sts-uid', controller: true }];
    expect(await find(lookups, pod, 'orders-db-0')).toBeUndefined();
    expect((await find(lookups, pod, 'orders-db-1'))?.migration).toBe('move-db');
  });

  it('of several Migrations of one ReplicaSet, takes the one evicted and not yet matched, else the oldest about to be', async () => {
    const pod = replicaSetPod().request.object;
    const both = new Lookups().withCheckpoint()
      .withMigration('older-waiting', {}, { ...evicted, phase: 'StoppingSource' }, '2026-12-01T09:00:00Z')
      .withMigration('evicted', {}, evicted, '2026-12-01T10:00:00Z');
    expect((await find(both, pod))?.migration).toBe('evicted');
    const waiting = new Lookups().withCheckpoint()
      .withMigration('b-newer', {}, { ...evicted, phase: 'StoppingSource' }, '2026-12-01T10:00:00Z')
      .withMigration('a-older', {}, { ...evicted, phase: 'StoppingSource' }, '2026-12-01T09:00:00Z');
    expect((await find(waiting, pod))?.migration).toBe('a-older');
  });

  it('reads the API once for a checkpoint the cache does not show Succeeded', async () => {
    const lookups = new Lookups().withMigration('move', {}, evicted);
    const checkpoint = loadCheckpoint('succeeded-registry');
    lookups.get = (_namespace, _name, options = {}) => {
      if (options.fresh) lookups.freshReads++;
      return Promise.resolve(options.fresh ? checkpoint : { ...checkpoint, status: { phase: 'Running' } });
    };
    expect((await find(lookups, replicaSetPod().request.object))?.checkpointName).toBe(CHECKPOINT);
    expect(lookups.freshReads).toBe(1);
  });
});

describe('admitting the replacement of a migrated pod', () => {
  it('restores it from the Migration\'s checkpoint, on the target, as if annotated cryo.dev/restore-from', async () => {
    const lookups = new Lookups().withCheckpoint().withMigration('move', { targetNodeName: 'worker-b' }, evicted);
    const review = replicaSetPod();
    const answer = await handler(lookups)(review);
    expect(answer.response?.allowed).toBe(true);
    const pod = patched(review.request.object, answer.response?.patch);
    expect(pod.metadata!.annotations).toMatchObject({
      [annotations.RESTORE_FROM]: CHECKPOINT,
      [annotations.RESTORED_CHECKPOINT_UID]: loadCheckpoint('succeeded-registry').metadata!.uid,
      [annotations.RESTORED_CONTAINERS]: 'app,log-shipper',
    });
    expect(pod.spec!.containers.map((c) => c.image)).toEqual([
      `cryo-checkpoints/shop/orders-api-warm-app@sha256:${'a'.repeat(64)}`,
      `cryo-checkpoints/shop/orders-api-warm-log-shipper@sha256:${'b'.repeat(64)}`,
    ]);
    expect(pod.spec!.affinity).toEqual({
      nodeAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: {
          nodeSelectorTerms: [{
            matchFields: [{ key: 'metadata.name', operator: 'In', values: ['worker-b'] }],
            matchExpressions: [{ key: nodeLabels.RESTORE_RUNTIME, operator: 'In', values: ['containerd'] }],
          }],
        },
      },
    });
    expect(answer.response?.warnings?.[0]).toBe(
      'this pod of ReplicaSet/orders-api-7c9f8d6b5 replaces pod orders-api-7c9f8d6b5-x2vqz, which Migration move moves: it is restored from Checkpoint "orders-api-warm" on node worker-b',
    );
  });

  it('changes nothing when called again on its own result (reinvocation)', async () => {
    const lookups = new Lookups().withCheckpoint().withMigration('move', { targetNodeName: 'worker-b' }, evicted);
    const review = replicaSetPod();
    const first = await handler(lookups)(review);
    review.request.object = patched(review.request.object, first.response?.patch);
    const second = await handler(lookups)(review);
    expect(second.response).toEqual({ uid: review.request.uid, allowed: true });
  });

  it('restores from the Migration\'s checkpoint even when the template names another one', async () => {
    const lookups = new Lookups().withCheckpoint().withMigration('move', { targetNodeName: 'worker-b' }, evicted);
    const older = loadCheckpoint('succeeded-registry');
    older.metadata!.name = 'orders-api-last-week';
    lookups.withCheckpoint(older);
    const review = loadAdmissionReview('restore-deployment-pod');
    review.request.object.metadata!.annotations![annotations.RESTORE_FROM] = 'orders-api-last-week';
    const answer = await handler(lookups)(review);
    expect(patched(review.request.object, answer.response?.patch).metadata!.annotations![annotations.RESTORE_FROM]).toBe(CHECKPOINT);
    expect(answer.response?.warnings?.[0]).toContain('(instead of cryo.dev/restore-from: orders-api-last-week of its template)');
  });

  it('admits a replacement it cannot restore as it is, rather than block its owner', async () => {
    const unpinned = loadCheckpoint('succeeded-registry');
    unpinned.status!.containers![0].restoreReference = 'cryo-checkpoints/shop/orders-api-warm-app:latest';
    const lookups = new Lookups().withCheckpoint(unpinned).withMigration('move', { targetNodeName: 'worker-b' }, evicted);
    const review = replicaSetPod();
    const answer = await handler(lookups)(review);
    expect(answer.response).toEqual({ uid: review.request.uid, allowed: true });
  });

  it('lets every other pod of a ReplicaSet through untouched', async () => {
    const lookups = new Lookups().withCheckpoint().withMigration('move', {}, { ...evicted, phase: 'Checkpointing' });
    const review = replicaSetPod();
    expect((await handler(lookups)(review)).response).toEqual({ uid: review.request.uid, allowed: true });
  });
});
