import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { annotations, silentLogger } from '@cryo/common';
import { FIXTURES_DIR, loadAdmissionReview } from '@cryo/test';
import { createAdmissionHandler } from './admission-handler.ts';
import { MAX_POD_DEPTH, podShapeProblem } from './pod-shape.ts';
import { createWebhookMetrics } from '../webhook-metrics.ts';

type Json = Record<string, unknown>;
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the tests write anything anywhere
type Any = any;

const reviews = readdirSync(`${FIXTURES_DIR}admission-reviews`).map((file) => file.replace(/\.json$/, ''));

/** The restore fixture's pod (two containers, an init container, volumes, node affinity), as JSON. */
const restoringPod = (): Any => loadAdmissionReview('restore-pod-with-node-affinity').request.object;

function problem(pod: Json): { code: number; reason: string; message: string } | undefined {
  const denial = podShapeProblem(pod);
  return denial && { code: denial.code, reason: denial.reason, message: denial.message };
}

/** A value nested `depth` arrays deep (built iteratively: the test must not recurse either). */
function nested(depth: number): unknown {
  let value: unknown = 'bottom';
  for (let i = 0; i < depth; i++) value = [value];
  return value;
}

describe('podShapeProblem', () => {
  it.each(reviews)('accepts the recorded pod %s', (name) => {
    expect(problem(loadAdmissionReview(name).request.object as unknown as Json)).toBeUndefined();
  });

  it.each<[string, (pod: Any) => void, string]>([
    ['no containers (the typed Pod encodes them as null)', (p) => (p.spec.containers = null), 'spec.containers: expected a non-empty array, got null'],
    ['an empty container list', (p) => (p.spec.containers = []), 'spec.containers: expected a non-empty array, got an empty one'],
    ['more containers than anyone runs', (p) => (p.spec.initContainers = Array.from({ length: 1001 }, (_, i) => ({ name: `c${i}`, image: 'busybox' }))), 'spec.initContainers: 1001 containers, more than the 1000 the webhook takes in one list'],
    ['a container that is a string', (p) => (p.spec.containers[1] = 'log-shipper'), 'spec.containers[1]: expected an object, got a string'],
    ['volumeMounts null', (p) => (p.spec.containers[1].volumeMounts = null), 'spec.containers[1].volumeMounts: expected an array, got null'],
    ['a volumeMount without its path', (p) => delete p.spec.containers[0].volumeMounts[2].mountPath, 'spec.containers[0].volumeMounts[2].mountPath: expected a string, got nothing'],
    ['a mount path longer than PATH_MAX', (p) => (p.spec.containers[0].volumeMounts[0].mountPath = `/${'a'.repeat(5000)}`), 'spec.containers[0].volumeMounts[0].mountPath: longer than 4096 characters (PATH_MAX)'],
    ['a mount path with a run of slashes', (p) => (p.spec.containers[0].volumeMounts[0].mountPath = `${'/'.repeat(4000)}x`), 'spec.containers[0].volumeMounts[0].mountPath: has more than 8 slashes in a row'],
    ['a subPath that is a number', (p) => (p.spec.containers[0].volumeMounts[0].subPath = 1), 'spec.containers[0].volumeMounts[0].subPath: expected a string, got a number'],
    ['a container name that is a number', (p) => (p.spec.containers[0].name = 1), 'spec.containers[0].name: expected a string, got a number'],
    ['a container name with a comma', (p) => (p.spec.containers[0].name = 'app,log-shipper'), 'spec.containers[0].name: "app,log-shipper" is not a container name (at most 63 lowercase letters, digits and \'-\')'],
    ['an image that is an object', (p) => (p.spec.containers[0].image = { name: 'x' }), 'spec.containers[0].image: expected a string, got an object'],
    ['an init container env entry that is null', (p) => (p.spec.initContainers[0].env[1] = null), 'spec.initContainers[0].env[1]: expected an object, got null'],
    ['an env valueFrom that is a string', (p) => (p.spec.containers[0].env[1].valueFrom = 'metadata.uid'), 'spec.containers[0].env[1].valueFrom: expected an object, got a string'],
    ['ephemeralContainers an object', (p) => (p.spec.ephemeralContainers = {}), 'spec.ephemeralContainers: expected an array, got an object'],
    ['a hostPath volume of null', (p) => (p.spec.volumes[0] = { name: 'host', hostPath: null }), 'spec.volumes[0].hostPath: expected an object, got null'],
    ['a hostPath path that is a number', (p) => (p.spec.volumes[0] = { name: 'host', hostPath: { path: 1 } }), 'spec.volumes[0].hostPath.path: expected a string, got a number'],
    ['a volume without a name', (p) => delete p.spec.volumes[1].name, 'spec.volumes[1].name: expected a string, got nothing'],
    ['imagePullSecrets of strings', (p) => (p.spec.imagePullSecrets = ['regcred']), 'spec.imagePullSecrets[0]: expected an object, got a string'],
    ['affinity a string', (p) => (p.spec.affinity = 'zone-a'), 'spec.affinity: expected an object, got a string'],
    ['nodeSelectorTerms null', (p) => (p.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms = null), 'spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms: expected an array, got null'],
    ['matchFields a string', (p) => (p.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[1].matchFields = 'x'), 'spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[1].matchFields: expected an array, got a string'],
    ['a requirement value that is a number', (p) => (p.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].values[1] = 3), 'spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].values[1]: expected a string, got a number'],
    ['no spec', (p) => delete p.spec, 'spec: expected an object, got nothing'],
    ['metadata null', (p) => (p.metadata = null), 'metadata: expected an object, got null'],
    ['an annotation that is a number', (p) => (p.metadata.annotations[annotations.HOOKS] = 1), 'metadata.annotations["cryo.dev/hooks"]: expected a string, got a number'],
    ['a label that is a boolean', (p) => (p.metadata.labels = { app: true }), 'metadata.labels["app"]: expected a string, got a boolean'],
    ['annotations over 256 KiB', (p) => (p.metadata.annotations.big = 'x'.repeat(300_000)), 'metadata.annotations: 300039 bytes, more than the 262144 the apiserver allows'],
    ['a namespace that is not a name', (p) => (p.metadata.namespace = 'Shop_1'), 'metadata.namespace: "Shop_1" is not a namespace name'],
    ['an original-images record holding arrays', (p) => (p.metadata.annotations[annotations.ORIGINAL_IMAGES] = '{"app":[[[]]]}'), 'metadata.annotations["cryo.dev/original-images"]: the webhook\'s record maps container names to image strings, but "app" maps to an array; remove the annotation'],
  ])('refuses %s with 422, naming the field', (_what, spoil, message) => {
    const pod = restoringPod();
    spoil(pod);
    expect(problem(pod)).toEqual({ code: 422, reason: 'malformed-pod', message });
  });

  it('takes an original-images record that is not JSON at all: the webhook starts it over', () => {
    const pod = restoringPod();
    pod.metadata.annotations[annotations.ORIGINAL_IMAGES] = 'not json';
    expect(problem(pod)).toBeUndefined();
  });

  it(`accepts nesting down to ${MAX_POD_DEPTH} levels anywhere and refuses deeper, without recursing`, () => {
    // spec (1) → overhead (2) → deep (3): the arrays start at level 3.
    const atLimit = restoringPod();
    atLimit.spec.overhead = { deep: nested(MAX_POD_DEPTH - 2) };
    expect(problem(atLimit)).toBeUndefined();
    const over = restoringPod();
    over.spec.overhead = { deep: nested(MAX_POD_DEPTH - 1) };
    expect(problem(over)?.message).toBe(`spec.overhead.deep${'[0]'.repeat(MAX_POD_DEPTH - 2)}: nested deeper than ${MAX_POD_DEPTH} levels`);
    const far = restoringPod();
    far.spec.affinity.podAntiAffinity = nested(1_000_000);
    expect(problem(far)?.message).toMatch(/^spec\.affinity\.podAntiAffinity(\[0\])+: nested deeper than 64 levels$/);
  });

  it('refuses a __proto__ key, which a copy by assignment would turn into a prototype', () => {
    const pod = restoringPod();
    pod.spec.affinity = JSON.parse('{"__proto__":{"nodeAffinity":{}}}');
    expect(problem(pod)?.message).toBe('spec.affinity.__proto__: a __proto__ key has no place in a Pod');
  });

  it('quotes odd keys and cuts long ones in paths', () => {
    const pod = restoringPod();
    pod.metadata.annotations[`a key with spaces ${'k'.repeat(100)}`] = null;
    expect(problem(pod)?.message).toBe(`metadata.annotations["a key with spaces ${'k'.repeat(46)}…"]: expected a string, got null`);
  });
});

describe('a malformed pod through the admission handler', () => {
  function setup() {
    const lookups: string[] = [];
    const handle = createAdmissionHandler({
      lookup: {
        get: (namespace, name) => {
          lookups.push(`${namespace}/${name}`);
          return Promise.resolve(undefined);
        },
      },
      options: { hostHooksDir: '/var/run/cryo/hooks', pullSecret: '' },
      logger: silentLogger(),
      metrics: createWebhookMetrics(),
    });
    return { handle, lookups };
  }

  it('is refused in the review with 422 before the mutator reads it, and no Checkpoint is looked up', async () => {
    const { handle, lookups } = setup();
    const review = loadAdmissionReview('restore-deployment-pod');
    (review.request.object.spec as Any).containers[1].volumeMounts = null;
    const answer = await handle(review);
    expect(answer.response).toEqual({
      uid: review.request.uid,
      allowed: false,
      status: { code: 422, reason: 'malformed-pod', message: 'spec.containers[1].volumeMounts: expected an array, got null' },
    });
    expect(lookups).toEqual([]);
  });

  it('answers a pod nested a million levels deep at once, not with a stack overflow', async () => {
    const { handle } = setup();
    const review = loadAdmissionReview('hooks-only-pod');
    (review.request.object.spec as Any).affinity = { nodeAffinity: nested(1_000_000) };
    const started = performance.now();
    const answer = await handle(review);
    expect(answer.response?.status?.reason).toBe('malformed-pod');
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('refuses a pod without annotations too when it is malformed: the hook socket guard reads every pod sent', async () => {
    const { handle } = setup();
    const review = loadAdmissionReview('plain-pod');
    (review.request.object.spec as Any).volumes = [{ name: 'host', hostPath: null }];
    expect((await handle(review)).response?.status?.message).toBe('spec.volumes[0].hostPath: expected an object, got null');
  });
});
