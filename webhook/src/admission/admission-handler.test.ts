import { describe, expect, it } from 'vitest';
import { applyPatch, type Operation } from 'rfc6902';
import type { V1Pod } from '@kubernetes/client-node';
import { annotations, HOOK_SOCKET_PATH, nodeLabels, silentLogger, type Checkpoint } from '@cryo/common';
import { loadAdmissionReview, loadCheckpoint, type RecordedAdmissionReview } from '@cryo/test';
import { createAdmissionHandler } from './admission-handler.ts';
import type { CheckpointLookup } from './pod-mutator.ts';
import { createWebhookMetrics } from '../webhook-metrics.ts';

/** Checkpoints as a cache and as the API see them; the API may know one the cache has not seen yet. */
class FixtureLookup implements CheckpointLookup {
  readonly cached = new Map<string, Checkpoint>();
  readonly api = new Map<string, Checkpoint>();
  freshReads = 0;
  lookups: string[] = [];
  add(checkpoint: Checkpoint, where: 'cache+api' | 'api' = 'cache+api') {
    const key = `${checkpoint.metadata!.namespace}/${checkpoint.metadata!.name}`;
    this.api.set(key, checkpoint);
    if (where === 'cache+api') this.cached.set(key, checkpoint);
    return this;
  }
  get(namespace: string, name: string, options: { fresh?: boolean } = {}) {
    this.lookups.push(`${namespace}/${name}`);
    if (options.fresh) this.freshReads++;
    return Promise.resolve((options.fresh ? this.api : this.cached).get(`${namespace}/${name}`));
  }
}

function setup(options: { pullSecret?: string } = {}) {
  const lookup = new FixtureLookup();
  const handle = createAdmissionHandler({
    lookup,
    options: { hostHooksDir: '/var/run/cryo/hooks', pullSecret: options.pullSecret ?? '' },
    logger: silentLogger(),
    metrics: createWebhookMetrics(),
  });
  return { lookup, handle };
}

/** Applies the returned patch with an independent RFC 6902 implementation. */
function patched(pod: V1Pod, patch: string | undefined): V1Pod {
  const result = structuredClone(pod);
  if (patch === undefined) return result;
  const ops = JSON.parse(Buffer.from(patch, 'base64').toString('utf8')) as Operation[];
  const errors = applyPatch(result, ops);
  expect(errors.filter((e) => e !== null)).toEqual([]);
  return result;
}

const registry = () => loadCheckpoint('succeeded-registry');
const APP_REF = `cryo-checkpoints/shop/orders-api-warm-app@sha256:${'a'.repeat(64)}`;
const SHIPPER_REF = `cryo-checkpoints/shop/orders-api-warm-log-shipper@sha256:${'b'.repeat(64)}`;

/** The node requirement of a restore from the registry fixture, whose containers containerd took. */
const ON_CONTAINERD_NODES = { key: nodeLabels.RESTORE_RUNTIME, operator: 'In', values: ['containerd'] };
/** A pod without node affinity restoring from it gets this one. */
const ONLY_CONTAINERD_NODES = { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [ON_CONTAINERD_NODES] }] } } };
const CONTAINERD_NODES_WARNING =
  'Checkpoint "orders-api-warm" restores only on nodes labelled cryo.dev/restore-runtime=containerd, whose runtime the node ' +
  'agent found able to restore it; while no node is so labelled, the pod stays Pending';

/** What a restored orders-api pod must look like: the input with only these changes. */
function expectedRestored(input: V1Pod, checkpoint: Checkpoint): V1Pod {
  const pod = structuredClone(input);
  pod.spec!.containers[0].image = APP_REF;
  pod.spec!.containers[1].image = SHIPPER_REF;
  pod.metadata!.annotations = {
    ...pod.metadata!.annotations,
    [annotations.ORIGINAL_IMAGES]: JSON.stringify({ app: 'shop/orders-api:2.4.1', 'log-shipper': 'shop/log-shipper:1.9.0' }),
    [annotations.RESTORED_CHECKPOINT_UID]: checkpoint.metadata!.uid!,
    [annotations.RESTORED_CONTAINERS]: 'app,log-shipper',
  };
  pod.spec!.affinity = ONLY_CONTAINERD_NODES;
  return pod;
}

/** Frozen, so a mutation that writes a part of the pod it shares with the copy throws. */
function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

async function admit(handle: ReturnType<typeof setup>['handle'], review: RecordedAdmissionReview) {
  const answer = await handle({ ...review, request: { ...review.request, object: deepFreeze(structuredClone(review.request.object)) } });
  expect(answer.apiVersion).toBe('admission.k8s.io/v1');
  expect(answer.kind).toBe('AdmissionReview');
  expect(answer.response!.uid).toBe(review.request.uid);
  return answer.response!;
}

describe('pods without a Cryo annotation', () => {
  it('come back allowed and unpatched, even without an annotations map', async () => {
    const { handle, lookup } = setup();
    const review = loadAdmissionReview('plain-pod');
    expect(review.request.object.metadata!.annotations).toBeUndefined();
    const response = await admit(handle, review);
    expect(response).toEqual({ uid: review.request.uid, allowed: true });
    expect(lookup.lookups).toEqual([]);
  });
});

describe('cryo.dev/restore-from', () => {
  it('points every checkpointed container of a Deployment pod at its checkpoint image', async () => {
    const { handle, lookup } = setup();
    lookup.add(registry());
    const review = loadAdmissionReview('restore-deployment-pod');
    // As the ReplicaSet controller creates it: generateName, no name, no namespace in the object.
    expect(review.request.object.metadata!.name).toBeUndefined();
    expect(review.request.object.metadata!.namespace).toBeUndefined();
    const response = await admit(handle, review);
    expect(response.allowed).toBe(true);
    expect(response.patchType).toBe('JSONPatch');
    expect(response.warnings).toEqual([CONTAINERD_NODES_WARNING]);
    const result = patched(review.request.object, response.patch);
    expect(result).toEqual(expectedRestored(review.request.object, registry()));
    // The init container runs from its own image: it is never checkpointed.
    expect(result.spec!.initContainers![0].image).toBe('shop/orders-migrate:2.4.1');
    expect(lookup.lookups).toEqual(['shop/orders-api-warm']);
  });

  it('changes nothing when called again on its own result (reinvocation)', async () => {
    const { handle, lookup } = setup();
    lookup.add(registry());
    const review = loadAdmissionReview('restore-deployment-pod');
    const first = await admit(handle, review);
    review.request.object = patched(review.request.object, first.patch);
    const second = await admit(handle, review);
    expect(second).toEqual({ uid: review.request.uid, allowed: true });
  });

  it('escapes annotation keys holding / and ~ in patch paths', async () => {
    const { handle, lookup } = setup();
    lookup.add(registry());
    const review = loadAdmissionReview('restore-deployment-pod');
    const response = await admit(handle, review);
    const ops = JSON.parse(Buffer.from(response.patch!, 'base64').toString()) as Operation[];
    expect(ops.map((op) => op.path)).toContain('/metadata/annotations/cryo.dev~1original-images');
    expect(patched(review.request.object, response.patch).metadata!.annotations!['team~platform/owner']).toBe('checkout');
  });

  it('takes the namespace from the request when the object has none', async () => {
    const { handle, lookup } = setup();
    lookup.add(registry());
    const review = loadAdmissionReview('restore-named-pod');
    expect(review.request.object.metadata!.namespace).toBeUndefined();
    const response = await admit(handle, review);
    expect(response.allowed).toBe(true);
    expect(lookup.lookups).toEqual(['shop/orders-api-warm']);
    const result = patched(review.request.object, response.patch);
    expect(result.spec!.containers.map((c) => c.image)).toEqual([APP_REF, SHIPPER_REF]);
  });

  it('restores only the containers the checkpoint holds', async () => {
    const { handle, lookup } = setup();
    const onlyApp = registry();
    onlyApp.status!.containers = onlyApp.status!.containers!.filter((c) => c.name === 'app');
    lookup.add(onlyApp);
    const review = loadAdmissionReview('restore-deployment-pod');
    const result = patched(review.request.object, (await admit(handle, review)).patch);
    expect(result.spec!.containers.map((c) => c.image)).toEqual([APP_REF, 'shop/log-shipper:1.9.0']);
    expect(result.metadata!.annotations![annotations.RESTORED_CONTAINERS]).toBe('app');
  });

  it('adds the configured pull secret for checkpoint images, once', async () => {
    const { handle, lookup } = setup({ pullSecret: 'cryo-checkpoint-pull' });
    lookup.add(registry());
    const review = loadAdmissionReview('restore-deployment-pod');
    const first = patched(review.request.object, (await admit(handle, review)).patch);
    expect(first.spec!.imagePullSecrets).toEqual([{ name: 'cryo-checkpoint-pull' }]);
    review.request.object = first;
    expect((await admit(handle, review)).patch).toBeUndefined();
  });

  it("adds the pull secret of the checkpoint's storage class instead of the configured one", async () => {
    const { handle, lookup } = setup({ pullSecret: 'cryo-checkpoint-pull' });
    const fromClass = registry();
    fromClass.status!.storage = { type: 'registry', className: 'team-registry', pullSecretName: 'team-registry-pull' };
    lookup.add(fromClass);
    const result = patched(loadAdmissionReview('restore-deployment-pod').request.object, (await admit(handle, loadAdmissionReview('restore-deployment-pod'))).patch);
    expect(result.spec!.imagePullSecrets).toEqual([{ name: 'team-registry-pull' }]);
  });

  it('answers a dry run exactly as a real one', async () => {
    const { handle, lookup } = setup();
    lookup.add(registry());
    const dry = await admit(handle, loadAdmissionReview('restore-dry-run-pod'));
    const real = await admit(handle, loadAdmissionReview('restore-deployment-pod'));
    expect(dry.patch).toBe(real.patch);
  });

  it('reads the API once before refusing a checkpoint the cache has not seen yet', async () => {
    const { handle, lookup } = setup();
    lookup.add(registry(), 'api');
    const response = await admit(handle, loadAdmissionReview('restore-deployment-pod'));
    expect(response.allowed).toBe(true);
    expect(lookup.freshReads).toBe(1);
  });

  it('reads the API again when the cache still shows the checkpoint running', async () => {
    const { handle, lookup } = setup();
    const stale = registry();
    stale.status = { phase: 'Running' };
    lookup.add(stale);
    lookup.api.set('shop/orders-api-warm', registry());
    expect((await admit(handle, loadAdmissionReview('restore-deployment-pod'))).allowed).toBe(true);
    expect(lookup.freshReads).toBe(1);
  });
});

describe('restores that would fail are refused with what to fix', () => {
  async function refusal(review: RecordedAdmissionReview, ...checkpoints: Checkpoint[]) {
    const { handle, lookup } = setup();
    for (const c of checkpoints) lookup.add(c);
    const response = await admit(handle, review);
    expect(response.allowed).toBe(false);
    expect(response.patch).toBeUndefined();
    return response.status!;
  }

  it('a checkpoint that does not exist: 404 naming it and its namespace', async () => {
    const status = await refusal(loadAdmissionReview('restore-deployment-pod'));
    expect(status.code).toBe(404);
    expect(status.message).toContain('Checkpoint "orders-api-warm" not found in namespace "shop"');
    expect(status.message).toContain('kubectl get checkpoints -n shop');
  });

  it('a checkpoint that has not Succeeded: 409 with its phase', async () => {
    const review = loadAdmissionReview('restore-deployment-pod');
    review.request.object.metadata!.annotations![annotations.RESTORE_FROM] = 'orders-api-running';
    const status = await refusal(review, loadCheckpoint('running'));
    expect(status.code).toBe(409);
    expect(status.message).toMatch(/is Running: checkpointing container app; only a Succeeded checkpoint/);
  });

  it('a checkpoint whose data retention removed: 410 checkpoint-expired, saying to take a new one', async () => {
    const review = loadAdmissionReview('restore-deployment-pod');
    const expired = registry();
    expired.status = { ...expired.status, phase: 'Expired', message: 'retention removed its data on 2026-12-03T10:00:00.000Z (keep at most 1 per container); take a new Checkpoint to restore from' };
    const status = await refusal(review, expired);
    expect(status).toMatchObject({ code: 410, reason: 'checkpoint-expired', message: expect.stringMatching(/is Expired: retention removed its data on .*its data is gone, so no pod can restore from it: take a new Checkpoint$/) });
  });

  it('no container name matches: 422 listing both sides', async () => {
    const review = loadAdmissionReview('restore-deployment-pod');
    review.request.object.spec!.containers[0].name = 'api';
    review.request.object.spec!.containers[1].name = 'shipper';
    const status = await refusal(review, registry());
    expect(status.code).toBe(422);
    expect(status.message).toContain("none of the pod's containers (api, shipper)");
    expect(status.message).toContain('(app, log-shipper)');
  });

  it('a mount the checkpoint recorded is missing: 422 naming the path', async () => {
    const review = loadAdmissionReview('restore-deployment-pod');
    review.request.object.spec!.containers[0].volumeMounts = review.request.object.spec!.containers[0].volumeMounts!.filter(
      (m) => m.mountPath !== '/etc/orders',
    );
    const status = await refusal(review, registry());
    expect(status.code).toBe(422);
    expect(status.message).toContain('container "app" lacks mounts that Checkpoint "orders-api-warm" recorded: /etc/orders');
  });

  it('an annotation that is not a Checkpoint name: 422', async () => {
    const review = loadAdmissionReview('restore-deployment-pod');
    review.request.object.metadata!.annotations![annotations.RESTORE_FROM] = 'Not_A/Name';
    expect((await refusal(review)).code).toBe(422);
  });

  it('an image reference not pinned by digest: 409', async () => {
    const checkpoint = registry();
    checkpoint.status!.containers![0].restoreReference = 'cryo-checkpoints/shop/orders-api-warm-app:latest';
    const status = await refusal(loadAdmissionReview('restore-deployment-pod'), checkpoint);
    expect(status.code).toBe(409);
    expect(status.message).toContain('not pinned by digest');
  });

  it('a directory checkpoint recorded as archives (by an agent serving no registry view): 409, the kubelet only starts images', async () => {
    const review = loadAdmissionReview('restore-deployment-pod');
    review.request.object.metadata!.annotations![annotations.RESTORE_FROM] = 'orders-api-local';
    const status = await refusal(review, loadCheckpoint('succeeded-local-directory'));
    expect(status).toMatchObject({ code: 409, reason: 'checkpoint-stored-as-archive' });
    expect(status.message).toBe(
      'Checkpoint "shop/orders-api-local" is stored as archives in a directory store ' +
        '(container "app": /var/lib/cryo/checkpoints/shop/orders-api-local/app.tar); the kubelet starts containers ' +
        'only from images and refuses a file path as image (InvalidImageName), so no pod can be restored from it. ' +
        'The node agent serves directory checkpoints as images when its --directory-registry-address is set (the ' +
        "default); this one was taken by an agent that served none (an older one, or one run with " +
        "--directory-registry-address=off). Take a new Checkpoint and restore from that one (or use a registry store: " +
        "spec.storage.registry.repository, or the node agent's --registry-repository)",
    );
  });

});

describe('restoring pods run only on nodes whose runtime restores their checkpoint', () => {
  it('a pod without node affinity gets one required term: the label with the runtime the Checkpoint records', async () => {
    const { handle, lookup } = setup();
    lookup.add(registry());
    const review = loadAdmissionReview('restore-named-pod');
    expect(review.request.object.spec!.affinity).toBeUndefined();
    const response = await admit(handle, review);
    expect(response.warnings).toEqual([CONTAINERD_NODES_WARNING]);
    const ops = JSON.parse(Buffer.from(response.patch!, 'base64').toString()) as Operation[];
    expect(ops).toContainEqual({ op: 'add', path: '/spec/affinity', value: ONLY_CONTAINERD_NODES });
    expect(patched(review.request.object, response.patch).spec!.affinity).toEqual(ONLY_CONTAINERD_NODES);
  });

  it('a pod with required terms gets the requirement ANDed into each of them; its other affinity stays as it was', async () => {
    const { handle, lookup } = setup();
    lookup.add(registry());
    const review = loadAdmissionReview('restore-pod-with-node-affinity');
    const input = review.request.object;
    const response = await admit(handle, review);
    expect(response.allowed).toBe(true);
    const result = patched(input, response.patch);
    const expected = structuredClone(input.spec!.affinity!);
    expected.nodeAffinity!.requiredDuringSchedulingIgnoredDuringExecution!.nodeSelectorTerms = [
      { matchExpressions: [{ key: 'topology.kubernetes.io/zone', operator: 'In', values: ['eu-west-1a', 'eu-west-1b'] }, ON_CONTAINERD_NODES] },
      { matchFields: [{ key: 'metadata.name', operator: 'In', values: ['worker-c'] }], matchExpressions: [ON_CONTAINERD_NODES] },
    ];
    // Preferred node affinity and pod anti-affinity included: only the required terms change.
    expect(result.spec!.affinity).toEqual(expected);
    expect(result.spec!.containers.map((c) => c.image)).toEqual([APP_REF, SHIPPER_REF]);
    expect(response.warnings).toEqual([CONTAINERD_NODES_WARNING]);
    // A reinvocation on its own result diffs to nothing and warns no more.
    review.request.object = result;
    expect(await admit(handle, review)).toEqual({ uid: review.request.uid, allowed: true });
  });

  it('requires the label to exist (any node that restores) when the Checkpoint does not record the runtime', async () => {
    const { handle, lookup } = setup();
    const older = registry();
    for (const container of older.status!.containers!) delete container.runtime;
    lookup.add(older);
    const review = loadAdmissionReview('restore-named-pod');
    const result = patched(review.request.object, (await admit(handle, review)).patch);
    expect(result.spec!.affinity).toEqual({
      nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: nodeLabels.RESTORE_RUNTIME, operator: 'Exists' }] }] } },
    });
  });

  it('replaces a requirement on the label that an earlier restore left in a copied pod spec', async () => {
    const { handle, lookup } = setup();
    lookup.add(registry());
    const review = loadAdmissionReview('restore-pod-with-node-affinity');
    const terms = review.request.object.spec!.affinity!.nodeAffinity!.requiredDuringSchedulingIgnoredDuringExecution!.nodeSelectorTerms;
    terms[0].matchExpressions!.unshift({ key: nodeLabels.RESTORE_RUNTIME, operator: 'In', values: ['cri-o'] });
    terms[1].matchExpressions = [ON_CONTAINERD_NODES];
    const result = patched(review.request.object, (await admit(handle, review)).patch);
    expect(result.spec!.affinity!.nodeAffinity!.requiredDuringSchedulingIgnoredDuringExecution!.nodeSelectorTerms).toEqual([
      { matchExpressions: [{ key: 'topology.kubernetes.io/zone', operator: 'In', values: ['eu-west-1a', 'eu-west-1b'] }, ON_CONTAINERD_NODES] },
      // Already as wanted: left as it was.
      { matchFields: [{ key: 'metadata.name', operator: 'In', values: ['worker-c'] }], matchExpressions: [ON_CONTAINERD_NODES] },
    ]);
  });

  it('adds nothing to an empty term, which matches no node and must go on matching none', async () => {
    const { handle, lookup } = setup();
    lookup.add(registry());
    const review = loadAdmissionReview('restore-pod-with-node-affinity');
    review.request.object.spec!.affinity!.nodeAffinity!.requiredDuringSchedulingIgnoredDuringExecution!.nodeSelectorTerms.push({});
    const result = patched(review.request.object, (await admit(handle, review)).patch);
    expect(result.spec!.affinity!.nodeAffinity!.requiredDuringSchedulingIgnoredDuringExecution!.nodeSelectorTerms.at(-1)).toEqual({});
  });
});

describe('directory storage recorded as archives (older agents): the kubelet starts images only, so they are never admitted', () => {
  it('refuses a shared directory checkpoint too, and a pod bound to the checkpoint node: no pod spec makes a path an image', async () => {
    const { handle, lookup } = setup({ pullSecret: 'cryo-checkpoint-pull' });
    lookup.add(loadCheckpoint('succeeded-shared-directory')).add(loadCheckpoint('succeeded-local-directory'));
    for (const [name, nodeName] of [['orders-api-shared', undefined], ['orders-api-local', 'worker-a']] as const) {
      const review = loadAdmissionReview('restore-deployment-pod');
      review.request.object.metadata!.annotations![annotations.RESTORE_FROM] = name;
      if (nodeName !== undefined) review.request.object.spec!.nodeName = nodeName;
      const response = await admit(handle, review);
      expect(response.allowed, name).toBe(false);
      expect(response.patch, name).toBeUndefined();
      expect(response.status, name).toMatchObject({ code: 409, message: expect.stringContaining(`Checkpoint "shop/${name}" is stored as archives in a directory store`) });
      expect(response.status!.message, name).toContain('spec.storage.registry.repository');
    }
  });

  it('reads the API before refusing: a Checkpoint re-created into a registry store is admitted', async () => {
    const { handle, lookup } = setup();
    lookup.add(loadCheckpoint('succeeded-local-directory'));
    const recreated = registry();
    recreated.metadata!.name = 'orders-api-local';
    lookup.api.set('shop/orders-api-local', recreated);
    const review = loadAdmissionReview('restore-deployment-pod');
    review.request.object.metadata!.annotations![annotations.RESTORE_FROM] = 'orders-api-local';
    const response = await admit(handle, review);
    expect(response.allowed).toBe(true);
    expect(lookup.freshReads).toBe(1);
    const result = patched(review.request.object, response.patch);
    expect(result.spec!.containers.map((c) => c.image)).toEqual([APP_REF, SHIPPER_REF]);
    // No pinning to the node it was taken on: an image restores on any node whose runtime restores it.
    expect(result.spec!.affinity).toEqual(ONLY_CONTAINERD_NODES);
  });
});

describe('directory storage served as images by the node agent (--directory-registry-address)', () => {
  /** A directory-store fixture as an agent serving its directory on the node's loopback records it. */
  function directoryImages(fixture: 'succeeded-local-directory' | 'succeeded-shared-directory'): Checkpoint {
    const checkpoint = loadCheckpoint(fixture);
    checkpoint.status!.containers!.forEach((container, i) => {
      container.referenceType = 'image';
      container.restoreReference = `127.0.0.1:5051/cryo-directory/shop/${checkpoint.spec.podName}/${container.name}@sha256:${'cd'[i].repeat(64)}`;
      container.runtime = 'containerd';
    });
    return checkpoint;
  }
  const local = () => directoryImages('succeeded-local-directory');
  const shared = () => directoryImages('succeeded-shared-directory');
  const ON_WORKER_A = { key: 'metadata.name', operator: 'In', values: ['worker-a'] };
  const WORKER_A_WARNING =
    'Checkpoint "orders-api-local" is in the directory store of node "worker-a", whose node agent alone serves its images, ' +
    'so the pod can run only on node "worker-a"; while it cannot be scheduled there, it stays Pending. A directory every ' +
    'node mounts (NFS, CephFS...) declared shared (spec.storage.directory.shared: true, or the node agent\'s ' +
    '--directory-shared) lets restores run on any node';

  function restoring(checkpointName: string, pod = 'restore-deployment-pod') {
    const review = loadAdmissionReview(pod);
    review.request.object.metadata!.annotations![annotations.RESTORE_FROM] = checkpointName;
    return review;
  }

  it('pins a pod restoring from a node-local directory to that node, besides the runtime label, without the pull secret', async () => {
    const { handle, lookup } = setup({ pullSecret: 'cryo-checkpoint-pull' });
    const checkpoint = local();
    lookup.add(checkpoint);
    const review = restoring('orders-api-local');
    const response = await admit(handle, review);
    expect(response.allowed).toBe(true);
    expect(response.warnings).toEqual([expect.stringContaining('restores only on nodes labelled cryo.dev/restore-runtime=containerd'), WORKER_A_WARNING]);
    const result = patched(review.request.object, response.patch);
    expect(result.spec!.containers.map((c) => c.image)).toEqual(checkpoint.status!.containers!.map((c) => c.restoreReference));
    expect(result.spec!.affinity).toEqual({
      nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [ON_CONTAINERD_NODES], matchFields: [ON_WORKER_A] }] } },
    });
    // The images come from the node's own loopback view: the registry's secret means nothing there.
    expect(result.spec!.imagePullSecrets).toBeUndefined();
    review.request.object = result;
    expect(await admit(handle, review)).toEqual({ uid: review.request.uid, allowed: true });
  });

  it('ANDs the pin into each of the pod\'s required terms, replacing a metadata.name requirement; a reinvocation changes nothing', async () => {
    const { handle, lookup } = setup();
    lookup.add(local());
    const review = restoring('orders-api-local', 'restore-pod-with-node-affinity');
    const input = review.request.object;
    const response = await admit(handle, review);
    expect(response.allowed).toBe(true);
    expect(response.warnings).toEqual([expect.stringContaining('restores only on nodes labelled'), WORKER_A_WARNING]);
    const result = patched(input, response.patch);
    const expected = structuredClone(input.spec!.affinity!);
    expected.nodeAffinity!.requiredDuringSchedulingIgnoredDuringExecution!.nodeSelectorTerms = [
      {
        matchExpressions: [{ key: 'topology.kubernetes.io/zone', operator: 'In', values: ['eu-west-1a', 'eu-west-1b'] }, ON_CONTAINERD_NODES],
        matchFields: [ON_WORKER_A],
      },
      // worker-c cannot serve the checkpoint: the node holding it replaces it.
      { matchFields: [ON_WORKER_A], matchExpressions: [ON_CONTAINERD_NODES] },
    ];
    expect(result.spec!.affinity).toEqual(expected);
    review.request.object = result;
    expect(await admit(handle, review)).toEqual({ uid: review.request.uid, allowed: true });
  });

  it('does not pin a pod restoring from a shared directory: every node serves it', async () => {
    const { handle, lookup } = setup({ pullSecret: 'cryo-checkpoint-pull' });
    const checkpoint = shared();
    // Nor does it need the node that took it.
    delete checkpoint.status!.nodeName;
    lookup.add(checkpoint);
    const review = restoring('orders-api-shared');
    const response = await admit(handle, review);
    expect(response.allowed).toBe(true);
    expect(response.warnings).toEqual([expect.stringContaining('restores only on nodes labelled cryo.dev/restore-runtime=containerd')]);
    const result = patched(review.request.object, response.patch);
    expect(result.spec!.affinity).toEqual(ONLY_CONTAINERD_NODES);
    expect(result.spec!.imagePullSecrets).toBeUndefined();
  });

  it('adds the pull secret for a registry checkpoint only', async () => {
    const { handle, lookup } = setup({ pullSecret: 'cryo-checkpoint-pull' });
    lookup.add(registry()).add(local());
    const secrets = async (checkpointName: string) => {
      const review = restoring(checkpointName);
      return patched(review.request.object, (await admit(handle, review)).patch).spec!.imagePullSecrets;
    };
    expect(await secrets('orders-api-warm')).toEqual([{ name: 'cryo-checkpoint-pull' }]);
    expect(await secrets('orders-api-local')).toBeUndefined();
  });

  it('refuses a node-local directory checkpoint whose status names no node: 409 checkpoint-node-unknown', async () => {
    const { handle, lookup } = setup();
    const checkpoint = local();
    delete checkpoint.status!.nodeName;
    lookup.add(checkpoint);
    const response = await admit(handle, restoring('orders-api-local'));
    expect(response.allowed).toBe(false);
    expect(response.patch).toBeUndefined();
    expect(response.status).toMatchObject({ code: 409, reason: 'checkpoint-node-unknown' });
    expect(response.status!.message).toBe(
      'Checkpoint "shop/orders-api-local" is in a node\'s own directory store, and only that node can serve it, but its ' +
        'status does not record the node (status.nodeName), so no pod can be placed there; take a new checkpoint',
    );
    // Read once more from the API before refusing, as for every other checkpoint problem.
    expect(lookup.freshReads).toBe(1);
  });
});

describe('cryo.dev/hooks: enabled', () => {
  it('mounts only this pod’s socket directory into each app container', async () => {
    const { handle } = setup();
    const review = loadAdmissionReview('hooks-only-pod');
    const input = review.request.object;
    const response = await admit(handle, review);
    const result = patched(input, response.patch);
    expect(result.spec!.volumes).toContainEqual({
      name: 'cryo-hooks',
      hostPath: { path: '/var/run/cryo/hooks', type: 'DirectoryOrCreate' },
    });
    const [worker] = result.spec!.containers;
    expect(worker.volumeMounts).toContainEqual({ name: 'cryo-hooks', mountPath: '/run/cryo', subPathExpr: '$(CRYO_POD_UID)' });
    expect(worker.env!.slice(0, 3)).toEqual([
      { name: 'CRYO_POD_UID', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.uid' } } },
      { name: 'CRYO_HOOK_SOCKET', value: HOOK_SOCKET_PATH },
      // The SDK says which container it runs in, so a checkpoint of one container asks only its processes.
      { name: 'CRYO_CONTAINER_NAME', value: worker.name },
    ]);
    expect(worker.env!.slice(3)).toEqual(input.spec!.containers[0].env);
    expect(result.metadata!.annotations![annotations.HOOKS_STATUS]).toBe('injected');
    review.request.object = result;
    expect(await admit(handle, review)).toEqual({ uid: review.request.uid, allowed: true });
  });

  it('drops a CRYO_POD_UID the pod sets itself, which could point at another pod’s socket', async () => {
    const { handle } = setup();
    const review = loadAdmissionReview('hooks-only-pod');
    review.request.object.spec!.containers[0].env!.push({ name: 'CRYO_POD_UID', value: 'someone-elses-uid' });
    const result = patched(review.request.object, (await admit(handle, review)).patch);
    const uidVars = result.spec!.containers[0].env!.filter((e) => e.name === 'CRYO_POD_UID');
    expect(uidVars).toEqual([{ name: 'CRYO_POD_UID', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.uid' } } }]);
  });

  it('does not touch init containers', async () => {
    const { handle, lookup } = setup();
    lookup.add(registry());
    const review = loadAdmissionReview('restore-with-hooks-pod');
    const result = patched(review.request.object, (await admit(handle, review)).patch);
    expect(result.spec!.initContainers).toEqual(review.request.object.spec!.initContainers);
    expect(result.spec!.containers.every((c) => c.volumeMounts!.some((m) => m.name === 'cryo-hooks'))).toBe(true);
    expect(result.spec!.containers.map((c) => c.image)).toEqual([APP_REF, SHIPPER_REF]);
  });

  it('is turned on, annotation included, for a copy restored from a checkpoint that had the socket mounted', async () => {
    const { handle, lookup } = setup();
    lookup.add(loadCheckpoint('succeeded-with-hooks'));
    // A copy of a hook-enabled pod, asking only for the restore (as found on a real node).
    const review = loadAdmissionReview('restore-hooked-copy-pod');
    const input = review.request.object;
    expect(input.metadata!.annotations).toEqual({ [annotations.RESTORE_FROM]: 'orders-api-hooked' });
    const response = await admit(handle, review);
    expect(response.allowed).toBe(true);
    expect(response.warnings).toEqual([
      'Checkpoint "orders-api-hooked" was taken with the hook socket mounted: the restored pod gets it too and is ' +
        'annotated cryo.dev/hooks: enabled, so the node agent serves it and tells the restored processes they were restored',
      // This Checkpoint's status predates recording the runtime: any node that restores will do.
      'Checkpoint "orders-api-hooked" restores only on nodes labelled cryo.dev/restore-runtime (its status does not record ' +
        'the runtime that took it); while no node is so labelled, the pod stays Pending',
    ]);
    const result = patched(input, response.patch);
    // The node agent serves a socket for exactly the pods annotated cryo.dev/hooks: enabled.
    expect(result.metadata!.annotations).toEqual({
      [annotations.RESTORE_FROM]: 'orders-api-hooked',
      [annotations.HOOKS]: annotations.HOOKS_ENABLED,
      [annotations.HOOKS_STATUS]: annotations.HOOKS_STATUS_INJECTED,
      [annotations.ORIGINAL_IMAGES]: JSON.stringify({ app: 'shop/orders-api:2.4.1', 'log-shipper': 'shop/log-shipper:1.9.0' }),
      [annotations.RESTORED_CHECKPOINT_UID]: 'f7b4d0e5-6c8a-4b9d-8e1f-3a4b5c6d7e8f',
      [annotations.RESTORED_CONTAINERS]: 'app,log-shipper',
    });
    expect(result.spec!.volumes).toContainEqual({ name: 'cryo-hooks', hostPath: { path: '/var/run/cryo/hooks', type: 'DirectoryOrCreate' } });
    for (const container of result.spec!.containers) {
      expect(container.volumeMounts, container.name).toContainEqual({ name: 'cryo-hooks', mountPath: '/run/cryo', subPathExpr: '$(CRYO_POD_UID)' });
      expect(container.env!.slice(0, 3).map((e) => e.name), container.name).toEqual(['CRYO_POD_UID', 'CRYO_HOOK_SOCKET', 'CRYO_CONTAINER_NAME']);
    }
    expect(result.spec!.containers.map((c) => c.image)).toEqual([APP_REF, SHIPPER_REF]);
    // The restore and the hook socket compose: a reinvocation changes nothing and warns no more.
    review.request.object = result;
    expect(await admit(handle, review)).toEqual({ uid: review.request.uid, allowed: true });
  });

  it('replaces cryo.dev/hooks: disabled on such a copy, and says so', async () => {
    const { handle, lookup } = setup();
    lookup.add(loadCheckpoint('succeeded-with-hooks'));
    const review = loadAdmissionReview('restore-hooked-copy-pod');
    review.request.object.metadata!.annotations![annotations.HOOKS] = 'disabled';
    const response = await admit(handle, review);
    expect(response.warnings).toEqual([expect.stringContaining('(replacing cryo.dev/hooks: disabled)'), expect.stringContaining('restores only on nodes labelled')]);
    const result = patched(review.request.object, response.patch);
    expect(result.metadata!.annotations![annotations.HOOKS]).toBe(annotations.HOOKS_ENABLED);
    review.request.object = result;
    expect(await admit(handle, review)).toEqual({ uid: review.request.uid, allowed: true });
  });

  it('stays off for a copy restored from a checkpoint taken without the socket', async () => {
    const { handle, lookup } = setup();
    const plain = registry();
    plain.metadata!.name = 'orders-api-hooked';
    lookup.add(plain);
    const review = loadAdmissionReview('restore-hooked-copy-pod');
    const response = await admit(handle, review);
    expect(response.allowed).toBe(true);
    expect(response.warnings).toEqual([expect.stringMatching(/^Checkpoint "orders-api-hooked" restores only on nodes labelled cryo.dev\/restore-runtime=containerd/)]);
    const result = patched(review.request.object, response.patch);
    expect(result.metadata!.annotations![annotations.HOOKS]).toBeUndefined();
    expect(result.metadata!.annotations![annotations.HOOKS_STATUS]).toBeUndefined();
    expect(result.spec!.volumes!.map((v) => v.name)).not.toContain('cryo-hooks');
    for (const container of result.spec!.containers) {
      expect(container.volumeMounts!.map((m) => m.name)).not.toContain('cryo-hooks');
      expect((container.env ?? []).map((e) => e.name)).not.toContain('CRYO_HOOK_SOCKET');
    }
  });

  it('refuses a value other than enabled or disabled', async () => {
    const { handle } = setup();
    const review = loadAdmissionReview('hooks-only-pod');
    review.request.object.metadata!.annotations![annotations.HOOKS] = 'yes';
    const response = await admit(handle, review);
    expect(response.allowed).toBe(false);
    expect(response.status).toMatchObject({ code: 422, message: expect.stringContaining('must be "enabled" or "disabled"') });
  });

  it('refuses a pod that uses the reserved volume name for something else', async () => {
    const { handle } = setup();
    const review = loadAdmissionReview('hooks-only-pod');
    review.request.object.spec!.volumes!.push({ name: 'cryo-hooks', emptyDir: {} });
    const response = await admit(handle, review);
    expect(response.status).toMatchObject({ code: 422, message: expect.stringContaining('reserved') });
  });
});

describe('the hook socket only where it belongs (hook-socket-guard.ts)', () => {
  const OTHER_POD_UID = '3d1c2b4a-5e6f-4a7b-8c9d-0e1f2a3b4c5d';

  it('refuses a pod whose host path covers the hook directory, naming the volume, the container and the fix', async () => {
    const { handle } = setup();
    const review = loadAdmissionReview('hooks-only-pod');
    review.request.object.spec!.volumes!.push({ name: 'host-run', hostPath: { path: '/var/run/' } });
    review.request.object.spec!.containers[0].volumeMounts!.push({ name: 'host-run', mountPath: '/host/run', readOnly: true });
    const response = await admit(handle, review);
    expect(response.allowed).toBe(false);
    expect(response.status).toEqual({
      code: 422,
      reason: 'hook-dir-host-path',
      message: expect.stringMatching(/^volume "host-run" \(hostPath \/var\/run\/, mounted by container "worker"\) reaches Cryo's hook directory \/var\/run\/cryo\/hooks \(also \/run\/cryo\/hooks\)/),
    });
  });

  it("refuses a container mounting another pod's directory of the hook volume", async () => {
    const { handle } = setup();
    const review = loadAdmissionReview('hooks-only-pod');
    review.request.object.spec!.containers[0].volumeMounts!.push({ name: 'cryo-hooks', mountPath: '/run/cryo', subPath: OTHER_POD_UID });
    const response = await admit(handle, review);
    expect(response.status).toMatchObject({ code: 422, reason: 'hook-mount-altered', message: expect.stringContaining(`with subPath "${OTHER_POD_UID}"`) });
  });

  it('refuses an init container mounting the hook volume', async () => {
    const { handle, lookup } = setup();
    lookup.add(registry());
    const review = loadAdmissionReview('restore-with-hooks-pod');
    review.request.object.spec!.initContainers![0].volumeMounts!.push({ name: 'cryo-hooks', mountPath: '/run/cryo', subPathExpr: '$(CRYO_POD_UID)' });
    const response = await admit(handle, review);
    expect(response.status).toMatchObject({ code: 422, reason: 'hook-mount-in-init-container', message: expect.stringContaining('init container "migrate"') });
  });

  it('allows, unpatched, an UPDATE of pods/ephemeralcontainers adding a debug container without mounts', async () => {
    const { handle } = setup();
    const review = loadAdmissionReview('hooks-only-pod');
    const created = patched(review.request.object, (await admit(handle, review)).patch);
    const debugged = structuredClone(created);
    debugged.spec!.ephemeralContainers = [{ name: 'debugger-7x2k', image: 'busybox:1.37', stdin: true, tty: true, targetContainerName: 'worker' }];
    const update = { ...review, request: { ...review.request, operation: 'UPDATE', subResource: 'ephemeralcontainers', object: debugged, oldObject: created } };
    expect(await admit(handle, update)).toEqual({ uid: review.request.uid, allowed: true });
  });

  it('refuses an UPDATE of pods/ephemeralcontainers adding a container that mounts the hook volume: 422 hook-mount-in-ephemeral-container', async () => {
    const { handle } = setup();
    const review = loadAdmissionReview('hooks-only-pod');
    const created = patched(review.request.object, (await admit(handle, review)).patch);
    const debugged = structuredClone(created);
    // The whole hooks directory: ephemeral containers take no subPath, so every pod's socket.
    debugged.spec!.ephemeralContainers = [{ name: 'debugger-7x2k', image: 'busybox:1.37', targetContainerName: 'worker', volumeMounts: [{ name: 'cryo-hooks', mountPath: '/hooks' }] }];
    const update = { ...review, request: { ...review.request, operation: 'UPDATE', subResource: 'ephemeralcontainers', object: debugged, oldObject: created } };
    const response = await admit(handle, update);
    expect(response).toMatchObject({ uid: review.request.uid, allowed: false, status: { code: 422, reason: 'hook-mount-in-ephemeral-container', message: expect.stringContaining('"debugger-7x2k"') } });
  });

  it('refuses a malformed old pod on an UPDATE of pods/ephemeralcontainers (422, naming the field), never a 500', async () => {
    const { handle } = setup();
    const review = loadAdmissionReview('hooks-only-pod');
    const update = { ...review, request: { ...review.request, operation: 'UPDATE', subResource: 'ephemeralcontainers', object: review.request.object, oldObject: { metadata: { name: 'x' }, spec: { containers: null } } } };
    const response = await admit(handle, update);
    expect(response).toMatchObject({ allowed: false, status: { code: 422, reason: 'malformed-pod', message: expect.stringContaining('spec.containers') } });
  });
});

describe('other requests', () => {
  it('lets anything but a Pod CREATE through untouched', async () => {
    const { handle } = setup();
    const review = loadAdmissionReview('restore-deployment-pod');
    review.request.operation = 'UPDATE';
    expect(await admit(handle, review)).toEqual({ uid: review.request.uid, allowed: true });
  });
});
