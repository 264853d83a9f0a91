/**
 * The entry to the CRIU lab scripts/lab/provision.sh makes: real CRIU 4.2 and crun in a Debian 13
 * root, entered through a persistent mount namespace (docs/lab.md). Tests open it once per file:
 *
 *   const lab = await openLab();
 *   describe.skipIf('skip' in lab)('...', () => { ... });
 */
import { existsSync, realpathSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve } from 'node:path';
import type { LabContainer, RestoreContainerOptions, RunContainerOptions } from './lab-container.ts';
import { restoreContainer, runContainer } from './lab-container.ts';
import { parseIpv4Cidr } from './ipv4.ts';
import type { LabPod } from './lab-pod.ts';
import { createPod, ensureBridge } from './lab-pod.ts';
import type { LabSettings } from './lab-settings.ts';
import { labSettings, repoNodeBinary } from './lab-settings.ts';
import type { CommandOptions, CommandResult } from './run-command.ts';
import { runCommand } from './run-command.ts';

export interface LabExecOptions extends CommandOptions {
  /** Environment of the command (it gets only PATH and HOME besides). */
  env?: Record<string, string>;
}

export interface Lab {
  settings: LabSettings;
  /** The repository's Node 24 as a real file, runnable inside containers (trixie's glibc). */
  nodeBinary: string;
  /** The host's address on the lab bridge: pods reach servers the tests run on it. */
  hostAddress: string;
  /** Runs a command inside the lab namespace (trixie's tools, the host's network namespace). */
  exec(argv: string[], options?: LabExecOptions): Promise<CommandResult>;
  /** The path inside the lab namespace of a host path (the host's root is at /host there). */
  hostPath(path: string): string;
  createPod(name: string): Promise<LabPod>;
  runContainer(options: RunContainerOptions): Promise<LabContainer>;
  restoreContainer(options: RestoreContainerOptions): Promise<{ container: LabContainer; durationMs: number }>;
  /** Removes every container and pod this lab made (the lab itself stays for the next test file). */
  close(): Promise<void>;
}

/**
 * `path` with its existing part resolved: an absolute symlink on the host (say /var/lib -> /data)
 * would point into the trixie root, not under /host, once inside the lab namespace.
 */
function realHostPath(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    const parent = dirname(path);
    return parent === path ? path : join(realHostPath(parent), basename(path));
  }
}

const FIX = 'run `sudo bash scripts/lab/provision.sh`';

export async function openLab(settings: LabSettings = labSettings()): Promise<Lab | { skip: string }> {
  if (process.platform !== 'linux' || process.getuid?.() !== 0) return { skip: `the CRIU lab needs Linux and root: ${FIX}, then run the tests as root` };
  if (!existsSync(join(settings.labDir, 'provisioned'))) return { skip: `no CRIU lab at ${settings.labDir}: ${FIX}` };
  // The namespace does not survive a reboot (or provision.sh cleanup); making it takes ~0.1 s.
  const ns = await runCommand(['bash', settings.provisionScript, 'ns'], { timeoutMs: 30_000 });
  if (ns.code === 3) return { skip: ns.stderr.trim() }; // provisioned by an older provision.sh
  if (ns.code !== 0) throw new Error(`cannot (re)create the lab namespace: bash ${settings.provisionScript} ns\n${ns.stderr}${ns.stdout}`);

  const exec = (argv: string[], options: LabExecOptions = {}): Promise<CommandResult> => {
    const env = Object.entries(options.env ?? {}).map(([k, v]) => `${k}=${v}`);
    const inLab = ['nsenter', `--mount=${settings.nsPath}`, '--', '/usr/bin/env', '-i', 'PATH=/usr/sbin:/usr/bin:/sbin:/bin', 'HOME=/root', ...env, ...argv];
    return runCommand(inLab, options);
  };
  const hostPath = (path: string): string => join('/host', realHostPath(resolve(path)));
  await ensureBridge(exec, settings);
  await mkdir(settings.workDir, { recursive: true });

  const nodeBinary = repoNodeBinary(settings.repoRoot);
  const containers = new Set<LabContainer>();
  const pods = new Set<LabPod>();
  const ctx = {
    exec,
    hostPath,
    rootfs: hostPath(join(settings.labDir, 'root')),
    workDir: settings.workDir,
    // The repository (scripts, node_modules) and, when it lives elsewhere, the Node binary's directory.
    defaultMounts: relative(settings.repoRoot, nodeBinary).startsWith('..') ? [settings.repoRoot, dirname(nodeBinary)] : [settings.repoRoot],
    track: (container: LabContainer, removed = false) => {
      if (removed) containers.delete(container);
      else containers.add(container);
    },
  };
  return {
    settings,
    nodeBinary,
    hostAddress: parseIpv4Cidr(settings.bridgeCidr).address,
    exec,
    hostPath,
    createPod: async (name) => {
      const pod = await createPod(exec, settings, name);
      const tracked: LabPod = { ...pod, remove: () => pod.remove().finally(() => pods.delete(tracked)) };
      pods.add(tracked);
      return tracked;
    },
    runContainer: (options) => runContainer(ctx, options),
    restoreContainer: (options) => restoreContainer(ctx, options),
    close: async () => {
      // Containers first: a pod's network namespace goes away only when nothing is left in it.
      // One failure must not leave the rest behind.
      const errors: unknown[] = [];
      for (const item of [...[...containers].reverse(), ...[...pods].reverse()]) {
        await item.remove().catch((err: unknown) => errors.push(err));
      }
      if (errors.length > 0) throw new AggregateError(errors, `lab.close: ${errors.length} removal(s) failed: ${errors.map(String).join('; ')}`);
    },
  };
}
