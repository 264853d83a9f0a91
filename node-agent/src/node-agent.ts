/**
 * Assembles a running node agent from its configuration: the watch on this node's pods, the hook
 * server it feeds, the Checkpoint controller (kubelet client, archive reader, stores), and
 * /healthz, /readyz and /metrics. main.ts runs it as a process; tests run it in-process.
 */
import type { AddressInfo } from 'node:net';
import type { KubeConfig } from '@kubernetes/client-node';
import { createHealthServer, createLogger, HOOK_CSI_DRIVER, loadKubeConfig, Metrics, type Logger } from '@cryo/common';
import type { NodeAgentConfig } from './config.ts';
import { HookServer } from './hooks/hook-server.ts';
import { NodePodWatcher } from './pods/node-pod-watcher.ts';
import { HookMetrics } from './hooks/hook-metrics.ts';
import { CheckpointMetrics } from './checkpoints/checkpoint-metrics.ts';
import { readFileSync } from 'node:fs';
import { CheckpointController } from './checkpoints/checkpoint-controller.ts';
import { CheckpointRunner } from './checkpoints/checkpoint-runner.ts';
import { StoreResolver } from './checkpoints/store-resolver.ts';
import { KubeletClient } from './kubelet/kubelet-client.ts';
import { KubeletArchives } from './kubelet/kubelet-archives.ts';
import { readCheckpointArchive } from './archive/checkpoint-archive.ts';
import { RestoreRuntimeLabel } from './node/restore-runtime-label.ts';
import { DirectoryRegistryView } from './storage/directory/directory-registry-view.ts';
import { HookCsiDriver } from './csi/hook-csi-driver.ts';
import { PluginRegistration } from './csi/plugin-registration.ts';

/** Said at start by an agent without a default store: until a default CheckpointStorageClass exists, Checkpoints naming no storage fail. */
export const NO_DEFAULT_STORE_WARNING =
  'no default store: Checkpoints that name no storage fail with reason StorageNotConfigured unless a default CheckpointStorageClass is open to their namespace; ' +
  'set --directory (CRYO_DIRECTORY; the DaemonSet in manifests/ sets /var/lib/cryo/checkpoints) or --registry-repository (CRYO_REGISTRY_REPOSITORY)';

export interface RunningNodeAgent {
  port: number;
  /** Where the directory store's registry view listens, when it runs. */
  directoryRegistry?: { host: string; port: number };
  hooks: HookServer;
  checkpoints: CheckpointController;
  metrics: Metrics;
  stop(): Promise<void>;
}

export interface NodeAgentDeps {
  kubeConfig?: KubeConfig;
  logger?: Logger;
  host?: string;
}

export async function startNodeAgent(config: NodeAgentConfig, deps: NodeAgentDeps = {}): Promise<RunningNodeAgent> {
  const logger = deps.logger ?? createLogger('cryo-node-agent');
  const kubeConfig = deps.kubeConfig ?? loadKubeConfig(config.kubeconfig);
  const metrics = new Metrics();
  const hooks = new HookServer({
    hostHooksDir: config.hostHooksDir,
    socketMode: config.hookSocketMode,
    heartbeatIntervalMs: config.hookHeartbeatSeconds * 1000,
    maxConnectionsPerPod: config.hookMaxConnectionsPerPod,
    logger: logger.child({ part: 'hooks' }),
    metrics: new HookMetrics(metrics),
  });
  const kubeletArchives = new KubeletArchives(config.kubeletCheckpointsDir);
  const kubeletUrl = config.kubeletUrl !== '' ? config.kubeletUrl : config.nodeIp !== '' ? `https://${config.nodeIp}:10250` : '';
  const kubelet = new KubeletClient({
    baseUrl: kubeletUrl === '' ? 'https://127.0.0.1:10250' : kubeletUrl,
    tokenFile: config.tokenFile,
    ...(config.kubeletInsecureSkipTlsVerify ? { insecureSkipTlsVerify: true } : { caFile: config.kubeletCaFile }),
    criuLogDirs: config.criuLogDirs,
    logger: logger.child({ part: 'kubelet' }),
  });
  // The view first: a port already taken is a configuration error to fail on, and the image
  // names the store writes carry the port it got.
  const view = config.directory !== '' && config.directoryRegistryAddress !== '' ? new DirectoryRegistryView({ root: config.directory, logger }) : undefined;
  const [viewHost, viewPort] = config.directoryRegistryAddress.split(':');
  const directoryRegistry = view === undefined ? undefined : await view.listen(viewHost, Number(viewPort));
  const stores = new StoreResolver(
    {
      registryRepository: config.registryRepository,
      registryAllowedRepositories: config.registryAllowedRepositories,
      registryDockerConfig: config.registryAuthFile === '' ? '' : readFileSync(config.registryAuthFile, 'utf8'),
      registryInsecure: config.registryInsecure,
      registryCaBundle: config.registryCaFile === '' ? '' : readFileSync(config.registryCaFile, 'utf8'),
      registryChunkBytes: config.registryChunkBytes,
      registryLayerCompression: config.registryLayerCompression,
      directory: config.directory,
      directoryShared: config.directoryShared,
      directoryRegistryAddress: directoryRegistry === undefined ? '' : `${directoryRegistry.host}:${directoryRegistry.port}`,
      namespace: config.namespace,
    },
    logger.child({ part: 'store' }),
    kubeConfig,
  );
  const runner = new CheckpointRunner({
    hooks: { hasPod: (uid) => hooks.socketPath(uid) !== undefined, prepare: (uid, o) => hooks.prepare(uid, o), finish: (uid, id, outcome) => hooks.finish(uid, id, outcome) },
    kubelet,
    // Only regular files in --kubelet-checkpoints-dir are read or deleted, each checked again right before.
    confineKubeletArchive: (archive) => kubeletArchives.confine(archive),
    readArchive: async (archive) => readCheckpointArchive(await kubeletArchives.confine(archive)),
    removeKubeletArchive: (archive) => kubeletArchives.remove(archive),
    logger: logger.child({ part: 'checkpoint' }),
    hookTimeoutMs: config.hookPrepareTimeoutSeconds * 1000,
    kubeletTimeoutSeconds: Math.max(1, Math.round(config.checkpointTimeoutSeconds)),
  });
  const retention =
    config.retentionMaxCount > 0 || config.retentionMaxTotalBytes > 0 || config.retentionMaxAgeSeconds > 0
      ? {
          scope: config.retentionScope,
          ...(config.retentionMaxCount > 0 ? { maxCount: config.retentionMaxCount } : {}),
          ...(config.retentionMaxTotalBytes > 0 ? { maxTotalBytes: config.retentionMaxTotalBytes } : {}),
          ...(config.retentionMaxAgeSeconds > 0 ? { maxAgeSeconds: config.retentionMaxAgeSeconds } : {}),
        }
      : undefined;
  // The controller looks pods up in the watcher, and the watcher tells it of pod changes.
  const pods: { watcher?: NodePodWatcher } = {};
  const checkpoints = new CheckpointController({
    kubeConfig,
    nodeName: config.nodeName,
    pods: { get: (namespace, name) => pods.watcher?.get(namespace, name) },
    runner,
    storeFor: (checkpoint) => stores.storeFor(checkpoint),
    standingStores: () => [stores.defaultDirectoryStore()].filter((store) => store !== undefined),
    logger: logger.child({ part: 'checkpoints' }),
    maxConcurrent: config.maxConcurrentCheckpoints,
    ...(retention !== undefined ? { retention } : {}),
    retentionIntervalMs: config.retentionIntervalSeconds * 1000,
    metrics: new CheckpointMetrics(metrics),
  });
  const watcher = new NodePodWatcher({
    kubeConfig,
    nodeName: config.nodeName,
    server: hooks,
    logger: logger.child({ part: 'pod-watch' }),
    onPod: (pod) => checkpoints.podChanged(pod),
  });
  pods.watcher = watcher;
  const restoreRuntimeLabel = new RestoreRuntimeLabel({
    kubeConfig,
    nodeName: config.nodeName,
    setting: config.runtimeRestore,
    configPaths: { containerdConfig: config.containerdConfig, crioConfig: config.crioConfig, crioConfigDir: config.crioConfigDir },
    logger: logger.child({ part: 'restore-runtime' }),
    metrics,
  });
  const http = createHealthServer({ metrics, notReadyReason: () => {
    if (!watcher.hasSynced) return 'pod watch not synced yet';
    if (!checkpoints.hasSynced) return 'Checkpoint watch not synced yet';
    return undefined;
  } });
  await new Promise<void>((resolve) => http.listen(config.port, deps.host, resolve));
  const port = (http.address() as AddressInfo).port;
  // After the pod watch's first sync (which removes directories of pods that are gone), so that a
  // directory published meanwhile is not among them.
  const csi =
    config.csiEndpoint === ''
      ? undefined
      : {
          driver: new HookCsiDriver({ nodeName: config.nodeName, kubeletPodsDir: config.kubeletPodsDir, directories: hooks, logger: logger.child({ part: 'csi' }) }),
          registration: new PluginRegistration({ driverName: HOOK_CSI_DRIVER, endpoint: config.csiEndpoint, registrationDir: config.kubeletRegistrationDir, logger: logger.child({ part: 'csi' }) }),
        };
  try {
    await watcher.start();
    await checkpoints.start();
    if (csi !== undefined) {
      await csi.driver.listen(config.csiEndpoint);
      await csi.registration.listen();
    }
    // Never fails the start: without the label no pod restores here, checkpoints work all the same.
    await restoreRuntimeLabel.start();
  } catch (error) {
    await csi?.registration.close();
    await csi?.driver.close();
    await watcher.stop().catch(() => {});
    await new Promise((resolve) => http.close(resolve));
    await view?.close();
    throw error;
  }
  logger.info({ node: config.nodeName, port, hostHooksDir: config.hostHooksDir }, 'node agent running');
  if (config.registryRepository === '' && config.directory === '') logger.warn(NO_DEFAULT_STORE_WARNING);
  return {
    port,
    ...(directoryRegistry !== undefined ? { directoryRegistry } : {}),
    hooks,
    checkpoints,
    metrics,
    async stop() {
      // Unregistered first: the kubelet stops calling a driver that is going away.
      await csi?.registration.close();
      await csi?.driver.close();
      await restoreRuntimeLabel.stop();
      await checkpoints.stop();
      await watcher.stop();
      await hooks.close();
      http.closeAllConnections();
      await new Promise((resolve) => http.close(resolve));
      await view?.close();
    },
  };
}
