/**
 * Where the CRIU lab lives and how its network is laid out. Defaults match
 * scripts/lab/provision.sh; the same environment variables move both.
 */
import { realpathSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface LabSettings {
  /** $CRYO_LAB_DIR: the provisioned lab (the trixie root is its `root/`). */
  labDir: string;
  /** The bind-mounted file that keeps the lab's mount namespace alive. */
  nsPath: string;
  /** The repository checkout these tests run from (bind-mounted into containers at the same path). */
  repoRoot: string;
  provisionScript: string;
  /** Host directory for bundles and other per-container files (under the host's /tmp). */
  workDir: string;
  /** Linux bridge in the host network namespace that every pod's veth joins. */
  bridge: string;
  /** The bridge's own address and prefix length, e.g. 10.89.0.1/24; pods get the other addresses. */
  bridgeCidr: string;
}

const here = dirname(fileURLToPath(import.meta.url));

export function labSettings(env: NodeJS.ProcessEnv = process.env): LabSettings {
  const labDir = env.CRYO_LAB_DIR ?? '/var/lib/cryo-lab';
  const runDir = env.CRYO_LAB_RUN_DIR ?? '/run/cryo-lab';
  const repoRoot = realpathSync(resolve(here, '../../../..'));
  return {
    labDir,
    nsPath: join(runDir, 'mnt'),
    repoRoot,
    provisionScript: join(repoRoot, 'scripts/lab/provision.sh'),
    workDir: join(realpathSync(tmpdir()), 'cryo-lab'),
    // 10.89.0.0/24: private, and next to neither Podman's default (10.88.0.0/16) nor Docker's (172.17/16).
    bridge: env.CRYO_LAB_BRIDGE ?? 'cryo-lab0',
    bridgeCidr: env.CRYO_LAB_BRIDGE_CIDR ?? '10.89.0.1/24',
  };
}

/**
 * The repository's own Node 24 as a real file: the npm `node` package's bin/node may be a
 * symlink, and a symlink into node_modules/.bin would not resolve inside a container.
 */
export function repoNodeBinary(repoRoot: string): string {
  return realpathSync(join(repoRoot, 'node_modules/node/bin/node'));
}
