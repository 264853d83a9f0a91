/**
 * Lab containers: crun runs them from a generated bundle inside the lab namespace, checkpoints
 * them with CRIU as CRI-O does (`--file-locks --leave-running`, no `--tcp-established`) and
 * restores a checkpoint as a new container into another pod.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { clearCgroups } from './lab-cgroups.ts';
import type { LabExec, LabPod } from './lab-pod.ts';
import { criuLogTail } from './criu-log.ts';
import type { LabBindMount, OciSpec } from './oci-spec.ts';
import { buildSpec, retargetSpec } from './oci-spec.ts';

/** A bind mount with a host path as its source. */
export interface HostBindMount {
  source: string;
  destination: string;
  readonly?: boolean;
}

export interface RunContainerOptions {
  /** Also the crun container id; a container of this id a crashed run left is removed first. */
  id: string;
  pod: LabPod;
  argv: string[];
  env?: Record<string, string>;
  cwd?: string;
  mounts?: HostBindMount[];
  /** Host file for the container's stdout and stderr; `<workDir>/logs/<id>.log` when absent. */
  logFile?: string;
  /**
   * Do not block io_uring with seccomp (the default blocks it: CRIU cannot dump a process with
   * an io_uring, and Node 24 makes one unless the syscall fails).
   */
  allowIoUring?: boolean;
}

export interface RestoreContainerOptions {
  /** The new container's id. */
  id: string;
  pod: LabPod;
  /** A directory a LabContainer.checkpoint wrote. */
  imageDir: string;
  /** New sources for bind mount destinations of the checkpointed container; the rest keep theirs. */
  mounts?: HostBindMount[];
  logFile?: string;
}

export interface CheckpointOptions {
  /** Host directory for the CRIU images (created); dump.log ends up there too. */
  imageDir: string;
  /** Keep the container running after the dump, as CRI-O does (default true). */
  leaveRunning?: boolean;
}

export interface CheckpointResult {
  ok: boolean;
  durationMs: number;
  /** The end of CRIU's dump.log (and crun's message when the dump failed). */
  log: string;
}

export interface LabContainer {
  id: string;
  pod: LabPod;
  /** Host pid of the container's init process. */
  pid: number;
  bundleDir: string;
  logFile: string;
  checkpoint(options: CheckpointOptions): Promise<CheckpointResult>;
  /** crun's status (`running`, `stopped`, ...), or `absent` when crun does not know the container. */
  state(): Promise<string>;
  /** What the container wrote to stdout and stderr so far. */
  output(): Promise<string>;
  kill(signal?: string): Promise<void>;
  remove(): Promise<void>;
}

export interface ContainerContext {
  exec: LabExec;
  /** Maps a host path to the same file inside the lab namespace. */
  hostPath(path: string): string;
  /** The containers' root filesystem inside the lab namespace. */
  rootfs: string;
  workDir: string;
  /** Host directories every container gets read-only at their own path (the repo, Node). */
  defaultMounts: string[];
  /** Called with every container made, and again (with `removed`) when it is removed. */
  track(container: LabContainer, removed?: boolean): void;
}

/** The container's spec, saved beside CRIU's images like CRI-O's spec.dump: restore reads it. */
const SPEC_FILE = 'spec.dump';

function logTailOf(text: string, lines = 20): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

// crun's stdio becomes the container's: pipes, as conmon gives them, because CRIU dumps a pipe
// whose other end is outside the container (and crun restore reconnects it to its own stdio),
// whereas a file or /dev/null of the lab namespace is on a mount the container does not have.
// `cat` is the conmon here: it copies the container's output into the log until the container
// ends. crun's own messages go to crun.log in the bundle.
const WITH_PIPES = 'log=$1; shift; exec "$@" < <(true) > >(exec cat >>"$log" 2>/dev/null) 2>&1';

async function prepare(ctx: ContainerContext, id: string): Promise<{ bundleDir: string }> {
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$/.test(id)) throw new Error(`invalid container id: ${id}`);
  await ctx.exec(['crun', 'delete', '-f', id]); // a crashed run's container of the same id
  await clearCgroups(id);
  const bundleDir = join(ctx.workDir, 'bundles', id);
  await rm(bundleDir, { recursive: true, force: true });
  await mkdir(bundleDir, { recursive: true });
  return { bundleDir };
}

/** Everything of container `id` goes: crun's state, its processes and cgroups, its bundle. */
async function discard(ctx: ContainerContext, id: string, bundleDir: string): Promise<void> {
  await ctx.exec(['crun', 'delete', '-f', id]);
  await clearCgroups(id);
  await rm(bundleDir, { recursive: true, force: true });
}

async function startCrun(ctx: ContainerContext, bundleDir: string, logFile: string, crunArgs: string[]): Promise<{ ok: boolean; message: string }> {
  await mkdir(dirname(logFile), { recursive: true });
  await writeFile(logFile, '');
  const argv = ['bash', '-c', WITH_PIPES, 'bash', ctx.hostPath(logFile), 'crun', `--log=file:${ctx.hostPath(join(bundleDir, 'crun.log'))}`, ...crunArgs];
  const result = await ctx.exec(argv, { timeoutMs: 60_000 });
  if (result.code === 0) return { ok: true, message: '' };
  const crunLog = await readFile(join(bundleDir, 'crun.log'), 'utf8').catch(() => '');
  const output = await readFile(logFile, 'utf8').catch(() => '');
  return { ok: false, message: `crun ${crunArgs[0]} exited ${result.code}\ncrun.log: ${crunLog.trim()}\ncontainer output: ${logTailOf(output)}${result.stderr}` };
}

async function readPid(bundleDir: string): Promise<number> {
  return Number((await readFile(join(bundleDir, 'pid'), 'utf8')).trim());
}

function toLabBinds(ctx: ContainerContext, mounts: HostBindMount[]): LabBindMount[] {
  return mounts.map((m) => ({ source: ctx.hostPath(m.source), destination: m.destination, readonly: m.readonly }));
}

function isInside(dir: string, path: string): boolean {
  const rel = relative(dir, path);
  return rel === '' || (!rel.startsWith('..') && !rel.startsWith('/'));
}

function makeContainer(ctx: ContainerContext, fields: { id: string; pod: LabPod; pid: number; bundleDir: string; logFile: string; spec: OciSpec }): LabContainer {
  const { id, bundleDir, logFile, spec } = fields;
  let removed = false;
  const container: LabContainer = {
    id,
    pod: fields.pod,
    pid: fields.pid,
    bundleDir,
    logFile,
    checkpoint: async ({ imageDir, leaveRunning = true }) => {
      await mkdir(imageDir, { recursive: true });
      const start = performance.now();
      const argv = ['crun', 'checkpoint', '--file-locks', ...(leaveRunning ? ['--leave-running'] : []), '--image-path', ctx.hostPath(imageDir), id];
      const result = await ctx.exec(argv, { timeoutMs: 120_000 });
      const durationMs = performance.now() - start;
      const log = await criuLogTail(join(imageDir, 'dump.log'));
      if (result.code !== 0) return { ok: false, durationMs, log: `${log}\ncrun: ${result.stderr.trim()}` };
      await writeFile(join(imageDir, SPEC_FILE), JSON.stringify(spec, null, 2));
      return { ok: true, durationMs, log };
    },
    state: async () => {
      const result = await ctx.exec(['crun', 'state', id]);
      return result.code === 0 ? (JSON.parse(result.stdout) as { status: string }).status : 'absent';
    },
    output: () => readFile(logFile, 'utf8').catch(() => ''),
    kill: async (signal = 'KILL') => {
      await ctx.exec(['crun', 'kill', id, signal]);
    },
    remove: async () => {
      if (removed) return;
      removed = true;
      await discard(ctx, id, bundleDir);
      ctx.track(container, true);
    },
  };
  ctx.track(container);
  return container;
}

export async function runContainer(ctx: ContainerContext, options: RunContainerOptions): Promise<LabContainer> {
  const { id, pod } = options;
  const { bundleDir } = await prepare(ctx, id);
  const mounts = options.mounts ?? [];
  const extra = ctx.defaultMounts.filter((dir) => !mounts.some((m) => isInside(m.destination, dir)));
  const spec = buildSpec({
    id,
    hostname: pod.name,
    rootfs: ctx.rootfs,
    netnsPath: pod.netnsPath,
    argv: options.argv,
    env: options.env ?? {},
    cwd: options.cwd ?? '/',
    allowIoUring: options.allowIoUring,
    binds: toLabBinds(ctx, [...extra.map((dir) => ({ source: dir, destination: dir, readonly: true })), ...mounts]),
  });
  await writeFile(join(bundleDir, 'config.json'), JSON.stringify(spec, null, 2));
  const logFile = options.logFile ?? join(ctx.workDir, 'logs', `${id}.log`);
  const lab = (p: string) => ctx.hostPath(join(bundleDir, p));
  const started = await startCrun(ctx, bundleDir, logFile, ['run', '--detach', '--pid-file', lab('pid'), '--bundle', lab(''), id]);
  if (!started.ok) {
    await discard(ctx, id, bundleDir);
    throw new Error(`cannot start lab container ${id}: ${started.message}`);
  }
  return makeContainer(ctx, { id, pod, pid: await readPid(bundleDir), bundleDir, logFile, spec });
}

export async function restoreContainer(ctx: ContainerContext, options: RestoreContainerOptions): Promise<{ container: LabContainer; durationMs: number }> {
  const { id, pod, imageDir } = options;
  const saved = await readFile(join(imageDir, SPEC_FILE), 'utf8').catch(() => {
    throw new Error(`no ${SPEC_FILE} in ${imageDir}: restore needs a directory LabContainer.checkpoint wrote`);
  });
  const spec = retargetSpec(JSON.parse(saved) as OciSpec, { id, netnsPath: pod.netnsPath, binds: toLabBinds(ctx, options.mounts ?? []) });
  const { bundleDir } = await prepare(ctx, id);
  await writeFile(join(bundleDir, 'config.json'), JSON.stringify(spec, null, 2));
  // restore.log goes to a work directory of this bundle, so that one image can be restored many
  // times (even at once); crun wants the directory to exist.
  await mkdir(join(bundleDir, 'work'));
  const logFile = options.logFile ?? join(ctx.workDir, 'logs', `${id}.log`);
  const lab = (p: string) => ctx.hostPath(join(bundleDir, p));
  const start = performance.now();
  const restored = await startCrun(ctx, bundleDir, logFile, [
    'restore', '--detach', '--file-locks', '--pid-file', lab('pid'), '--bundle', lab(''),
    '--image-path', ctx.hostPath(imageDir), '--work-path', lab('work'), id,
  ]);
  const durationMs = performance.now() - start;
  if (!restored.ok) {
    const restoreLog = await criuLogTail(join(bundleDir, 'work', 'restore.log'));
    await discard(ctx, id, bundleDir);
    throw new Error(`cannot restore ${imageDir} as lab container ${id}: ${restored.message}\nrestore.log:\n${restoreLog}`);
  }
  const container = makeContainer(ctx, { id, pod, pid: await readPid(bundleDir), bundleDir, logFile, spec });
  return { container, durationMs };
}
