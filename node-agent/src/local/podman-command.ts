/**
 * Runs Podman through an argv prefix: `['podman']` on a Podman host, or a prefix that enters
 * another mount namespace first (the CRIU lab: `['nsenter', '--mount=…', '--', 'env', '-i', …, 'podman']`).
 */
import { spawn } from 'node:child_process';

export const DEFAULT_PODMAN_ARGV: readonly string[] = ['podman'];

export interface PodmanCommandOptions {
  /** Default 120 s: a checkpoint or restore of a large container takes a while. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface PodmanCommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

export class PodmanError extends Error {
  override name = 'PodmanError';
  readonly exitCode: number;
  readonly stderr: string;
  constructor(message: string, fields: { exitCode: number; stderr: string; cause?: unknown }) {
    super(message, { cause: fields.cause });
    this.exitCode = fields.exitCode;
    this.stderr = fields.stderr;
  }
}

/** Runs `<podmanArgv> <args>` to its end; rejects only when it cannot be started or times out. */
export function runPodman(podmanArgv: readonly string[], args: readonly string[], { timeoutMs = 120_000, signal }: PodmanCommandOptions = {}): Promise<PodmanCommandResult> {
  const argv = [...podmanArgv, ...args];
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new PodmanError(`not run (aborted): ${argv.join(' ')}`, { exitCode: -1, stderr: '', cause: signal.reason }));
      return;
    }
    // Podman on cgroup v1 warns on every call; the warning would bury the real message.
    const env = { ...process.env, PODMAN_IGNORE_CGROUPSV1_WARNING: '1' };
    const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let failure: Error | undefined;
    const stop = (error: Error) => {
      failure ??= error;
      child.kill('SIGKILL');
    };
    const timer = setTimeout(() => stop(new PodmanError(`timed out after ${timeoutMs} ms: ${argv.join(' ')}`, { exitCode: -1, stderr: '' })), timeoutMs);
    const onAbort = () => stop(new PodmanError(`aborted: ${argv.join(' ')}`, { exitCode: -1, stderr: '', cause: signal?.reason }));
    signal?.addEventListener('abort', onAbort, { once: true });
    child.stdout.on('data', (c: Buffer) => stdout.push(c));
    child.stderr.on('data', (c: Buffer) => stderr.push(c));
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    };
    child.on('error', (error: NodeJS.ErrnoException) => {
      done();
      const hint = error.code === 'ENOENT' ? ` (${argv[0]} is not installed or not on PATH)` : '';
      reject(new PodmanError(`cannot run ${argv[0]}${hint}: ${error.message}`, { exitCode: -1, stderr: '', cause: error }));
    });
    child.on('close', (code, sig) => {
      done();
      const result = { code: code ?? (sig ? 128 : 1), stdout: Buffer.concat(stdout).toString('utf8'), stderr: Buffer.concat(stderr).toString('utf8') };
      if (failure !== undefined) reject(failure);
      else resolve(result);
    });
  });
}

/** Like runPodman, but a non-zero exit rejects with a PodmanError naming podman's stderr. */
export async function podmanOk(podmanArgv: readonly string[], args: readonly string[], options: PodmanCommandOptions & { what?: string } = {}): Promise<PodmanCommandResult> {
  const result = await runPodman(podmanArgv, args, options);
  if (result.code !== 0) {
    const what = options.what ?? `podman ${args.join(' ')}`;
    const message = cleanStderr(result.stderr) || result.stdout.trim() || '(no output)';
    throw new PodmanError(`${what} failed (exit ${result.code}): ${message}`, { exitCode: result.code, stderr: result.stderr });
  }
  return result;
}

/** Podman's stderr without its cgroup v1 deprecation warning (logged even with the env var on some versions). */
function cleanStderr(stderr: string): string {
  return stderr
    .split('\n')
    .filter((line) => !line.includes('cgroups-v1 which is deprecated'))
    .join('\n')
    .trim();
}
