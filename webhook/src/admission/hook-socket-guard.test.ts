/**
 * The hook socket only where it belongs: every way a pod could reach the node agent's hook
 * directory other than its own part, as the mutator decides it (CREATE, and the UPDATE of
 * pods/ephemeralcontainers), and the pods that must go on being admitted.
 */
import { describe, expect, it } from 'vitest';
import { applyPatch, type Operation } from 'rfc6902';
import type { V1EphemeralContainer, V1Pod, V1Volume, V1VolumeMount } from '@kubernetes/client-node';
import { annotations, type Checkpoint } from '@cryo/common';
import { loadAdmissionReview, loadCheckpoint } from '@cryo/test';
import { assertHookSocketConfined, coversHooksDir, hooksDirSpellings, normalizeHostPath } from './hook-socket-guard.ts';
import { decideEphemeralContainers, decidePod, type PodDecision } from './pod-mutator.ts';

const HOOKS_DIR = '/var/run/cryo/hooks';
const OPTIONS = { hostHooksDir: HOOKS_DIR, pullSecret: '' };
const OTHER_POD_UID = '3d1c2b4a-5e6f-4a7b-8c9d-0e1f2a3b4c5d';
const INJECTED_VOLUME: V1Volume = { name: 'cryo-hooks', hostPath: { path: HOOKS_DIR, type: 'DirectoryOrCreate' } };
const OWN_MOUNT: V1VolumeMount = { name: 'cryo-hooks', mountPath: '/run/cryo', subPathExpr: '$(CRYO_POD_UID)' };

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    for (const child of Object.values(value)) deepFreeze(child);
    Object.freeze(value);
  }
  return value;
}

/** The mutator on a frozen copy of `pod`, with these Checkpoints. */
function decide(pod: V1Pod, ...checkpoints: Checkpoint[]): Promise<PodDecision> {
  const lookup = { get: (_: string, name: string) => Promise.resolve(checkpoints.find((c) => c.metadata!.name === name)) };
  return decidePod(deepFreeze(structuredClone(pod)), 'shop', lookup, OPTIONS);
}

/** The pod as admitted (the patch applied); fails the test on a refusal. */
async function admitted(pod: V1Pod, ...checkpoints: Checkpoint[]): Promise<V1Pod> {
  const decision = await decide(pod, ...checkpoints);
  if (!decision.allowed) throw new Error(`refused: ${decision.denial.reason}: ${decision.denial.message}`);
  const result = structuredClone(pod);
  expect(applyPatch(result, decision.patch as Operation[]).filter((e) => e !== null)).toEqual([]);
  return result;
}

function expectRefused(decision: PodDecision, reason: string, ...messageParts: string[]): void {
  expect(decision.allowed, JSON.stringify(decision)).toBe(false);
  if (decision.allowed) return;
  expect(decision.denial).toMatchObject({ code: 422, reason });
  for (const part of messageParts) expect(decision.denial.message).toContain(part);
}

/** The hook-enabled fixture: one app container, `worker`. */
const hooked = () => loadAdmissionReview('hooks-only-pod').request.object;

/** `pod` with `volume` added, mounted into its first container as `mount` (none: unmounted). */
function withVolume(pod: V1Pod, volume: V1Volume, mount?: Partial<V1VolumeMount>): V1Pod {
  pod.spec!.volumes = [...(pod.spec!.volumes ?? []), volume];
  if (mount !== undefined) {
    const container = pod.spec!.containers[0];
    container.volumeMounts = [...(container.volumeMounts ?? []), { name: volume.name, mountPath: '/host', ...mount }];
  }
  return pod;
}
const hostPath = (path: string, name = 'host'): V1Volume => ({ name, hostPath: { path } });

/** kubectl debug on an admitted pod: the UPDATE of pods/ephemeralcontainers adding `container`. */
function debug(pod: V1Pod, container: Partial<V1EphemeralContainer> = {}) {
  const updated = structuredClone(pod);
  updated.spec!.ephemeralContainers = [
    ...(pod.spec!.ephemeralContainers ?? []),
    { name: 'debugger-7x2k', image: 'busybox:1.37', stdin: true, tty: true, targetContainerName: pod.spec!.containers[0].name, ...container },
  ];
  return decideEphemeralContainers(deepFreeze(updated), deepFreeze(structuredClone(pod)), OPTIONS);
}

describe('host paths, read as the kubelet reads them', () => {
  it.each([
    ['/var/run/cryo/hooks/', '/var/run/cryo/hooks'],
    ['//var//run/cryo/hooks', '/var/run/cryo/hooks'],
    ['/var/run/./cryo/x/../hooks', '/var/run/cryo/hooks'],
    ['var/run/cryo/hooks', '/var/run/cryo/hooks'],
    ['/../../var', '/var'],
    ['/', '/'],
    ['//', '/'],
    ['', '/'],
  ])('%j is %s', (path, normalized) => {
    expect(normalizeHostPath(path)).toBe(normalized);
  });

  it('names the hooks directory under /var/run and under /run: on most nodes /var/run is a symlink to /run', () => {
    expect(hooksDirSpellings('/var/run/cryo/hooks')).toEqual(['/var/run/cryo/hooks', '/run/cryo/hooks']);
    expect(hooksDirSpellings('/run/cryo/hooks/')).toEqual(['/run/cryo/hooks', '/var/run/cryo/hooks']);
    expect(hooksDirSpellings('/var/lib/cryo/hooks')).toEqual(['/var/lib/cryo/hooks']);
    expect(hooksDirSpellings('/var/runtime/hooks')).toEqual(['/var/runtime/hooks']);
  });

  it.each([
    '/var/run/cryo/hooks', '/run/cryo/hooks', '/var/run/cryo', '/run/cryo', '/var/run', '/run', '/var', '/',
    `/var/run/cryo/hooks/${OTHER_POD_UID}`, `/run/cryo/hooks/${OTHER_POD_UID}/agent.sock`, '/var/run/cryo/hooks/', '/var//run/../run/cryo/hooks',
  ])('%s covers the hooks directory', (path) => {
    expect(coversHooksDir(path, HOOKS_DIR)).toBe(true);
  });

  it.each(['/var/run/cryo/hooks-old', '/var/runx', '/run/containerd/containerd.sock', '/var/run/crio', '/var/log', '/var/lib/kubelet', '/etc', '/run/cryo-other'])(
    '%s does not',
    (path) => {
      expect(coversHooksDir(path, HOOKS_DIR)).toBe(false);
    },
  );
});

describe('CREATE: a pod reaching the hook directory other than its own part is refused', () => {
  it.each([
    ['the whole hooks directory', '/var/run/cryo/hooks'],
    ['the hooks directory spelt /run/cryo/hooks', '/run/cryo/hooks'],
    ['its parent /var/run', '/var/run'],
    ['/run', '/run'],
    ['/var', '/var'],
    ['the host root', '/'],
    ['the directory with a trailing slash', '/var/run/cryo/hooks/'],
    ['the directory with doubled slashes', '//var//run//cryo/hooks'],
    ['the directory spelt with ..', '/var/run/cryo/x/../hooks'],
    ['the directory spelt with .. out of /var/lib', '/var/lib/../run/cryo/hooks'],
    ['a relative path (from the kubelet\'s working directory, /)', 'var/run/cryo/hooks'],
    ["another pod's directory", `/var/run/cryo/hooks/${OTHER_POD_UID}`],
    ["another pod's socket", `/run/cryo/hooks/${OTHER_POD_UID}/agent.sock`],
  ])('a hostPath volume of %s (%s)', async (_, path) => {
    const decision = await decide(withVolume(hooked(), hostPath(path), { readOnly: true }));
    expectRefused(decision, 'hook-dir-host-path', `volume "host" (hostPath ${path}, mounted by container "worker")`, 'every pod\'s hook socket', 'mount a host directory outside it');
  });

  it('names both spellings of the directory in the message', async () => {
    const decision = await decide(withVolume(hooked(), hostPath('/run'), {}));
    expectRefused(decision, 'hook-dir-host-path', "Cryo's hook directory /var/run/cryo/hooks (also /run/cryo/hooks)");
  });

  it('a covering volume no container mounts yet: an ephemeral container could mount it later', async () => {
    expectRefused(await decide(withVolume(hooked(), hostPath('/'))), 'hook-dir-host-path', 'mounted by no container yet');
  });

  it('in a pod without any cryo.dev/ annotation too, if the webhook is sent it', async () => {
    const plain = loadAdmissionReview('plain-pod').request.object;
    expect(await decide(plain)).toEqual({ allowed: true, patch: [], warnings: [] });
    expectRefused(await decide(withVolume(plain, hostPath('/var/run'), {})), 'hook-dir-host-path', 'container "app"');
  });

  it('in a pod that only restores (hooks off)', async () => {
    const restoring = loadAdmissionReview('restore-deployment-pod').request.object;
    expectRefused(await decide(withVolume(restoring, hostPath('/run/cryo/hooks'), {}), loadCheckpoint('succeeded-registry')), 'hook-dir-host-path');
  });

  it('the injected volume name pre-declared with another path', async () => {
    for (const path of ['/var/run', '/', '/var/run/cryo/hooks/', '/tmp/hooks']) {
      const decision = await decide(withVolume(hooked(), { name: 'cryo-hooks', hostPath: { path, type: 'DirectoryOrCreate' } }));
      expectRefused(decision, 'reserved-volume-name', 'volume name "cryo-hooks" is reserved');
    }
  });

  it('the injected volume, exactly, in a pod that is not hook-enabled', async () => {
    const plain = withVolume(loadAdmissionReview('plain-pod').request.object, INJECTED_VOLUME, OWN_MOUNT);
    expectRefused(await decide(plain), 'hook-dir-host-path', "is Cryo's hook socket volume", `annotate the pod ${annotations.HOOKS}: enabled`);
    const disabled = structuredClone(plain);
    disabled.metadata!.annotations = { [annotations.HOOKS]: 'disabled' };
    expectRefused(await decide(disabled), 'hook-dir-host-path', "is Cryo's hook socket volume");
  });

  it.each<[string, Partial<V1VolumeMount>, string]>([
    ["another pod's directory by subPath", { mountPath: '/run/cryo', subPathExpr: undefined, subPath: OTHER_POD_UID }, `at /run/cryo with subPath "${OTHER_POD_UID}"`],
    ["another pod's directory by subPath, elsewhere", { mountPath: '/other', subPathExpr: undefined, subPath: OTHER_POD_UID }, `at /other with subPath "${OTHER_POD_UID}"`],
    ['a subPathExpr of something else', { subPathExpr: '$(POD_NAME)' }, 'at /run/cryo with subPathExpr "$(POD_NAME)"'],
    ['the whole directory at another path', { mountPath: '/sockets', subPathExpr: undefined }, "at /sockets whole (every pod's directory)"],
    ['its own directory at another path', { mountPath: '/hooks' }, 'at /hooks with subPathExpr "$(CRYO_POD_UID)"'],
    ['its own directory with other settings', { mountPropagation: 'Bidirectional' }, 'at /run/cryo with subPathExpr "$(CRYO_POD_UID)" setting mountPropagation'],
  ])('a container mounting the hook volume: %s', async (_, mount, described) => {
    const pod = hooked();
    pod.spec!.containers[0].volumeMounts!.push({ ...OWN_MOUNT, ...mount });
    expectRefused(await decide(pod), 'hook-mount-altered', `container "worker" mounts volume "cryo-hooks" ${described}`, 'remove that volumeMount');
    // Declaring the injected volume itself changes nothing.
    expectRefused(await decide(withVolume(pod, INJECTED_VOLUME)), 'hook-mount-altered');
  });

  it('a CRYO_POD_UID the pod sets itself is replaced, so its subPathExpr is its own uid after all', async () => {
    const pod = withVolume(hooked(), INJECTED_VOLUME, OWN_MOUNT);
    pod.spec!.containers[0].env!.push({ name: 'CRYO_POD_UID', value: OTHER_POD_UID });
    const result = await admitted(pod);
    expect(result.spec!.containers[0].env!.filter((e) => e.name === 'CRYO_POD_UID')).toEqual([
      { name: 'CRYO_POD_UID', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.uid' } } },
    ]);
  });

  it('the guard itself refuses a mount whose CRYO_POD_UID is not the pod uid (whoever wrote the pod)', () => {
    const pod = withVolume(hooked(), INJECTED_VOLUME, OWN_MOUNT);
    for (const env of [[{ name: 'CRYO_POD_UID', value: OTHER_POD_UID }], [], [{ name: 'CRYO_POD_UID', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }]]) {
      pod.spec!.containers[0].env = env;
      expect(() => assertHookSocketConfined(pod, { hostHooksDir: HOOKS_DIR, hooks: true })).toThrow(/CRYO_POD_UID is not the pod's uid/);
    }
  });

  it('an init container mounting the hook volume, even as its own directory', async () => {
    const pod = withVolume(hooked(), INJECTED_VOLUME);
    pod.spec!.initContainers = [{ name: 'migrate', image: 'shop/orders-migrate:2.4.1', volumeMounts: [OWN_MOUNT] }];
    expectRefused(await decide(pod), 'hook-mount-in-init-container', 'init container "migrate" mounts volume "cryo-hooks"', 'init containers never get the hook socket', 'remove that volumeMount');
  });

  it('an init container mounting it in a restored pod, whose app containers get the socket again', async () => {
    const pod = withVolume(loadAdmissionReview('restore-hooked-copy-pod').request.object, INJECTED_VOLUME);
    pod.spec!.initContainers![0].volumeMounts!.push({ name: 'cryo-hooks', mountPath: '/run/cryo', subPathExpr: '$(CRYO_POD_UID)' });
    expectRefused(await decide(pod, loadCheckpoint('succeeded-with-hooks')), 'hook-mount-in-init-container', 'init container "migrate"');
  });
});

describe('CREATE: hook-enabled pods go on being admitted', () => {
  it('a hook-enabled pod gets its own directory; a reinvocation, and a copy of the result, change nothing', async () => {
    const result = await admitted(hooked());
    expect(result.spec!.volumes).toContainEqual(INJECTED_VOLUME);
    expect(result.spec!.containers[0].volumeMounts).toContainEqual(OWN_MOUNT);
    expect(await decide(result)).toEqual({ allowed: true, patch: [], warnings: [] });
    // A copy of the pod as it runs (kubectl get -o yaml): its hook-status annotation dropped.
    delete result.metadata!.annotations![annotations.HOOKS_STATUS];
    expect((await admitted(result)).metadata!.annotations![annotations.HOOKS_STATUS]).toBe(annotations.HOOKS_STATUS_INJECTED);
  });

  it('a restored pod re-gets the mount its checkpoint recorded, in every app container and no init container', async () => {
    const checkpoint = loadCheckpoint('succeeded-with-hooks');
    const result = await admitted(loadAdmissionReview('restore-hooked-copy-pod').request.object, checkpoint);
    for (const container of result.spec!.containers) expect(container.volumeMounts, container.name).toContainEqual(OWN_MOUNT);
    expect(result.spec!.initContainers!.every((c) => !(c.volumeMounts ?? []).some((m) => m.name === 'cryo-hooks'))).toBe(true);
    expect((await decide(result, checkpoint)).allowed).toBe(true);
    // A copy of the restored pod asking only for the restore again: its mounts as the webhook wrote them.
    result.metadata!.annotations = { [annotations.RESTORE_FROM]: result.metadata!.annotations![annotations.RESTORE_FROM] };
    expect((await decide(result, checkpoint)).allowed).toBe(true);
  });

  it('host paths beside the hook directory', async () => {
    for (const path of ['/var/run/cryo/hooks-old', '/var/runx', '/run/containerd/containerd.sock', '/var/log']) {
      expect((await decide(withVolume(hooked(), hostPath(path), {}))).allowed, path).toBe(true);
    }
  });

  it('with --host-hooks-dir under /run, /var/run still spells it', async () => {
    const pod = withVolume(hooked(), hostPath('/var/run/cryo/hooks'), {});
    const decision = await decidePod(deepFreeze(pod), 'shop', { get: () => Promise.resolve(undefined) }, { ...OPTIONS, hostHooksDir: '/run/cryo/hooks' });
    expectRefused(decision, 'hook-dir-host-path', "Cryo's hook directory /run/cryo/hooks (also /var/run/cryo/hooks)");
  });
});

describe('UPDATE of pods/ephemeralcontainers (kubectl debug)', () => {
  it('refuses an ephemeral container mounting the hook volume', async () => {
    const pod = await admitted(hooked());
    expectRefused(debug(pod, { volumeMounts: [{ name: 'cryo-hooks', mountPath: '/sockets' }] }), 'hook-mount-in-ephemeral-container',
      'ephemeral container "debugger-7x2k" mounts volume "cryo-hooks"', 'remove that volumeMount');
    expectRefused(debug(pod, { volumeMounts: [OWN_MOUNT] }), 'hook-mount-in-ephemeral-container');
  });

  it("refuses one mounting a pod's covering host path admitted before the webhook checked them", () => {
    const legacy = withVolume(loadAdmissionReview('plain-pod').request.object, hostPath('/'), { mountPath: '/host' });
    expectRefused(debug(legacy, { volumeMounts: [{ name: 'host', mountPath: '/host' }] }), 'hook-mount-in-ephemeral-container');
  });

  it('allows, unchanged, a debug container without mounts or mounting other volumes', async () => {
    const pod = await admitted(hooked());
    expect(debug(pod)).toEqual({ allowed: true, patch: [], warnings: [] });
    expect(debug(pod, { volumeMounts: [{ name: 'cache', mountPath: '/cache' }] })).toEqual({ allowed: true, patch: [], warnings: [] });
    expect(debug(loadAdmissionReview('plain-pod').request.object)).toEqual({ allowed: true, patch: [], warnings: [] });
  });

  it('judges only the containers being added', async () => {
    const pod = await admitted(hooked());
    // Added before the webhook checked ephemeral containers: it stays, and debugging goes on.
    pod.spec!.ephemeralContainers = [{ name: 'old-debugger', image: 'busybox:1.37', volumeMounts: [{ name: 'cryo-hooks', mountPath: '/sockets' }] }];
    expect(debug(pod).allowed).toBe(true);
  });
});
