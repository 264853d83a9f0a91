/**
 * The hook socket through the node agent's CSI driver (--hook-socket-volume=csi, the webhook's
 * default): what is injected, that a restored copy gets the same mount again, that the pod
 * passes Pod Security `restricted` volume rules (no hostPath), and what is refused.
 */
import { describe, expect, it } from 'vitest';
import { applyPatch, type Operation } from 'rfc6902';
import type { V1Pod, V1Volume } from '@kubernetes/client-node';
import { annotations, HOOK_CSI_DRIVER, type Checkpoint } from '@cryo/common';
import { loadAdmissionReview, loadCheckpoint } from '@cryo/test';
import { readWebhookConfig } from '../config.ts';
import { decideEphemeralContainers, decidePod, type MutatorOptions, type PodDecision } from './pod-mutator.ts';

const CSI: MutatorOptions = { hostHooksDir: '/var/run/cryo/hooks', hookSocketVolume: 'csi', pullSecret: '' };
const CSI_VOLUME: V1Volume = { name: 'cryo-hooks', csi: { driver: HOOK_CSI_DRIVER, readOnly: true } };
const CSI_MOUNT = { name: 'cryo-hooks', mountPath: '/run/cryo', readOnly: true };

function decide(pod: V1Pod, options: MutatorOptions = CSI, ...checkpoints: Checkpoint[]): Promise<PodDecision> {
  const lookup = { get: (_: string, name: string) => Promise.resolve(checkpoints.find((c) => c.metadata!.name === name)) };
  return decidePod(structuredClone(pod), 'shop', lookup, options);
}

async function admitted(pod: V1Pod, options: MutatorOptions = CSI, ...checkpoints: Checkpoint[]): Promise<V1Pod> {
  const decision = await decide(pod, options, ...checkpoints);
  if (!decision.allowed) throw new Error(`refused: ${decision.denial.reason}: ${decision.denial.message}`);
  const result = structuredClone(pod);
  expect(applyPatch(result, decision.patch as Operation[]).filter((e) => e !== null)).toEqual([]);
  return result;
}

function refusal(decision: PodDecision): { reason: string; message: string } | undefined {
  return decision.allowed ? undefined : { reason: decision.denial.reason, message: decision.denial.message };
}

/** Pod Security `restricted` admits these volume types only (no hostPath among them). */
const RESTRICTED_VOLUME_TYPES = new Set(['configMap', 'csi', 'downwardAPI', 'emptyDir', 'ephemeral', 'persistentVolumeClaim', 'projected', 'secret']);

const hooked = () => loadAdmissionReview('hooks-only-pod').request.object;

describe('the hook socket as a CSI inline volume', () => {
  it("is the webhook's default; --hook-socket-volume=hostPath keeps the hostPath", () => {
    expect(readWebhookConfig([], {}).hookSocketVolume).toBe('csi');
    expect(readWebhookConfig(['--hook-socket-volume=hostPath'], {}).hookSocketVolume).toBe('hostPath');
    expect(() => readWebhookConfig(['--hook-socket-volume=emptyDir'], {})).toThrow(/--hook-socket-volume \(env CRYO_HOOK_SOCKET_VOLUME\): expected csi or hostPath, got "emptyDir"/);
  });

  it('mounts the read-only CSI volume of hooks.cryo.dev at /run/cryo in every app container, with the env the SDK reads, and no hostPath', async () => {
    const pod = await admitted(hooked());
    expect(pod.spec!.volumes!.filter((v) => v.name === 'cryo-hooks')).toEqual([CSI_VOLUME]);
    expect(pod.spec!.volumes!.every((v) => v.hostPath === undefined)).toBe(true);
    for (const volume of pod.spec!.volumes!) {
      const types = Object.keys(volume).filter((k) => k !== 'name');
      expect(types.every((t) => RESTRICTED_VOLUME_TYPES.has(t)), `${volume.name}: ${types.join()}`).toBe(true);
    }
    for (const container of pod.spec!.containers) {
      expect(container.volumeMounts).toContainEqual(CSI_MOUNT);
      expect(container.env!.slice(0, 3)).toEqual([
        { name: 'CRYO_POD_UID', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.uid' } } },
        { name: 'CRYO_HOOK_SOCKET', value: '/run/cryo/agent.sock' },
        { name: 'CRYO_CONTAINER_NAME', value: container.name },
      ]);
    }
    for (const container of pod.spec!.initContainers ?? []) expect((container.volumeMounts ?? []).map((m) => m.name)).not.toContain('cryo-hooks');
    expect(pod.metadata!.annotations).toMatchObject({ [annotations.HOOKS]: 'enabled', [annotations.HOOKS_STATUS]: 'injected' });
    // A reinvocation changes nothing.
    expect(await decide(pod)).toMatchObject({ allowed: true, patch: [] });
  });

  it('gives a copy restored from a checkpoint taken with the socket mounted the same mount at /run/cryo again', async () => {
    const copy = await admitted(loadAdmissionReview('restore-hooked-copy-pod').request.object, CSI, loadCheckpoint('succeeded-with-hooks'));
    expect(copy.metadata!.annotations![annotations.HOOKS]).toBe('enabled');
    expect(copy.spec!.volumes).toContainEqual(CSI_VOLUME);
    for (const container of copy.spec!.containers) expect(container.volumeMounts).toContainEqual(CSI_MOUNT);
  });

  it('keeps refusing any hostPath that reaches the hooks directory', async () => {
    const pod = hooked();
    pod.spec!.volumes!.push({ name: 'all-hooks', hostPath: { path: '/run' } });
    expect(refusal(await decide(pod))?.reason).toBe('hook-dir-host-path');
  });

  it('refuses the CSI volume declared by the pod itself: with attributes, in a pod without hooks, mounted otherwise, in an init or ephemeral container', async () => {
    const withAttributes = hooked();
    withAttributes.spec!.volumes!.push({ name: 'cryo-hooks', csi: { driver: HOOK_CSI_DRIVER, readOnly: true, volumeAttributes: { 'csi.storage.k8s.io/pod.uid': '3d1c2b4a-5e6f-4a7b-8c9d-0e1f2a3b4c5d' } } });
    expect(refusal(await decide(withAttributes))?.reason).toBe('reserved-volume-name');

    const otherName = hooked();
    otherName.spec!.volumes!.push({ name: 'sockets', csi: { driver: HOOK_CSI_DRIVER } });
    expect(refusal(await decide(otherName))).toMatchObject({ reason: 'hook-csi-volume', message: expect.stringContaining('volume "sockets" (CSI driver hooks.cryo.dev, mounted by no container yet') });

    const withoutHooks = loadAdmissionReview('plain-pod').request.object;
    withoutHooks.spec!.volumes = [...(withoutHooks.spec!.volumes ?? []), CSI_VOLUME];
    expect(refusal(await decide(withoutHooks))?.reason).toBe('hook-csi-volume');

    const writable = hooked();
    writable.spec!.containers[0].volumeMounts = [...(writable.spec!.containers[0].volumeMounts ?? []), { name: 'cryo-hooks', mountPath: '/run/cryo' }];
    expect(refusal(await decide(writable))).toMatchObject({ reason: 'hook-mount-altered', message: expect.stringContaining('mounted only at /run/cryo read-only') });

    const init = hooked();
    init.spec!.initContainers = [{ name: 'setup', image: 'busybox:1.37', volumeMounts: [CSI_MOUNT] }];
    expect(refusal(await decide(init))?.reason).toBe('hook-mount-in-init-container');

    const pod = await admitted(hooked());
    const debugged = structuredClone(pod);
    debugged.spec!.ephemeralContainers = [{ name: 'debugger', image: 'busybox:1.37', volumeMounts: [{ name: 'cryo-hooks', mountPath: '/hooks' }] }];
    expect(refusal(decideEphemeralContainers(debugged, pod, CSI))?.reason).toBe('hook-mount-in-ephemeral-container');
  });

  it('with --hook-socket-volume=hostPath injects the hostPath as before, and refuses the CSI volume in its place', async () => {
    const hostPath: MutatorOptions = { ...CSI, hookSocketVolume: 'hostPath' };
    const pod = await admitted(hooked(), hostPath);
    expect(pod.spec!.volumes).toContainEqual({ name: 'cryo-hooks', hostPath: { path: '/var/run/cryo/hooks', type: 'DirectoryOrCreate' } });
    expect(pod.spec!.containers[0].volumeMounts).toContainEqual({ name: 'cryo-hooks', mountPath: '/run/cryo', subPathExpr: '$(CRYO_POD_UID)' });
    // A pod the CSI webhook admitted, sent again to one configured for hostPath, is told why.
    const csiPod = await admitted(hooked());
    expect(refusal(await decide(csiPod, hostPath))?.reason).toBe('reserved-volume-name');
  });
});
