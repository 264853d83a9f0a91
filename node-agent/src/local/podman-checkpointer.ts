/**
 * Checkpoints a Podman container into an archive, the way CRI-O checkpoints one for the kubelet:
 * `podman container checkpoint --leave-running --export=<file>.tar --compress=none <name>`.
 * No `--tcp-established` (CRI-O does not pass it either: an app with open connections must close
 * them in its pre-checkpoint hooks), and an uncompressed tar, which is what the stores take.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { DEFAULT_PODMAN_ARGV, podmanOk, type PodmanCommandOptions } from './podman-command.ts';

export interface PodmanCheckpointOptions extends PodmanCommandOptions {
  /** Directory the archive is written to (created if missing). */
  exportDir: string;
  /** Keep the container running after the dump (default true, as CRI-O does). */
  leaveRunning?: boolean;
  /** How Podman is run; default `['podman']`. */
  podmanArgv?: readonly string[];
  /**
   * The path Podman sees for a path of this process, when Podman runs in another mount
   * namespace (the CRIU lab: the host's root is at /host there). Default: the same path.
   */
  podmanPath?: (path: string) => string;
}

export interface PodmanCheckpointResult {
  /** The archive, as a path of this process. */
  archivePath: string;
  durationMs: number;
}

/** A name Podman accepts and a file system does too. */
const CONTAINER_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

export async function checkpointPodmanContainer(name: string, options: PodmanCheckpointOptions): Promise<PodmanCheckpointResult> {
  if (!CONTAINER_NAME.test(name)) throw new Error(`not a Podman container name or id: "${name}"`);
  const { exportDir, leaveRunning = true, podmanArgv = DEFAULT_PODMAN_ARGV, podmanPath = (p: string) => p } = options;
  const dir = resolve(exportDir);
  await mkdir(dir, { recursive: true });
  const archivePath = join(dir, `${name}-${new Date().toISOString().replace(/[-:.]/g, '')}-${randomBytes(3).toString('hex')}.tar`);
  const args = [
    'container', 'checkpoint',
    ...(leaveRunning ? ['--leave-running'] : []),
    `--export=${podmanPath(archivePath)}`,
    '--compress=none',
    name,
  ];
  const start = performance.now();
  try {
    await podmanOk(podmanArgv, args, { timeoutMs: options.timeoutMs, signal: options.signal, what: `podman container checkpoint of "${name}"` });
  } catch (error) {
    await rm(archivePath, { force: true }); // a half-written export must not look like a checkpoint
    throw error;
  }
  return { archivePath, durationMs: performance.now() - start };
}
