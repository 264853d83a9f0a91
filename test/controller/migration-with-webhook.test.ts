/**
 * The controller and the webhook together, on the fake kube-apiserver: every pod created goes
 * through the webhook's real admission handler (its Checkpoint and Migration caches watching the
 * fake), as the kube-apiserver would send it. So what the controller records (status.sourceOwner,
 * checkpointName, the phase) is what the webhook matches a ReplicaSet's replacement by, and the
 * pod the controller re-creates is restored by the webhook's restore mutation.
 */
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { applyPatch, type Operation } from 'rfc6902';
import { CoreV1Api, type V1Pod } from '@kubernetes/client-node';
import { annotations, nodeLabels, silentLogger, type Migration } from '@cryo/common';
import { CheckpointCache, createAdmissionHandler, createWebhookMetrics, MigrationCache } from '@cryo/webhook';
import { readControllerConfig, startController, type RunningController } from '@cryo/controller';
import { ApiError, FakeKubeApiServer, MigrationWorld, testMigration, testNode, testPod, waitFor } from '@cryo/test';

const NS = 'shop';
const RS = { kind: 'ReplicaSet', name: 'web-7c9f8d6b5', uid: randomUUID() };

let api: FakeKubeApiServer;
let world: MigrationWorld;
let controller: RunningController;
let caches: { checkpoints: CheckpointCache; migrations: MigrationCache };

beforeEach(async () => {
  api = await FakeKubeApiServer.start();
  world = new MigrationWorld(api, NS);
  api.put(testNode('node-a'));
  api.put(testNode('node-b'));
  const kubeConfig = api.kubeConfig();
  const metrics = createWebhookMetrics();
  caches = { checkpoints: new CheckpointCache(kubeConfig, silentLogger(), metrics), migrations: new MigrationCache(kubeConfig, silentLogger()) };
  await Promise.all([caches.checkpoints.start(), caches.migrations.start()]);
  await Promise.all([caches.checkpoints.synced, caches.migrations.synced]);
  const handle = createAdmissionHandler({
    lookup: caches.checkpoints,
    migrations: caches.migrations,
    options: { hostHooksDir: '/var/run/cryo/hooks', pullSecret: '' },
    logger: silentLogger(),
    metrics,
  });
  // The kube-apiserver's side of the webhook: an AdmissionReview per pod created, the answer's patch applied.
  api.admission = async ({ resource, namespace, object }) => {
    if (resource.plural !== 'pods') return object;
    const review = {
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: { uid: randomUUID(), kind: { group: '', version: 'v1', kind: 'Pod' }, operation: 'CREATE', namespace, name: object.metadata?.name ?? '', object },
    };
    const { response } = await handle(review);
    if (!response!.allowed) throw new ApiError(response!.status!.code, `admission webhook "restore.cryo.dev" denied the request: ${response!.status!.message}`);
    const pod = structuredClone(object);
    if (response!.patch !== undefined) applyPatch(pod, JSON.parse(Buffer.from(response!.patch, 'base64').toString('utf8')) as Operation[]);
    return pod;
  };
  const config = readControllerConfig(['--port', '0', '--leader-election-retry-period', '100ms', '--leader-election-renew-deadline', '1s', '--leader-election-lease-duration', '2s'], {});
  controller = await startController(config, { kubeConfig, logger: silentLogger(), host: '127.0.0.1', timing: { pollIntervalMs: 50, freshReplacementGraceMs: 300 } });
  await waitFor(() => controller.isLeader, { what: 'the controller to lead' });
});

afterEach(async () => {
  await controller.stop();
  await Promise.all([caches.checkpoints.stop(), caches.migrations.stop()]);
  await api.stop();
});

async function phase(name: string, wanted: string): Promise<Migration> {
  return waitFor(() => (world.migration(name)?.status?.phase === wanted ? world.migration(name) : undefined), {
    what: `Migration ${name} ${wanted} (it is ${world.migration(name)?.status?.phase}: ${world.migration(name)?.status?.message})`,
  });
}

describe('a Migration with the real webhook', () => {
  it("restores a ReplicaSet's replacement from the Migration's checkpoint, on the target", async () => {
    const source = api.put(testPod(NS, 'web-7c9f8d6b5-x2vqz', 'node-a', { owner: RS })) as unknown as V1Pod;
    api.put(testMigration(NS, 'move', { podName: 'web-7c9f8d6b5-x2vqz', targetNodeName: 'node-b' }));
    const checkpointName = (await phase('move', 'Checkpointing')).status!.checkpointName!;
    const checkpoint = await world.finishCheckpoint(checkpointName, source);
    await phase('move', 'Restoring');
    // What the ReplicaSet controller creates: its template, nothing about Cryo in it.
    const template = testPod(NS, '', undefined, { owner: RS, phase: 'Pending' });
    delete template.status;
    const replacement = await api.kubeConfig().makeApiClient(CoreV1Api).createNamespacedPod({
      namespace: NS,
      body: { ...template, metadata: { ...template.metadata, name: undefined, generateName: 'web-7c9f8d6b5-' } },
    });
    expect(replacement.metadata!.annotations).toMatchObject({
      [annotations.RESTORE_FROM]: checkpointName,
      [annotations.RESTORED_CHECKPOINT_UID]: checkpoint.metadata!.uid,
      [annotations.RESTORED_CONTAINERS]: 'app',
    });
    expect(replacement.spec!.containers[0].image).toBe(checkpoint.status!.containers![0].restoreReference);
    expect(replacement.spec!.affinity!.nodeAffinity!.requiredDuringSchedulingIgnoredDuringExecution!.nodeSelectorTerms).toEqual([
      { matchFields: [{ key: 'metadata.name', operator: 'In', values: ['node-b'] }], matchExpressions: [{ key: nodeLabels.RESTORE_RUNTIME, operator: 'In', values: ['containerd'] }] },
    ]);
    await waitFor(() => world.migration('move')?.status?.targetPodName === replacement.metadata!.name, { what: 'the replacement recorded' });
    // Another pod the ReplicaSet creates now (a scale-up) is left alone: the Migration has its replacement.
    const sibling = await api.kubeConfig().makeApiClient(CoreV1Api).createNamespacedPod({
      namespace: NS,
      body: { ...template, metadata: { ...template.metadata, name: undefined, generateName: 'web-7c9f8d6b5-' } },
    });
    expect(sibling.metadata!.annotations?.[annotations.RESTORE_FROM]).toBeUndefined();
    await world.runReady(replacement.metadata!.name!, 'node-b');
    expect((await phase('move', 'Succeeded')).status).toMatchObject({ targetPodName: replacement.metadata!.name, targetNodeName: 'node-b' });
  });

  it('has the bare pod it re-creates restored by the webhook', async () => {
    const source = api.put(testPod(NS, 'web', 'node-a')) as unknown as V1Pod;
    api.put(testMigration(NS, 'move', { podName: 'web', targetNodeName: 'node-b' }));
    const checkpointName = (await phase('move', 'Checkpointing')).status!.checkpointName!;
    const checkpoint = await world.finishCheckpoint(checkpointName, source);
    await phase('move', 'Restoring');
    const recreated = await waitFor(() => world.pod('web'), { what: 'the pod re-created' });
    expect(recreated.metadata!.annotations?.[annotations.RESTORED_CHECKPOINT_UID]).toBe(checkpoint.metadata!.uid);
    expect(recreated.spec!.containers[0].image).toBe(checkpoint.status!.containers![0].restoreReference);
    await world.runReady('web', 'node-b');
    await phase('move', 'Succeeded');
  });

  it('fails the Migration, saying so, when the replacement came while the webhook was down (failurePolicy Ignore)', async () => {
    const source = api.put(testPod(NS, 'web-7c9f8d6b5-x2vqz', 'node-a', { owner: RS })) as unknown as V1Pod;
    api.put(testMigration(NS, 'move', { podName: 'web-7c9f8d6b5-x2vqz', targetNodeName: 'node-b' }));
    await world.finishCheckpoint((await phase('move', 'Checkpointing')).status!.checkpointName!, source);
    await phase('move', 'Restoring');
    api.admission = undefined;
    const template = testPod(NS, '', undefined, { owner: RS, phase: 'Pending' });
    delete template.status;
    await api.kubeConfig().makeApiClient(CoreV1Api).createNamespacedPod({ namespace: NS, body: { ...template, metadata: { ...template.metadata, name: undefined, generateName: 'web-7c9f8d6b5-' } } });
    const failed = await phase('move', 'Failed');
    expect(failed.status!.message).toMatch(/which started fresh, not from Checkpoint move-[0-9a-f]{5}: the webhook \(migrate\.cryo\.dev, failurePolicy Ignore/);
  });
});
