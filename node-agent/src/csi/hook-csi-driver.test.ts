/**
 * The hook CSI driver and its kubelet registration, called the way the kubelet calls them: a real
 * gRPC client over the unix sockets, real bind mounts (root: the agent runs as root, and so do
 * these tests), a real hook server serving the socket that appears through the mount.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { HOOK_CSI_DRIVER, HOOK_SOCKET_NAME, silentLogger } from '@cryo/common';
import { waitFor } from '@cryo/test';
import { HookServer } from '../hooks/hook-server.ts';
import { isMountPoint, mountPoints } from './bind-mount.ts';
import { CSI_PROTO, HookCsiDriver, loadProto, POD_INFO, serviceOf } from './hook-csi-driver.ts';
import { PluginRegistration, REGISTRATION_PROTO } from './plugin-registration.ts';

type Call = (request: object) => Promise<Record<string, unknown>>;

/** A client of the named service whose methods return promises. */
function client(socketPath: string, proto: string, service: string): Record<string, Call> & { close(): void } {
  const Client = serviceOf(loadProto(proto), service);
  const raw = new Client(`unix://${socketPath}`, grpc.credentials.createInsecure()) as unknown as grpc.Client & Record<string, (r: object, cb: (e: grpc.ServiceError | null, v: Record<string, unknown>) => void) => void>;
  return new Proxy({} as Record<string, Call> & { close(): void }, {
    get: (_target, name: string) =>
      name === 'close'
        ? () => raw.close()
        : (request: object) => new Promise((resolve, reject) => raw[name](request, (error, value) => (error === null ? resolve(value) : reject(error)))),
  });
}

let dir: string;
let hooksDir: string;
let podsDir: string;
let hooks: HookServer;
let driver: HookCsiDriver;
let node: ReturnType<typeof client>;
let identity: ReturnType<typeof client>;

const pod = { uid: randomUUID(), name: 'app-0', namespace: 'shop' };
const volumeId = 'csi-6e0b8c1c1d0f5e0a2b8f0d2a3c4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60';
const podContext = (p = pod) => ({ [POD_INFO.uid]: p.uid, [POD_INFO.name]: p.name, [POD_INFO.namespace]: p.namespace, [POD_INFO.serviceAccount]: 'default', [POD_INFO.ephemeral]: 'true' });
const targetOf = (uid: string, volume = 'cryo-hooks') => path.join(podsDir, uid, 'volumes', 'kubernetes.io~csi', volume, 'mount');
const mountCapability = { mount: { fsType: '', mountFlags: [] }, accessMode: { mode: 'SINGLE_NODE_WRITER' } };
const publishRequest = (overrides: object = {}) => ({ volumeId, targetPath: targetOf(pod.uid), volumeCapability: mountCapability, readonly: true, volumeContext: podContext(), ...overrides });

/** The kubelet makes the target's parent (the volume's directory) before it publishes. */
async function kubeletMakesVolumeDir(uid: string, volume = 'cryo-hooks'): Promise<void> {
  await mkdir(path.dirname(targetOf(uid, volume)), { recursive: true });
}

const grpcCode = (promise: Promise<unknown>) => promise.then(() => 'OK', (error: grpc.ServiceError) => `${grpc.status[error.code]}: ${error.details}`);
const mountsBelow = async (root: string) => (await mountPoints()).filter((m) => m.startsWith(`${root}/`));

describe.skipIf(process.getuid?.() !== 0)('the hook socket CSI driver (as root: it bind-mounts)', () => {
  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'cryo-csi-'));
    hooksDir = path.join(dir, 'hooks');
    podsDir = path.join(dir, 'kubelet', 'pods');
    await mkdir(podsDir, { recursive: true });
    hooks = new HookServer({ hostHooksDir: hooksDir, logger: silentLogger() });
    driver = new HookCsiDriver({ nodeName: 'node-1', kubeletPodsDir: podsDir, directories: hooks, logger: silentLogger() });
    const endpoint = path.join(dir, 'plugins', HOOK_CSI_DRIVER, 'csi.sock');
    await driver.listen(endpoint);
    node = client(endpoint, CSI_PROTO, 'csi.v1.Node');
    identity = client(endpoint, CSI_PROTO, 'csi.v1.Identity');
  });

  afterEach(async () => {
    node.close();
    identity.close();
    await driver.close();
    await hooks.close();
    // Never leave a mount behind in the temp dir, whatever a test did.
    for (const mount of (await mountsBelow(dir)).reverse()) await import('./bind-mount.ts').then((m) => m.unmount(mount));
    await rm(dir, { recursive: true, force: true });
  });

  it('says who it is (Identity) and what it does (Node): no controller, no staging, this node', async () => {
    expect(await identity.GetPluginInfo({})).toEqual({ name: HOOK_CSI_DRIVER, vendorVersion: '0.1.0', manifest: {} });
    expect(await identity.GetPluginCapabilities({})).toEqual({ capabilities: [] });
    expect(await identity.Probe({})).toEqual({ ready: { value: true } });
    expect(await node.NodeGetCapabilities({})).toEqual({ capabilities: [] });
    expect(await node.NodeGetInfo({})).toMatchObject({ nodeId: 'node-1', maxVolumesPerNode: 0 });
  });

  it("publishes the pod's own hook directory read-only at the target; its socket, served later, is reachable through it", async () => {
    await kubeletMakesVolumeDir(pod.uid);
    expect(await node.NodePublishVolume(publishRequest())).toEqual({});
    const target = targetOf(pod.uid);
    expect(await isMountPoint(target)).toBe(true);
    // Read-only: the pod can put nothing into its directory.
    await expect(writeFile(path.join(target, 'planted'), 'x')).rejects.toMatchObject({ code: 'EROFS' });
    // The pod watch tells the hook server of the pod after the kubelet published: the socket appears in the mounted directory.
    await hooks.addPod(pod);
    expect(hooks.socketPath(pod.uid)).toBe(path.join(hooksDir, pod.uid, HOOK_SOCKET_NAME));
    // Through a short symlink: the whole path is longer than a unix socket address may be.
    await symlink(target, path.join(dir, 't'));
    const socket = net.connect(path.join(dir, 't', HOOK_SOCKET_NAME));
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    socket.destroy();
    expect(await readdir(path.join(hooksDir, pod.uid))).toEqual([HOOK_SOCKET_NAME]);
  });

  it('is idempotent: a second publish of the same target succeeds and mounts nothing more; a second unpublish succeeds', async () => {
    await kubeletMakesVolumeDir(pod.uid);
    await node.NodePublishVolume(publishRequest());
    await node.NodePublishVolume(publishRequest());
    // Two at once (a retry while the first runs) as well.
    await Promise.all([node.NodePublishVolume(publishRequest()), node.NodePublishVolume(publishRequest())]);
    expect(await mountsBelow(podsDir)).toEqual([targetOf(pod.uid)]);
    expect(await node.NodeUnpublishVolume({ volumeId, targetPath: targetOf(pod.uid) })).toEqual({});
    expect(await mountsBelow(podsDir)).toEqual([]);
    await expect(stat(targetOf(pod.uid))).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await node.NodeUnpublishVolume({ volumeId, targetPath: targetOf(pod.uid) })).toEqual({});
  });

  it('unpublishing removes the directory of a pod the hook server does not serve, and keeps the one of a pod it serves', async () => {
    const served = { uid: randomUUID(), name: 'served', namespace: 'shop' };
    for (const p of [pod, served]) {
      await kubeletMakesVolumeDir(p.uid);
      await node.NodePublishVolume(publishRequest({ targetPath: targetOf(p.uid), volumeContext: podContext(p) }));
    }
    await hooks.addPod(served);
    // A sync (an agent's start) keeps published directories, though their pods are not (yet) served.
    await hooks.sync([served]);
    expect((await readdir(hooksDir)).filter((e) => !e.startsWith('.')).sort()).toEqual([pod.uid, served.uid].sort());
    for (const p of [pod, served]) await node.NodeUnpublishVolume({ volumeId, targetPath: targetOf(p.uid) });
    await waitFor(async () => ((await readdir(hooksDir)).filter((e) => !e.startsWith('.')).join() === served.uid ? true : undefined), { timeoutMs: 5_000, what: 'only the served pod directory left' });
  });

  it('unpublishing what was never published succeeds', async () => {
    const never = randomUUID();
    expect(await node.NodeUnpublishVolume({ volumeId: 'csi-never', targetPath: targetOf(never) })).toEqual({});
    await kubeletMakesVolumeDir(never);
    await mkdir(targetOf(never));
    expect(await node.NodeUnpublishVolume({ volumeId: 'csi-never', targetPath: targetOf(never) })).toEqual({});
    await expect(stat(targetOf(never))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('refuses a publish without the pod uid (a CSIDriver without podInfoOnMount), or with something else as uid', async () => {
    await kubeletMakesVolumeDir(pod.uid);
    expect(await grpcCode(node.NodePublishVolume(publishRequest({ volumeContext: {} })))).toMatch(/^INVALID_ARGUMENT: volume_context has no csi\.storage\.k8s\.io\/pod\.uid: the CSIDriver hooks\.cryo\.dev must have podInfoOnMount: true/);
    expect(await grpcCode(node.NodePublishVolume(publishRequest({ volumeContext: { ...podContext(), [POD_INFO.uid]: '../hooks' } })))).toMatch(/^INVALID_ARGUMENT: csi\.storage\.k8s\.io\/pod\.uid is not a pod uid/);
    // Attributes of the pod's own (volumeAttributes in its spec) are refused: the driver takes none.
    expect(await grpcCode(node.NodePublishVolume(publishRequest({ volumeContext: { ...podContext(), path: '/' } })))).toMatch(/^INVALID_ARGUMENT: hooks\.cryo\.dev takes no volumeAttributes; remove "path"/);
    expect(await grpcCode(node.NodePublishVolume(publishRequest({ volumeId: '' })))).toBe('INVALID_ARGUMENT: volume_id is empty');
    expect(await grpcCode(node.NodePublishVolume(publishRequest({ volumeCapability: { block: {}, accessMode: { mode: 'SINGLE_NODE_WRITER' } } })))).toMatch(/^INVALID_ARGUMENT: .*not block devices/);
    expect(await mountsBelow(dir)).toEqual([]);
  });

  it("refuses a target path that is not the named pod's own CSI volume directory", async () => {
    const other = randomUUID();
    await kubeletMakesVolumeDir(other);
    const refused = [
      // Another pod's volume directory: the mount would give that pod this one's socket.
      [targetOf(other), `INVALID_ARGUMENT: target_path ${targetOf(other)} belongs to pod ${other}, not to pod ${pod.uid} that the kubelet named`],
      // Outside the kubelet's pods directory, or not a CSI volume's mount directory of the pod.
      [path.join(dir, 'elsewhere'), 'is not a CSI volume of a pod'],
      [path.join(podsDir, pod.uid, 'volumes', 'kubernetes.io~csi', 'cryo-hooks', 'mount', '..', '..', '..', '..', '..', other, 'volumes', 'kubernetes.io~csi', 'x', 'mount'), 'belongs to pod'],
      [path.join(podsDir, pod.uid, 'volumes', 'kubernetes.io~empty-dir', 'cryo-hooks', 'mount'), 'is not a CSI volume of a pod'],
      [path.join(podsDir, pod.uid, 'etc-hosts'), 'is not a CSI volume of a pod'],
      ['relative/path', 'is not a CSI volume of a pod'],
      ['', 'INVALID_ARGUMENT: target_path is empty'],
    ];
    for (const [targetPath, message] of refused) {
      expect(await grpcCode(node.NodePublishVolume(publishRequest({ targetPath }))), targetPath).toContain(message);
    }
    expect(await grpcCode(node.NodeUnpublishVolume({ volumeId, targetPath: path.join(dir, 'elsewhere') }))).toContain('is not a CSI volume of a pod');
    expect(await mountsBelow(dir)).toEqual([]);
    await expect(stat(path.join(dir, 'elsewhere'))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('registration with the kubelet (plugin registration API v1)', () => {
  let registrationDir: string;
  let registration: PluginRegistration;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'cryo-csi-reg-'));
    registrationDir = path.join(dir, 'plugins_registry');
    registration = new PluginRegistration({ driverName: HOOK_CSI_DRIVER, endpoint: '/var/lib/kubelet/plugins/hooks.cryo.dev/csi.sock', registrationDir, logger: silentLogger() });
    await registration.listen();
  });

  afterEach(async () => {
    await registration.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('answers GetInfo as a CSI plugin at its endpoint, records NotifyRegistrationStatus, and removes its socket when closed', async () => {
    expect(registration.socketPath).toBe(path.join(registrationDir, `${HOOK_CSI_DRIVER}-reg.sock`));
    const kubelet = client(registration.socketPath, REGISTRATION_PROTO, 'pluginregistration.Registration');
    try {
      expect(await kubelet.GetInfo({})).toEqual({ type: 'CSIPlugin', name: HOOK_CSI_DRIVER, endpoint: '/var/lib/kubelet/plugins/hooks.cryo.dev/csi.sock', supportedVersions: ['1.0.0'] });
      expect(await kubelet.NotifyRegistrationStatus({ pluginRegistered: false, error: 'driver name taken' })).toEqual({});
      expect(registration.lastStatus).toEqual({ registered: false, error: 'driver name taken' });
      await kubelet.NotifyRegistrationStatus({ pluginRegistered: true });
      expect(registration.lastStatus).toEqual({ registered: true, error: '' });
    } finally {
      kubelet.close();
    }
    await registration.close();
    expect(await readdir(registrationDir)).toEqual([]);
  });

  it('replaces a stale socket of an earlier agent, and refuses to replace anything else', async () => {
    await registration.close();
    // A socket file whose server is gone, as a killed agent leaves it.
    const stale = net.createServer().listen(registration.socketPath);
    await new Promise((resolve) => stale.once('listening', resolve));
    stale.close();
    await writeFile(path.join(registrationDir, 'unrelated'), 'x');
    const again = new PluginRegistration({ driverName: HOOK_CSI_DRIVER, endpoint: '/csi.sock', registrationDir, logger: silentLogger() });
    await again.listen();
    await again.close();
    const file = new PluginRegistration({ driverName: 'unrelated', endpoint: '/csi.sock', registrationDir, logger: silentLogger() });
    await rm(path.join(registrationDir, 'unrelated'));
    await writeFile(file.socketPath, 'not a socket');
    await expect(file.listen()).rejects.toThrow(/exists and is not a socket/);
  });
});
