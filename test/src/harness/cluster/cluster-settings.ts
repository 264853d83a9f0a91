/**
 * Where the test cluster lives and how its network is laid out. The values are
 * scripts/cluster/cluster.sh's; the same environment variables move both.
 */
import { existsSync, realpathSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The container runtimes the cluster's kubelet can run on. */
export const CLUSTER_RUNTIMES = ['containerd', 'crio'] as const;
export type ClusterRuntime = (typeof CLUSTER_RUNTIMES)[number];

export interface ClusterSettings {
  /** $CRYO_CLUSTER_DIR: the provisioned root, the Kubernetes binaries, state and logs. */
  clusterDir: string;
  /** The bind-mounted file that keeps the node's mount namespace alive. */
  nsPath: string;
  repoRoot: string;
  script: string;
  /** The node's address on the cluster bridge: the kubelet, the apiserver and the registry for pods. */
  nodeIp: string;
  /** The cluster's registry as the kubelet and the host reach it (loopback, plain HTTP). */
  registry: string;
  /** The same registry as pods reach it. */
  registryForPods: string;
  bridge: string;
  /**
   * The opt-in second node (`openCluster(runtime, { nodes: 2 })`; scripts/cluster/second-node.sh):
   * its own network and mount namespaces on this machine, its node IP on its own bridge, its pods in
   * its own range. The first node is node-1, at nodeIp, its pods in 10.86.0.0/16.
   */
  secondNode: { name: string; ip: string; podCidr: string; nsPath: string; netnsPath: string };
}

const here = dirname(fileURLToPath(import.meta.url));

export function clusterSettings(env: NodeJS.ProcessEnv = process.env): ClusterSettings {
  const clusterDir = env.CRYO_CLUSTER_DIR ?? '/var/lib/cryo-cluster';
  const repoRoot = realpathSync(resolve(here, '../../../..'));
  const runDir = env.CRYO_CLUSTER_RUN_DIR ?? '/run/cryo-cluster';
  return {
    clusterDir,
    nsPath: join(runDir, 'mnt'),
    repoRoot,
    script: join(repoRoot, 'scripts/cluster/cluster.sh'),
    nodeIp: '10.86.0.1',
    registry: '127.0.0.1:5000',
    registryForPods: '10.86.0.1:5000',
    bridge: 'cryo-k8s0',
    secondNode: { name: 'node-2', ip: '10.87.0.1', podCidr: '10.87.0.0/16', nsPath: join(runDir, 'node-2/mnt'), netnsPath: join(runDir, 'net-node-2') },
  };
}

/** Why the cluster cannot run here, or undefined when it can. */
export function clusterUnavailable(settings: ClusterSettings, runtime: ClusterRuntime): string | undefined {
  const fix = 'run `sudo CRYO_KUBE_BIN_DIR=<folder with the Kubernetes v1.34 binaries> bash scripts/cluster/cluster.sh provision` (docs/cluster.md)';
  if (process.platform !== 'linux' || process.getuid?.() !== 0) return `the test cluster needs Linux and root: ${fix}, then run the tests as root`;
  if (!existsSync(join(settings.clusterDir, 'provisioned'))) return `no test cluster at ${settings.clusterDir}: ${fix}`;
  if (!existsSync(join(settings.clusterDir, 'bin/kubelet'))) return `no Kubernetes binaries in ${settings.clusterDir}/bin: ${fix}`;
  if (runtime === 'crio' && !existsSync(join(settings.clusterDir, 'bin/crio'))) {
    return `no CRI-O binaries in ${settings.clusterDir}/bin: provision with CRYO_CRIO_BIN_DIR=<folder with crio, pinns and crictl> set (docs/cluster.md)`;
  }
  return undefined;
}
