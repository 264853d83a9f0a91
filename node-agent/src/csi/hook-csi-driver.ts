/**
 * The hook socket as a CSI inline ephemeral volume (driver hooks.cryo.dev). The webhook gives a
 * hook-enabled pod `csi: { driver: hooks.cryo.dev, readOnly: true }` instead of a hostPath, which
 * Pod Security `restricted` allows; the kubelet then calls NodePublishVolume on this node's agent,
 * naming the pod (podInfoOnMount: csi.storage.k8s.io/pod.uid, pod.name, pod.namespace, and
 * ephemeral=true) and a target path in that pod's own volume directory. The agent bind-mounts that
 * pod's hook directory, `<hostHooksDir>/<pod uid>` (made if the pod watch has not made it yet), at
 * the target, read-only: a unix socket still accepts connections on a read-only mount (the kernel
 * checks write permission on sockets against the file mode only), and the pod can put nothing in
 * the directory.
 *
 * Why the pod reaches only its own socket: the uid comes from the kubelet (podInfoOnMount values
 * replace any the pod spec sets), it must be a pod uid, and the target path must be
 * `<kubeletPodsDir>/<that uid>/volumes/kubernetes.io~csi/<volume>/mount`, so a volume is only ever
 * the directory of the pod it is mounted into. Volume attributes of the pod's own are refused.
 *
 * Identity: GetPluginInfo, GetPluginCapabilities (none: no controller), Probe. Node:
 * NodeGetCapabilities (none: no staging), NodeGetInfo (the node name), NodePublishVolume,
 * NodeUnpublishVolume; both idempotent, as the CSI specification requires: publishing a mounted
 * target again succeeds, unpublishing a target that is not mounted (or not there) succeeds.
 */
import { lstat, mkdir, rmdir, unlink } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { HOOK_CSI_DRIVER, type Logger } from '@cryo/common';
import { POD_UID_PATTERN } from '../hooks/hook-pod.ts';
import { bindMountReadOnly, isMountPoint, unmount } from './bind-mount.ts';

export const CSI_VERSION = '1.0.0';
export const CSI_PROTO = fileURLToPath(new URL('./csi.proto', import.meta.url));

/** What the kubelet puts into volume_context for a CSIDriver with podInfoOnMount. */
export const POD_INFO = {
  uid: 'csi.storage.k8s.io/pod.uid',
  name: 'csi.storage.k8s.io/pod.name',
  namespace: 'csi.storage.k8s.io/pod.namespace',
  serviceAccount: 'csi.storage.k8s.io/serviceAccount.name',
  ephemeral: 'csi.storage.k8s.io/ephemeral',
} as const;

const LOADER_OPTIONS: protoLoader.Options = { keepCase: false, longs: Number, enums: String, defaults: true, oneofs: true };

/** A package definition's services, as grpc-js loads them. */
export function loadProto(file: string): grpc.GrpcObject {
  return grpc.loadPackageDefinition(protoLoader.loadSync(file, LOADER_OPTIONS));
}

export function serviceOf(root: grpc.GrpcObject, name: string): grpc.ServiceClientConstructor {
  const found = name.split('.').reduce<unknown>((node, part) => (node as Record<string, unknown>)[part], root);
  if (typeof found !== 'function') throw new Error(`no service ${name} in the loaded proto`);
  return found as grpc.ServiceClientConstructor;
}

/** What the driver needs of the hook server: the pod's directory, kept while published. */
export interface HookDirectories {
  publishedDirectory(uid: string): Promise<string>;
  unpublishedDirectory(uid: string): Promise<void>;
}

export interface HookCsiDriverOptions {
  nodeName: string;
  /** The kubelet's pods directory (<root dir>/pods) as the agent sees it: every target path is below it. */
  kubeletPodsDir: string;
  directories: HookDirectories;
  logger: Logger;
  driverName?: string;
  vendorVersion?: string;
}

interface PublishRequest {
  volumeId: string;
  targetPath: string;
  readonly: boolean;
  volumeContext: Record<string, string>;
  stagingTargetPath: string;
  volumeCapability: { block?: object | null; mount?: object | null } | null;
}

interface UnpublishRequest {
  volumeId: string;
  targetPath: string;
}

/** A CSI error: the gRPC status code and a message the kubelet shows in the pod's events. */
export class CsiError extends Error {
  override name = 'CsiError';
  readonly code: grpc.status;
  constructor(code: grpc.status, message: string) {
    super(message);
    this.code = code;
  }
}

type Handler<Req, Res> = (request: Req) => Promise<Res>;

export class HookCsiDriver {
  private readonly options: Required<HookCsiDriverOptions>;
  private server: grpc.Server | null = null;
  /** One publish or unpublish per target at a time: the kubelet may retry while one runs. */
  private readonly busy = new Map<string, Promise<unknown>>();

  constructor(options: HookCsiDriverOptions) {
    this.options = { driverName: HOOK_CSI_DRIVER, vendorVersion: '0.1.0', ...options };
  }

  get driverName(): string {
    return this.options.driverName;
  }

  /** Serves the Identity and Node services on the unix socket `endpoint` (a stale socket there is replaced). */
  async listen(endpoint: string): Promise<void> {
    const root = loadProto(CSI_PROTO);
    const server = new grpc.Server();
    server.addService(serviceOf(root, 'csi.v1.Identity').service, {
      GetPluginInfo: this.unary('GetPluginInfo', () => Promise.resolve({ name: this.options.driverName, vendorVersion: this.options.vendorVersion, manifest: {} })),
      GetPluginCapabilities: this.unary('GetPluginCapabilities', () => Promise.resolve({ capabilities: [] })),
      Probe: this.unary('Probe', () => Promise.resolve({ ready: { value: true } })),
    });
    server.addService(serviceOf(root, 'csi.v1.Node').service, {
      NodeGetCapabilities: this.unary('NodeGetCapabilities', () => Promise.resolve({ capabilities: [] })),
      NodeGetInfo: this.unary('NodeGetInfo', () => Promise.resolve({ nodeId: this.options.nodeName, maxVolumesPerNode: 0 })),
      NodePublishVolume: this.unary('NodePublishVolume', (request: PublishRequest) => this.serialized(request.targetPath, () => this.publish(request))),
      NodeUnpublishVolume: this.unary('NodeUnpublishVolume', (request: UnpublishRequest) => this.serialized(request.targetPath, () => this.unpublish(request))),
    });
    await bindUnixSocket(server, endpoint);
    this.server = server;
    this.options.logger.info({ endpoint, driver: this.options.driverName }, 'CSI driver serving');
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (server === null) return;
    await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
  }

  async publish(request: PublishRequest): Promise<object> {
    const context = request.volumeContext ?? {};
    const uid = context[POD_INFO.uid] ?? '';
    const log = this.options.logger.child({ volumeId: request.volumeId, podUid: uid, pod: `${context[POD_INFO.namespace] ?? ''}/${context[POD_INFO.name] ?? ''}` });
    if (request.volumeId === '') throw new CsiError(grpc.status.INVALID_ARGUMENT, 'volume_id is empty');
    if (request.targetPath === '') throw new CsiError(grpc.status.INVALID_ARGUMENT, 'target_path is empty');
    if (request.volumeCapability?.block) throw new CsiError(grpc.status.INVALID_ARGUMENT, `${this.options.driverName} volumes are directories, not block devices`);
    if (uid === '') {
      throw new CsiError(
        grpc.status.INVALID_ARGUMENT,
        `volume_context has no ${POD_INFO.uid}: the CSIDriver ${this.options.driverName} must have podInfoOnMount: true (manifests/csi-driver.yaml)`,
      );
    }
    if (!POD_UID_PATTERN.test(uid)) throw new CsiError(grpc.status.INVALID_ARGUMENT, `${POD_INFO.uid} is not a pod uid: ${JSON.stringify(uid)}`);
    const foreign = Object.keys(context).filter((key) => !key.startsWith('csi.storage.k8s.io/'));
    if (foreign.length > 0) {
      throw new CsiError(grpc.status.INVALID_ARGUMENT, `${this.options.driverName} takes no volumeAttributes; remove ${foreign.map((k) => JSON.stringify(k)).join(', ')}`);
    }
    const target = this.confineTarget(request.targetPath, uid);
    const source = await this.options.directories.publishedDirectory(uid);
    await mkdir(target, { mode: 0o750 }).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'EEXIST') throw error;
    });
    const stats = await lstat(target);
    if (!stats.isDirectory()) throw new CsiError(grpc.status.FAILED_PRECONDITION, `target_path ${target} is not a directory`);
    if (await isMountPoint(target)) {
      log.debug({ target }, 'hook directory already published');
      return {};
    }
    await bindMountReadOnly(source, target);
    log.info({ target, source }, 'hook directory published, read-only');
    return {};
  }

  async unpublish(request: UnpublishRequest): Promise<object> {
    if (request.volumeId === '') throw new CsiError(grpc.status.INVALID_ARGUMENT, 'volume_id is empty');
    if (request.targetPath === '') throw new CsiError(grpc.status.INVALID_ARGUMENT, 'target_path is empty');
    const uid = this.podOfTarget(request.targetPath);
    if (uid === undefined) throw new CsiError(grpc.status.INVALID_ARGUMENT, this.targetShape(request.targetPath));
    const target = path.normalize(request.targetPath);
    // A bind mount may be stacked (a publish retried by hand): unmount until nothing is left.
    for (let i = 0; i < 8 && (await isMountPoint(target)); i++) await unmount(target);
    await rmdir(target).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw error;
    });
    await this.options.directories.unpublishedDirectory(uid);
    this.options.logger.info({ volumeId: request.volumeId, podUid: uid, target }, 'hook directory unpublished');
    return {};
  }

  /** The pod uid a target path belongs to, if it has the kubelet's shape for a CSI volume. */
  private podOfTarget(targetPath: string): string | undefined {
    if (!path.isAbsolute(targetPath)) return undefined;
    const relative = path.relative(this.options.kubeletPodsDir, path.normalize(targetPath));
    const parts = relative.split(path.sep);
    if (parts.length !== 5 || parts[1] !== 'volumes' || parts[2] !== 'kubernetes.io~csi' || parts[4] !== 'mount') return undefined;
    if (!POD_UID_PATTERN.test(parts[0]) || parts[3] === '' || parts[3] === '.' || parts[3] === '..') return undefined;
    return parts[0];
  }

  private targetShape(targetPath: string): string {
    return `target_path ${JSON.stringify(targetPath)} is not a CSI volume of a pod (${path.join(this.options.kubeletPodsDir, '<pod uid>/volumes/kubernetes.io~csi/<volume>/mount')})`;
  }

  private confineTarget(targetPath: string, uid: string): string {
    const owner = this.podOfTarget(targetPath);
    if (owner === undefined) throw new CsiError(grpc.status.INVALID_ARGUMENT, this.targetShape(targetPath));
    if (owner !== uid) throw new CsiError(grpc.status.INVALID_ARGUMENT, `target_path ${targetPath} belongs to pod ${owner}, not to pod ${uid} that the kubelet named`);
    return path.normalize(targetPath);
  }

  private async serialized<T>(key: string, work: () => Promise<T>): Promise<T> {
    const before = this.busy.get(key) ?? Promise.resolve();
    const next = before.catch(() => {}).then(work);
    this.busy.set(key, next);
    try {
      return await next;
    } finally {
      if (this.busy.get(key) === next) this.busy.delete(key);
    }
  }

  private unary<Req, Res>(method: string, handler: Handler<Req, Res>): grpc.handleUnaryCall<Req, Res> {
    return (call, callback) => {
      handler(call.request).then(
        (response) => callback(null, response),
        (error: unknown) => {
          const code = error instanceof CsiError ? error.code : grpc.status.INTERNAL;
          const message = (error as Error).message;
          this.options.logger.warn({ method, code: grpc.status[code], err: message }, 'CSI call failed');
          callback({ code, details: message });
        },
      );
    };
  }
}

/** Binds a gRPC server to a unix socket, replacing a stale socket file (never anything else). */
export async function bindUnixSocket(server: grpc.Server, socketPath: string): Promise<void> {
  await mkdir(path.dirname(socketPath), { recursive: true, mode: 0o750 });
  const stats = await lstat(socketPath).catch(() => null);
  if (stats !== null) {
    if (!stats.isSocket()) throw new Error(`${socketPath} exists and is not a socket; the agent does not replace it`);
    await unlink(socketPath);
  }
  await new Promise<void>((resolve, reject) => {
    server.bindAsync(`unix://${socketPath}`, grpc.ServerCredentials.createInsecure(), (error) => (error === null ? resolve() : reject(error)));
  });
}
