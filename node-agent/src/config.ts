/**
 * The node agent's configuration: flags and env vars with documented defaults
 * (README.md#node-agent-configuration shows the same table, checked by config.test.ts).
 */
import { isAbsolute } from 'node:path';
import {
  formatByteSize,
  formatDuration,
  HOOK_CSI_DRIVER,
  nodeLabels,
  OptionError,
  parseAbsolutePath,
  parseBoolean,
  parseByteSize,
  parseDurationSeconds,
  parseHttpsUrl,
  parseInteger,
  parseIpAddress,
  parseOptionalAbsolutePath,
  parseString,
  readOptions,
  sharedOptionSpecs,
  type OptionSpec,
} from '@cryo/common';
import { parseRepositoryList, storeOptionSpecs } from './store-options.ts';
import { CONTAINERD_K8S_TASK_DIR, CRIO_CONTAINERS_DIR } from './kubelet/criu-dump-log.ts';
import { RUNTIME_RESTORE_FLAG, RUNTIME_RESTORE_SETTINGS, type RuntimeRestoreSetting } from './node/restore-capability.ts';
import { MIN_CHUNK_SIZE_BYTES } from './storage/registry/registry-store.ts';
import { DEFAULT_LAYER_COMPRESSION, LAYER_COMPRESSIONS, type LayerCompression } from './storage/registry/layer-compression.ts';
import { DEFAULT_MAX_CONNECTIONS_PER_POD } from './hooks/hook-limits.ts';

function parseFileMode(raw: string): number {
  if (!/^0?[0-7]{3}$/.test(raw)) throw new OptionError(`expected an octal file mode such as 0660, got "${raw}"`);
  return Number.parseInt(raw, 8);
}

function parseRetentionScope(raw: string): 'container' | 'pod' | 'namespace' {
  if (raw === 'container' || raw === 'pod' || raw === 'namespace') return raw;
  throw new OptionError(`expected container, pod or namespace, got "${raw}"`);
}

function parseChunkSize(raw: string): number {
  const bytes = parseByteSize(0, Number.MAX_SAFE_INTEGER)(raw);
  if (bytes !== 0 && bytes < MIN_CHUNK_SIZE_BYTES) throw new OptionError(`expected 0 (the whole layer in one PATCH) or at least ${MIN_CHUNK_SIZE_BYTES} bytes, got ${bytes}`);
  return bytes;
}

function parseLayerCompression(raw: string): LayerCompression {
  const compression = LAYER_COMPRESSIONS.find((c) => c === raw);
  if (compression === undefined) throw new OptionError(`expected ${LAYER_COMPRESSIONS.join(' or ')}, got "${raw}"`);
  return compression;
}

/** A comma-separated list of absolute paths: the agent may be run from any directory, so no relative ones. */
function parseAbsolutePaths(raw: string): readonly string[] {
  const paths = raw.split(',').map((path) => path.trim()).filter((path) => path !== '');
  if (paths.length === 0) throw new OptionError(`expected absolute paths separated by commas, got "${raw}"`);
  const relative = paths.filter((path) => !isAbsolute(path));
  if (relative.length > 0) throw new OptionError(`expected absolute paths separated by commas; not absolute: ${relative.map((path) => `"${path}"`).join(', ')}`);
  return paths;
}

/**
 * `host:port` with a numeric IPv4 host (the registry view's listen address, also the image names'
 * registry), or `off`, read as '' (none). Not '' itself: readOptions takes an empty value for
 * "not set", which means the default.
 */
function parseListenAddress(raw: string): string {
  if (raw === 'off') return '';
  const match = /^(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})$/.exec(raw);
  if (match === null || match[1].split('.').some((octet) => Number(octet) > 255) || Number(match[2]) > 65535) {
    throw new OptionError(`expected an IPv4 address and port such as 127.0.0.1:5051, or off, got "${raw}"`);
  }
  return raw;
}

function parseRuntimeRestore(raw: string): RuntimeRestoreSetting {
  const setting = RUNTIME_RESTORE_SETTINGS.find((s) => s === raw);
  if (setting === undefined) throw new OptionError(`expected ${RUNTIME_RESTORE_SETTINGS.join(', ')}, got "${raw}"`);
  return setting;
}

export const nodeAgentOptionSpecs = {
  nodeName: {
    flag: '--node-name', env: 'NODE_NAME', default: '', parse: parseString,
    description: 'This node (downward API spec.nodeName); the agent serves only pods scheduled here. Required.',
  } satisfies OptionSpec<string>,
  hostHooksDir: sharedOptionSpecs.hostHooksDir,
  hookSocketMode: {
    flag: '--hook-socket-mode', env: 'CRYO_HOOK_SOCKET_MODE', default: 0o666, parse: parseFileMode, format: (mode) => `0${mode.toString(8)}`,
    description: 'Mode of each pod\'s agent.sock. Containers run as any uid; only the pod itself mounts its directory.',
  } satisfies OptionSpec<number>,
  hookHeartbeatSeconds: {
    flag: '--hook-heartbeat-interval', env: 'CRYO_HOOK_HEARTBEAT_INTERVAL', default: 10, parse: parseDurationSeconds, format: formatDuration,
    description: 'How often the agent pings each connected process; two missed intervals close the connection.',
  } satisfies OptionSpec<number>,
  hookMaxConnectionsPerPod: {
    flag: '--hook-max-connections-per-pod', env: 'CRYO_HOOK_MAX_CONNECTIONS_PER_POD', default: DEFAULT_MAX_CONNECTIONS_PER_POD, parse: parseInteger(1, 1024),
    description: "Connections one pod's processes may have open to its hook socket at once (one per process using the SDK); more are closed at accept and counted in cryo_hook_limits_exceeded_total.",
  } satisfies OptionSpec<number>,
  csiEndpoint: {
    flag: '--csi-endpoint', env: 'CRYO_CSI_ENDPOINT', default: '', parse: parseOptionalAbsolutePath,
    description: `Serve the hook socket's CSI driver (${HOOK_CSI_DRIVER}: each hook-enabled pod's own directory as a read-only inline ephemeral volume) on this unix socket, a path on the node the kubelet reaches, e.g. /var/lib/kubelet/plugins/${HOOK_CSI_DRIVER}/csi.sock, and register it with the kubelet through --kubelet-registration-dir. Unset: no CSI driver (pods then get the socket only through a hostPath).`,
  } satisfies OptionSpec<string>,
  kubeletRegistrationDir: {
    flag: '--kubelet-registration-dir', env: 'CRYO_KUBELET_REGISTRATION_DIR', default: '/var/lib/kubelet/plugins_registry', parse: parseAbsolutePath,
    description: `With --csi-endpoint: the kubelet's plugin registration directory, where the agent serves ${HOOK_CSI_DRIVER}-reg.sock (what node-driver-registrar does).`,
  } satisfies OptionSpec<string>,
  kubeletPodsDir: {
    flag: '--kubelet-pods-dir', env: 'CRYO_KUBELET_PODS_DIR', default: '/var/lib/kubelet/pods', parse: parseAbsolutePath,
    description: "With --csi-endpoint: the kubelet's pods directory, mounted at the same path with Bidirectional propagation; the CSI driver mounts only below <dir>/<pod uid>/volumes/ of the pod the kubelet names.",
  } satisfies OptionSpec<string>,
  namespace: {
    flag: '--namespace', env: 'POD_NAMESPACE', default: 'cryo-node', parse: parseString,
    description: "The agent's own namespace (downward API); push secrets that Checkpoints name are read from it.",
  } satisfies OptionSpec<string>,
  nodeIp: {
    flag: '--node-ip', env: 'NODE_IP', default: '', parse: parseIpAddress,
    description: "This node's address (downward API status.hostIP); the kubelet is reached at https://<node ip>:10250 unless --kubelet-url says otherwise.",
  } satisfies OptionSpec<string>,
  kubeletUrl: {
    flag: '--kubelet-url', env: 'CRYO_KUBELET_URL', default: '', parse: parseHttpsUrl,
    description: "The kubelet's API (default https://<node ip>:10250).",
  } satisfies OptionSpec<string>,
  kubeletCaFile: {
    flag: '--kubelet-ca-file', env: 'CRYO_KUBELET_CA_FILE', default: '/var/run/secrets/kubernetes.io/serviceaccount/ca.crt', parse: parseAbsolutePath,
    description: "CA that signed the kubelet's serving certificate (the cluster CA when kubelets use serverTLSBootstrap).",
  } satisfies OptionSpec<string>,
  kubeletInsecureSkipTlsVerify: {
    flag: '--kubelet-insecure-skip-tls-verify', env: 'CRYO_KUBELET_INSECURE_SKIP_TLS_VERIFY', default: false, parse: parseBoolean,
    description: "Do not verify the kubelet's certificate (self-signed kubelet certificates); the token is still sent only to --kubelet-url.",
  } satisfies OptionSpec<boolean>,
  tokenFile: {
    flag: '--token-file', env: 'CRYO_TOKEN_FILE', default: '/var/run/secrets/kubernetes.io/serviceaccount/token', parse: parseAbsolutePath,
    description: 'Bearer token for the kubelet (the service-account token; re-read on each call, as it rotates).',
  } satisfies OptionSpec<string>,
  kubeletCheckpointsDir: {
    flag: '--kubelet-checkpoints-dir', env: 'CRYO_KUBELET_CHECKPOINTS_DIR', default: '/var/lib/kubelet/checkpoints', parse: parseAbsolutePath,
    description: "Where the kubelet writes archives; mounted at the same path, so the paths it answers are the agent's.",
  } satisfies OptionSpec<string>,
  criuLogDirs: {
    flag: '--criu-log-dirs', env: 'CRYO_CRIU_LOG_DIRS', default: [CONTAINERD_K8S_TASK_DIR, CRIO_CONTAINERS_DIR] as readonly string[], parse: parseAbsolutePaths,
    description: "Comma-separated absolute directories (mounted read-only at the same paths) where the runtime keeps CRIU's dump logs; a failed dump's message gets CRIU's error lines from a log the runtime names inside one.",
  } satisfies OptionSpec<readonly string[]>,
  runtimeRestore: {
    flag: RUNTIME_RESTORE_FLAG, env: 'CRYO_RUNTIME_RESTORE', default: 'auto' as RuntimeRestoreSetting, parse: parseRuntimeRestore,
    description: `Whether this node's runtime restores checkpoints: auto (decided from its version and config files), enabled or disabled (the operator says so). The agent labels the node ${nodeLabels.RESTORE_RUNTIME}=<runtime> when it does; restoring pods run only on nodes so labelled.`,
  } satisfies OptionSpec<RuntimeRestoreSetting>,
  containerdConfig: {
    flag: '--containerd-config', env: 'CRYO_CONTAINERD_CONFIG', default: '/etc/containerd/config.toml', parse: parseAbsolutePath,
    description: "containerd's config file (mounted read-only at the same path; its imports are read too): --runtime-restore=auto reads enable_experimental_restore_via_create from it for containerd 2.2.7+ and 2.3.4+.",
  } satisfies OptionSpec<string>,
  crioConfig: {
    flag: '--crio-config', env: 'CRYO_CRIO_CONFIG', default: '/etc/crio/crio.conf', parse: parseAbsolutePath,
    description: "CRI-O's config file (mounted read-only at the same path): --runtime-restore=auto reads [crio.checkpoint_restore] container_level_enabled and [crio.runtime] enable_criu_support from it.",
  } satisfies OptionSpec<string>,
  crioConfigDir: {
    flag: '--crio-config-dir', env: 'CRYO_CRIO_CONFIG_DIR', default: '/etc/crio/crio.conf.d', parse: parseAbsolutePath,
    description: "CRI-O's drop-in directory: its *.conf files, in name order, override --crio-config, as CRI-O applies them.",
  } satisfies OptionSpec<string>,
  checkpointTimeoutSeconds: {
    flag: '--checkpoint-timeout', env: 'CRYO_CHECKPOINT_TIMEOUT', default: 120, parse: parseDurationSeconds, format: formatDuration,
    description: 'How long the kubelet may take to checkpoint one container.',
  } satisfies OptionSpec<number>,
  hookPrepareTimeoutSeconds: {
    flag: '--hook-prepare-timeout', env: 'CRYO_HOOK_PREPARE_TIMEOUT', default: 30, parse: parseDurationSeconds, format: formatDuration,
    description: "How long a hook-enabled pod's processes may take to prepare (all their pre-checkpoint hooks).",
  } satisfies OptionSpec<number>,
  maxConcurrentCheckpoints: {
    flag: '--max-concurrent-checkpoints', env: 'CRYO_MAX_CONCURRENT_CHECKPOINTS', default: 2, parse: parseInteger(1, 64),
    description: 'Checkpoints run at once on this node (one per pod at a time in any case).',
  } satisfies OptionSpec<number>,
  registryRepository: storeOptionSpecs.registryRepository,
  registryAllowedRepositories: {
    flag: '--registry-allowed-repositories', env: 'CRYO_REGISTRY_ALLOWED_REPOSITORIES', default: [] as readonly string[], parse: parseRepositoryList,
    description: 'Comma-separated repositories, besides --registry-repository, that a Checkpoint may name in spec.storage.registry (each also allows those below it). Every namespace pushes to <repository>/cryo-checkpoints/<namespace>.',
  } satisfies OptionSpec<readonly string[]>,
  registryAuthFile: storeOptionSpecs.registryAuthFile,
  registryCaFile: storeOptionSpecs.registryCaFile,
  registryInsecure: storeOptionSpecs.registryInsecure,
  registryChunkBytes: {
    flag: '--registry-chunk-size', env: 'CRYO_REGISTRY_CHUNK_SIZE', default: 0, defaultText: '0 (one PATCH)', parse: parseChunkSize, format: formatByteSize,
    description: 'Bytes per PATCH when pushing a layer; 0 sends it in one, as docker and containerd do (fastest). Set it for a proxy that limits request bodies.',
  } satisfies OptionSpec<number>,
  registryLayerCompression: {
    flag: '--registry-layer-compression', env: 'CRYO_REGISTRY_LAYER_COMPRESSION', default: DEFAULT_LAYER_COMPRESSION, parse: parseLayerCompression,
    description: "Each checkpoint image's layer: zstd (compressed: fewer bytes to push, store and pull, unpacked at every restore) or none (the archive as it is). A storage class's spec.registry.layerCompression overrides it; figures in docs/operations.md.",
  } satisfies OptionSpec<LayerCompression>,
  directory: storeOptionSpecs.directory,
  directoryShared: {
    flag: '--directory-shared', env: 'CRYO_DIRECTORY_SHARED', default: false, parse: parseBoolean,
    description: 'The directory is the same on every node (NFS, CephFS...): restores may run on any node.',
  } satisfies OptionSpec<boolean>,
  directoryRegistryAddress: {
    flag: '--directory-registry-address', env: 'CRYO_DIRECTORY_REGISTRY_ADDRESS', default: '127.0.0.1:5051', parse: parseListenAddress,
    description: "With --directory: serve the directory store read-only as a registry at this address on the node (the agent runs with the host's network), so pods restore from directory checkpoints by image; the runtime must allow plain HTTP to it (docs/operations.md). Port 0 picks a free port; off turns it off: directory checkpoints are then archives only Podman restores.",
  } satisfies OptionSpec<string>,
  retentionMaxCount: {
    flag: '--retention-max-count', env: 'CRYO_RETENTION_MAX_COUNT', default: 0, parse: parseInteger(0, 1_000_000),
    description: 'Keep at most this many checkpoints per --retention-scope (0: no limit).',
  } satisfies OptionSpec<number>,
  retentionMaxTotalBytes: {
    flag: '--retention-max-total-bytes', env: 'CRYO_RETENTION_MAX_TOTAL_BYTES', default: 0, parse: parseByteSize(0, Number.MAX_SAFE_INTEGER), format: formatByteSize,
    description: 'Keep at most this many bytes per --retention-scope, e.g. 50Gi (0: no limit).',
  } satisfies OptionSpec<number>,
  retentionMaxAgeSeconds: {
    flag: '--retention-max-age', env: 'CRYO_RETENTION_MAX_AGE', default: 0, defaultText: '0 (no limit)', parse: parseDurationSeconds, format: formatDuration,
    description: 'Remove checkpoints older than this (e.g. 7d).',
  } satisfies OptionSpec<number>,
  retentionScope: {
    flag: '--retention-scope', env: 'CRYO_RETENTION_SCOPE', default: 'container' as 'container' | 'pod' | 'namespace', parse: parseRetentionScope,
    description: 'What one retention budget covers: container, pod or namespace.',
  } satisfies OptionSpec<'container' | 'pod' | 'namespace'>,
  retentionIntervalSeconds: {
    flag: '--retention-interval', env: 'CRYO_RETENTION_INTERVAL', default: 600, parse: parseDurationSeconds, format: formatDuration,
    description: 'How often retention also runs when no checkpoint is taken, so an age limit fires in a quiet cluster; it also looks for orphaned data, with no retention limit too (0: only after each checkpoint).',
  } satisfies OptionSpec<number>,
  port: {
    flag: '--port', env: 'CRYO_PORT', default: 8081, parse: parseInteger(0, 65535),
    description: 'HTTP port serving /healthz, /readyz and /metrics (0 picks a free port).',
  } satisfies OptionSpec<number>,
  kubeconfig: sharedOptionSpecs.kubeconfig,
};

export type NodeAgentConfig = ReturnType<typeof readNodeAgentConfig>;

export function readNodeAgentConfig(argv: readonly string[] = process.argv.slice(2), env = process.env) {
  const config = readOptions(nodeAgentOptionSpecs, argv, env);
  if (config.nodeName === '') {
    throw new OptionError('--node-name (NODE_NAME) is required: set it from the downward API field spec.nodeName');
  }
  return config;
}
