/**
 * manifests/hook-socket-policy.yaml: the ValidatingAdmissionPolicy that keeps every pod out of
 * other pods' hook sockets inside the kube-apiserver, whether or not the webhook sees the pod.
 * No kube-apiserver runs here, so its CEL is not evaluated by Kubernetes: each variable and rule
 * is pinned as written, next to its plain JavaScript reading, and the readings are run against
 * the attacks and the pods that must go on working (the webhook's own output among them).
 * Whoever changes a rule changes both.
 */
import { isDeepStrictEqual } from 'node:util';
import type { V1Container, V1EnvVar, V1EphemeralContainer, V1Pod, V1Volume, V1VolumeMount } from '@kubernetes/client-node';
import type { IValidatingAdmissionPolicy, IValidatingAdmissionPolicyBinding } from 'kubernetes-models/admissionregistration.k8s.io/v1';
import type { IDaemonSet } from 'kubernetes-models/apps/v1';
import { applyPatch, type Operation } from 'rfc6902';
import { describe, expect, it } from 'vitest';
import type { Checkpoint } from '@cryo/common';
import { coversHooksDir, hooksDirSpellings } from '../../webhook/src/admission/hook-socket-guard.ts';
import { decidePod, webhookOptionSpecs } from '@cryo/webhook';
import { loadAdmissionReview, loadCheckpoint } from '@cryo/test';
import { loadFile, manifestObject, readKustomization } from './load-manifests.ts';

const FILE = 'hook-socket-policy.yaml';
const POLICY = 'cryo-hook-socket-own-pod';
const HOOKS_DIR = webhookOptionSpecs.hostHooksDir.default;

const the = manifestObject;

const policy = the<IValidatingAdmissionPolicy>('ValidatingAdmissionPolicy', POLICY);
const binding = the<IValidatingAdmissionPolicyBinding>('ValidatingAdmissionPolicyBinding', POLICY);
const daemonSet = the<IDaemonSet>('DaemonSet', 'cryo-node-agent');

/** CEL as YAML folds it: whitespace runs are one space. */
const normalized = (cel: string | undefined) => (cel ?? '').replace(/\s+/g, ' ').trim();

interface Review {
  operation: 'CREATE' | 'UPDATE';
  namespace: string;
  object: V1Pod;
  oldObject?: V1Pod;
}
type Variables = Record<'hookVolumes' | 'initMounters' | 'ephemeralMounters' | 'strayMounters', string[]>;

/** The hooks directory's two spellings, each ending in /, as the policy spells them. */
const HOOK_DIRS = ['/var/run/cryo/hooks/', '/run/cryo/hooks/'];
/** A host path's segments, without empty ones (//, a trailing /) and `.`, each ending in /, after a /. */
const segmentsPrefix = (path: string) => `/${path.split('/').filter((s) => s !== '' && s !== '.').map((s) => `${s}/`).join('')}`;
const SEGMENTS_CEL = "'/' + v.hostPath.path.split('/').filter(s, s != '' && s != '.').map(s, s + '/').join()";

function coveredByPolicy(path: string): boolean {
  return path.split('/').some((s) => s === '..') || HOOK_DIRS.some((d) => d.startsWith(segmentsPrefix(path)) || segmentsPrefix(path).startsWith(d));
}

const mounting = (containers: Array<V1Container | V1EphemeralContainer> | undefined, volumes: string[]) =>
  (containers ?? []).filter((c) => c.volumeMounts !== undefined && c.volumeMounts.some((m) => volumes.includes(m.name))).map((c) => c.name);

/** The one way an app container may mount such a volume: its pod's own directory. */
function ownDirectory(c: V1Container, m: V1VolumeMount): boolean {
  const env = c.env;
  return m.subPathExpr === '$(CRYO_POD_UID)' && (m.subPath === undefined || m.subPath === '')
    && env !== undefined && env.some((e) => e.name === 'CRYO_POD_UID')
    && env.every((e) => e.name !== 'CRYO_POD_UID' || ((e.value === undefined || e.value === '')
      && e.valueFrom?.fieldRef !== undefined && e.valueFrom.fieldRef.fieldPath === 'metadata.uid'));
}

/** Each variable: its CEL as the manifest must spell it, and what it means. */
const VARIABLES: Array<{ name: keyof Variables; cel: string; read: (pod: V1Pod, vars: Variables) => string[] }> = [
  {
    name: 'hookVolumes',
    cel:
      'has(object.spec.volumes) ? object.spec.volumes.filter(v, has(v.hostPath) && ' +
      "(v.hostPath.path.split('/').exists(s, s == '..') || " +
      `['/var/run/cryo/hooks/', '/run/cryo/hooks/'].exists(d, d.startsWith(${SEGMENTS_CEL}) || (${SEGMENTS_CEL}).startsWith(d)))).map(v, v.name) : []`,
    read: (pod) => (pod.spec!.volumes ?? []).filter((v: V1Volume) => v.hostPath !== undefined && coveredByPolicy(v.hostPath.path)).map((v) => v.name),
  },
  {
    name: 'initMounters',
    cel:
      'has(object.spec.initContainers) ? object.spec.initContainers.filter(c, has(c.volumeMounts) && ' +
      'c.volumeMounts.exists(m, m.name in variables.hookVolumes)).map(c, c.name) : []',
    read: (pod, vars) => mounting(pod.spec!.initContainers, vars.hookVolumes),
  },
  {
    name: 'ephemeralMounters',
    cel:
      'has(object.spec.ephemeralContainers) ? object.spec.ephemeralContainers.filter(c, has(c.volumeMounts) && ' +
      'c.volumeMounts.exists(m, m.name in variables.hookVolumes)).map(c, c.name) : []',
    read: (pod, vars) => mounting(pod.spec!.ephemeralContainers, vars.hookVolumes),
  },
  {
    name: 'strayMounters',
    cel:
      'object.spec.containers.filter(c, has(c.volumeMounts) && c.volumeMounts.exists(m, m.name in variables.hookVolumes && ' +
      "!(has(m.subPathExpr) && m.subPathExpr == '$(CRYO_POD_UID)' && (!has(m.subPath) || m.subPath == '') && " +
      "has(c.env) && c.env.exists(e, e.name == 'CRYO_POD_UID') && " +
      "c.env.all(e, e.name != 'CRYO_POD_UID' || ((!has(e.value) || e.value == '') && " +
      "has(e.valueFrom) && has(e.valueFrom.fieldRef) && e.valueFrom.fieldRef.fieldPath == 'metadata.uid'))))).map(c, c.name)",
    read: (pod, vars) =>
      pod.spec!.containers.filter((c) => (c.volumeMounts ?? []).some((m) => vars.hookVolumes.includes(m.name) && !ownDirectory(c, m))).map((c) => c.name),
  },
];

/** Each validation: its CEL, what it checks (named as the refusals below), and what its message starts with. */
const RULES: Array<{ cel: string; refusal: Refusal; message: RegExp }> = [
  { cel: 'size(variables.strayMounters) == 0', refusal: 'stray', message: /^'container ' \+ variables\.strayMounters/ },
  { cel: 'size(variables.initMounters) == 0', refusal: 'init', message: /^'init container ' \+ variables\.initMounters/ },
  { cel: 'size(variables.ephemeralMounters) == 0', refusal: 'ephemeral', message: /^'ephemeral container ' \+ variables\.ephemeralMounters/ },
];
type Refusal = 'stray' | 'init' | 'ephemeral';

const EXCLUDED_NAMESPACES = ['kube-system', daemonSet.metadata.namespace!];

/** What the policy refuses this request for: nothing when it does not match (binding, matchConditions). */
function refusals(review: Review): Refusal[] {
  if (EXCLUDED_NAMESPACES.includes(review.namespace)) return [];
  if (review.operation !== 'CREATE' && isDeepStrictEqual(review.object.spec, review.oldObject!.spec)) return [];
  const vars = {} as Variables;
  for (const variable of VARIABLES) vars[variable.name] = variable.read(review.object, vars);
  const failing = { stray: vars.strayMounters, init: vars.initMounters, ephemeral: vars.ephemeralMounters };
  return RULES.map((rule) => rule.refusal).filter((refusal) => failing[refusal].length > 0);
}

// ---------------------------------------------------------------------------------------
// The pods
// ---------------------------------------------------------------------------------------

const OTHER_POD_UID = '3d1c2b4a-5e6f-4a7b-8c9d-0e1f2a3b4c5d';
const POD_UID_FROM_API: V1EnvVar = { name: 'CRYO_POD_UID', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.uid' } } };
const OWN_MOUNT: V1VolumeMount = { name: 'cryo-hooks', mountPath: '/run/cryo', subPathExpr: '$(CRYO_POD_UID)' };
const hostPathVolume = (path: string, name = 'cryo-hooks'): V1Volume => ({ name, hostPath: { path, type: 'DirectoryOrCreate' } });

/** A pod with one app container, `app`, mounting `volume` with `mount` (its own directory, by default). */
function pod(volume: V1Volume | undefined, mount: Partial<V1VolumeMount> | undefined = {}, env: V1EnvVar[] = [POD_UID_FROM_API]): V1Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'worker-0', namespace: 'shop', annotations: { 'cryo.dev/hooks': 'enabled' } },
    spec: {
      volumes: [{ name: 'cache', emptyDir: {} }, ...(volume === undefined ? [] : [volume])],
      containers: [{
        name: 'app',
        image: 'shop/orders-api:2.4.1',
        env: [...env, { name: 'CRYO_HOOK_SOCKET', value: '/run/cryo/agent.sock' }],
        volumeMounts: [
          { name: 'cache', mountPath: '/var/cache/orders' },
          ...(volume === undefined || mount === undefined ? [] : [{ ...OWN_MOUNT, name: volume.name, ...mount }]),
        ],
      }],
    },
  };
}
/** The same mount, without the subPathExpr: the whole volume. */
const whole = { subPathExpr: undefined };
const create = (object: V1Pod, namespace = 'shop'): Review => ({ operation: 'CREATE', namespace, object });

/** kubectl debug: an UPDATE of pods/ephemeralcontainers adding `container` to `from`. */
function debug(from: V1Pod, container: Partial<V1EphemeralContainer> = {}): Review {
  const object = structuredClone(from);
  object.spec!.ephemeralContainers = [{ name: 'debugger-7x2k', image: 'busybox:1.37', stdin: true, tty: true, targetContainerName: 'app', ...container }];
  return { operation: 'UPDATE', namespace: 'shop', object, oldObject: from };
}

const ownSocket = pod(hostPathVolume(HOOKS_DIR));

/** The pods the webhook writes: the hook-enabled one, and a copy restored from a checkpoint taken with the socket. */
async function webhookOutput(fixture: string, checkpoint?: Checkpoint): Promise<V1Pod> {
  const review = loadAdmissionReview(fixture);
  const lookup = { get: () => Promise.resolve(checkpoint) };
  const decision = await decidePod(review.request.object, 'shop', lookup, { hostHooksDir: HOOKS_DIR, pullSecret: '' });
  if (!decision.allowed) throw new Error(decision.denial.message);
  const result = structuredClone(review.request.object);
  expect(applyPatch(result, decision.patch as Operation[]).filter((e) => e !== null)).toEqual([]);
  expect(result.spec!.volumes).toContainEqual(hostPathVolume(HOOKS_DIR));
  return result;
}

describe('manifests/hook-socket-policy.yaml', () => {
  it('is installed by kubectl apply -k: the policy and its binding', () => {
    expect(readKustomization().resources).toContain(FILE);
    expect(loadFile(FILE).map((d) => `${d.object.kind}/${d.object.metadata.name}`)).toEqual([
      `ValidatingAdmissionPolicy/${POLICY}`,
      `ValidatingAdmissionPolicyBinding/${POLICY}`,
    ]);
  });

  it('denies, with no parameters, everywhere but kube-system and the node agent namespace, whose DaemonSet serves the sockets', () => {
    expect(binding.spec).toEqual({
      policyName: POLICY,
      validationActions: ['Deny'],
      matchResources: {
        namespaceSelector: { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: EXCLUDED_NAMESPACES }] },
      },
    });
    expect(policy.spec!.paramKind).toBeUndefined();
    expect(policy.spec!.failurePolicy).toBe('Fail');
    // The agent mounts the whole directory: anywhere else the policy would refuse it.
    const agentPod: V1Pod = { metadata: { name: 'cryo-node-agent-x' }, spec: daemonSet.spec!.template.spec as V1Pod['spec'] };
    expect(agentPod.spec!.volumes).toContainEqual(expect.objectContaining({ hostPath: expect.objectContaining({ path: HOOKS_DIR }) }));
    expect(refusals(create(agentPod, 'default'))).toEqual(['stray']);
    expect(refusals(create(agentPod, daemonSet.metadata.namespace))).toEqual([]);
  });

  it('matches pod creation and update, the ephemeral containers subresource included, when the spec is written', () => {
    expect(policy.spec!.matchConstraints).toEqual({
      resourceRules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE', 'UPDATE'], resources: ['pods', 'pods/ephemeralcontainers'] }],
    });
    expect(policy.spec!.matchConditions).toEqual([
      { name: 'spec-written', expression: "request.operation == 'CREATE' || object.spec != oldObject.spec" },
    ]);
  });

  it("checks the webhook's default hook directory in both its spellings (/var/run is /run on most nodes)", () => {
    expect(HOOKS_DIR).toBe('/var/run/cryo/hooks');
    expect(hooksDirSpellings(HOOKS_DIR).map((d) => `${d}/`)).toEqual(HOOK_DIRS);
    expect(VARIABLES[0].cel).toContain(`[${HOOK_DIRS.map((d) => `'${d}'`).join(', ')}]`);
  });

  it('has exactly the variables and rules read here, each refusing as Invalid with a message naming the containers', () => {
    expect(policy.spec!.variables!.map((v) => ({ name: v.name, cel: normalized(v.expression) }))).toEqual(VARIABLES.map(({ name, cel }) => ({ name, cel })));
    expect(policy.spec!.validations!.map((v) => normalized(v.expression))).toEqual(RULES.map((rule) => rule.cel));
    for (const [i, validation] of policy.spec!.validations!.entries()) {
      expect(validation.reason).toBe('Invalid');
      expect(validation.message).toBeUndefined();
      expect(normalized(validation.messageExpression)).toMatch(RULES[i].message);
      expect(validation.messageExpression).toContain("hook directory /var/run/cryo/hooks (every pod\\'s hook socket)");
    }
  });

  it("reads a host path as the webhook does, but for `..` (the API refuses it in a hostPath; the policy takes it as covering)", () => {
    const paths = [
      '/', '/var', '/var/', '/var/run', '/run', '/run/', '/var/run/cryo', '/var/run/cryo/hooks', '/run/cryo/hooks', '//var//run/cryo/hooks/',
      '/var/run/./cryo/hooks', 'var/run/cryo/hooks', `/var/run/cryo/hooks/${OTHER_POD_UID}`, `/run/cryo/hooks/${OTHER_POD_UID}/agent.sock`,
      '/var/runx', '/var/run/cryo/hooks-old', '/var/run/crio', '/var/log', '/run/containerd', '/var/lib/kubelet', '/etc', '/var/run/docker.sock',
    ];
    for (const path of paths) expect(coveredByPolicy(path), path).toBe(coversHooksDir(path, HOOKS_DIR));
    expect(coveredByPolicy('/var/lib/../run/cryo/hooks')).toBe(true);
    expect(coveredByPolicy('/opt/../etc')).toBe(true);
  });

  describe('what the rules refuse (their JavaScript reading)', () => {
    it.each<[string, Review, Refusal[]]>([
      ['the whole hooks directory, /var/run/cryo/hooks', create(pod(hostPathVolume('/var/run/cryo/hooks', 'all-sockets'), { mountPath: '/sockets', ...whole })), ['stray']],
      ['the whole hooks directory as /run/cryo/hooks', create(pod(hostPathVolume('/run/cryo/hooks', 'all-sockets'), { mountPath: '/sockets', ...whole })), ['stray']],
      ['its parent /var/run', create(pod(hostPathVolume('/var/run', 'host-run'), { mountPath: '/host/run', ...whole })), ['stray']],
      ['its parent /run', create(pod(hostPathVolume('/run', 'host-run'), { mountPath: '/host/run', ...whole })), ['stray']],
      ['the host root /', create(pod(hostPathVolume('/', 'host-root'), { mountPath: '/host', ...whole, readOnly: true })), ['stray']],
      ['/var, read-only', create(pod(hostPathVolume('/var', 'host-var'), { mountPath: '/host/var', ...whole, readOnly: true })), ['stray']],
      ['the directory with a trailing slash', create(pod(hostPathVolume('/var/run/cryo/hooks/', 'x'), { mountPath: '/x', ...whole })), ['stray']],
      ['the directory with doubled slashes and .', create(pod(hostPathVolume('//var//run/./cryo/hooks', 'x'), { mountPath: '/x', ...whole })), ['stray']],
      ['the directory spelt with ..', create(pod(hostPathVolume('/var/run/cryo/x/../hooks', 'x'), { mountPath: '/x', ...whole })), ['stray']],
      ["another pod's directory as its own hostPath", create(pod(hostPathVolume(`/var/run/cryo/hooks/${OTHER_POD_UID}`, 'x'), { mountPath: '/run/cryo', ...whole })), ['stray']],
      ['the injected volume name pre-declared with / and mounted whole', create(pod(hostPathVolume('/'), { ...whole })), ['stray']],
      ["another pod's directory, by subPath", create(pod(hostPathVolume(HOOKS_DIR), { subPathExpr: undefined, subPath: OTHER_POD_UID })), ['stray']],
      ['a subPathExpr of something else', create(pod(hostPathVolume(HOOKS_DIR), { subPathExpr: '$(POD_NAME)' })), ['stray']],
      ['CRYO_POD_UID set to another pod\'s uid', create(pod(hostPathVolume(HOOKS_DIR), {}, [{ name: 'CRYO_POD_UID', value: OTHER_POD_UID }])), ['stray']],
      ['CRYO_POD_UID from the API, then set again (the last one wins)', create(pod(hostPathVolume(HOOKS_DIR), {}, [POD_UID_FROM_API, { name: 'CRYO_POD_UID', value: OTHER_POD_UID }])), ['stray']],
      ['CRYO_POD_UID from another field', create(pod(hostPathVolume(HOOKS_DIR), {}, [{ name: 'CRYO_POD_UID', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }])), ['stray']],
      ['no CRYO_POD_UID in env (envFrom could set it)', create(pod(hostPathVolume(HOOKS_DIR), {}, [])), ['stray']],
    ])('a container mounting %s', (_, review, expected) => {
      expect(refusals(review)).toEqual(expected);
    });

    it('an init container mounting the hooks volume, even as its own directory', () => {
      const withInit = structuredClone(ownSocket);
      withInit.spec!.initContainers = [{ name: 'migrate', image: 'shop/orders-migrate:2.4.1', env: [POD_UID_FROM_API], volumeMounts: [OWN_MOUNT] }];
      expect(refusals(create(withInit))).toEqual(['init']);
    });

    it('an ephemeral container mounting the hooks volume on an UPDATE of pods/ephemeralcontainers', () => {
      expect(refusals(debug(ownSocket, { volumeMounts: [{ name: 'cryo-hooks', mountPath: '/sockets' }] }))).toEqual(['ephemeral']);
      // Ephemeral containers may not use subPathExpr; one mounted so is refused all the same.
      expect(refusals(debug(ownSocket, { env: [POD_UID_FROM_API], volumeMounts: [OWN_MOUNT] }))).toEqual(['ephemeral']);
    });

    it('in any namespace but the excluded ones, whether the pod has a Cryo annotation or not', () => {
      const plain = pod(hostPathVolume('/', 'host-root'), { mountPath: '/host', ...whole });
      delete plain.metadata!.annotations;
      expect(refusals(create(plain, 'monitoring'))).toEqual(['stray']);
      expect(refusals(create(plain, 'kube-system'))).toEqual([]);
    });
  });

  describe('what the rules let through', () => {
    it.each<[string, Review]>([
      ['a pod without host paths', create(pod(undefined))],
      ['a pod without volumes at all', create({ metadata: { name: 'bare' }, spec: { containers: [{ name: 'app', image: 'busybox:1.37' }] } })],
      ['host paths beside the hooks directory', create(pod(hostPathVolume('/var/run/cryo/hooks-old', 'x'), { mountPath: '/x', ...whole }))],
      ['/var/runx', create(pod(hostPathVolume('/var/runx', 'x'), { mountPath: '/x', ...whole }))],
      ['the container runtime socket under /var/run', create(pod(hostPathVolume('/var/run/containerd/containerd.sock', 'x'), { mountPath: '/x', ...whole }))],
      ['a covering volume no container mounts', create(pod(hostPathVolume('/'), undefined))],
      ['a hook-enabled pod mounting its own directory', create(ownSocket)],
      ['a parent mounted only as the pod uid under it (not its hook directory)', create(pod(hostPathVolume('/var/run', 'host-run')))],
      ['an ephemeral debug container without mounts', debug(ownSocket)],
      ['an ephemeral debug container mounting other volumes', debug(ownSocket, { volumeMounts: [{ name: 'cache', mountPath: '/cache' }] })],
    ])('%s', (_, review) => {
      expect(refusals(review)).toEqual([]);
    });

    it('a label change on a pod admitted before the policy (it must stay deletable)', () => {
      const old = pod(hostPathVolume('/', 'host-root'), { mountPath: '/host', ...whole });
      const object = structuredClone(old);
      object.metadata!.labels = { stage: 'canary' };
      object.metadata!.finalizers = [];
      expect(refusals({ operation: 'UPDATE', namespace: 'shop', object, oldObject: old })).toEqual([]);
    });

    it("the webhook's hook-enabled pod", async () => {
      const result = await webhookOutput('hooks-only-pod');
      expect(refusals(create(result))).toEqual([]);
      expect(refusals(debug(result))).toEqual([]);
    });

    it('a restored pod re-getting the hook mount its checkpoint recorded', async () => {
      const result = await webhookOutput('restore-hooked-copy-pod', loadCheckpoint('succeeded-with-hooks'));
      expect(result.spec!.containers.every((c) => c.volumeMounts!.some((m) => isDeepStrictEqual(m, OWN_MOUNT)))).toBe(true);
      expect(refusals(create(result))).toEqual([]);
    });
  });
});
