import { describe, expect, it } from 'vitest';
import { applyPatch, type Operation } from 'rfc6902';
import type { V1Pod } from '@kubernetes/client-node';
import { annotations, HOOK_SOCKET_PATH, silentLogger, type Checkpoint } from '@cryo/common';
import { loadAdmissionReview, loadCheckpoint, type RecordedAdmissionReview } from '../../../test/src/fixtures/load-fixture.ts';
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

  it('a pod bound to another node than a node-local checkpoint: 422', async () => {
    const review = loadAdmissionReview('restore-deployment-pod');
    review.request.object.metadata!.annotations![annotations.RESTORE_FROM] = 'orders-api-local';
    review.request.object.spec!.nodeName = 'worker-b';
    const status = await refusal(review, loadCheckpoint('succeeded-local-directory'));
    expect(status.code).toBe(422);
    expect(status.message).toContain('stored on node "worker-a" only');
  });
});

describe('directory storage', () => {
  it('pins a pod restoring a node-local archive to the checkpoint node, inside every affinity term', async () => {
    const { handle, lookup } = setup({ pullSecret: 'cryo-checkpoint-pull' });
    lookup.add(loadCheckpoint('succeeded-local-directory'));
    const review = loadAdmissionReview('restore-deployment-pod');
    const pod = review.request.object;
    pod.metadata!.annotations![annotations.RESTORE_FROM] = 'orders-api-local';
    pod.spec!.affinity = {
      nodeAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: {
          nodeSelectorTerms: [
            { matchExpressions: [{ key: 'zone', operator: 'In', values: ['a'] }] },
            { matchExpressions: [{ key: 'zone', operator: 'In', values: ['b'] }] },
          ],
        },
      },
    };
    const response = await admit(handle, review);
    const result = patched(pod, response.patch);
    const terms = result.spec!.affinity!.nodeAffinity!.requiredDuringSchedulingIgnoredDuringExecution!.nodeSelectorTerms;
    expect(terms).toHaveLength(2);
    for (const term of terms) expect(term.matchFields).toEqual([{ key: 'metadata.name', operator: 'In', values: ['worker-a'] }]);
    expect(result.spec!.containers[0].image).toBe('/var/lib/cryo/checkpoints/shop/orders-api-local/app.tar');
    // Archives are files on the node: no pull secret is needed.
    expect(result.spec!.imagePullSecrets).toBeUndefined();
    review.request.object = result;
    expect((await admit(handle, review)).patch).toBeUndefined();
  });

  it('leaves scheduling alone for a shared directory', async () => {
    const { handle, lookup } = setup();
    lookup.add(loadCheckpoint('succeeded-shared-directory'));
    const review = loadAdmissionReview('restore-deployment-pod');
    review.request.object.metadata!.annotations![annotations.RESTORE_FROM] = 'orders-api-shared';
    const result = patched(review.request.object, (await admit(handle, review)).patch);
    expect(result.spec!.affinity).toBeUndefined();
    expect(result.spec!.containers[0].image).toBe('/mnt/cryo-shared/shop/orders-api-shared/app.tar');
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

  it('is turned on for a restore whose checkpoint had the socket mounted, with a warning', async () => {
    const { handle, lookup } = setup();
    lookup.add(loadCheckpoint('succeeded-with-hooks'));
    const review = loadAdmissionReview('restore-deployment-pod');
    review.request.object.metadata!.annotations![annotations.RESTORE_FROM] = 'orders-api-hooked';
    const response = await admit(handle, review);
    expect(response.allowed).toBe(true);
    expect(response.warnings).toEqual([expect.stringContaining('was taken with the hook socket mounted')]);
    const result = patched(review.request.object, response.patch);
    expect(result.metadata!.annotations![annotations.HOOKS_STATUS]).toBe('injected');
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

describe('other requests', () => {
  it('lets anything but a Pod CREATE through untouched', async () => {
    const { handle } = setup();
    const review = loadAdmissionReview('restore-deployment-pod');
    review.request.operation = 'UPDATE';
    expect(await admit(handle, review)).toEqual({ uid: review.request.uid, allowed: true });
  });
});
