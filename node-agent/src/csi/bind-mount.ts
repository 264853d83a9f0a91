/**
 * Read-only bind mounts, for the hook socket's CSI volume. Node has no mount(2), so the agent runs
 * `mount` and `umount` from its image (util-linux in a Debian base, busybox's applets in the test
 * cluster's), with `-n` so that neither writes /etc/mtab on the read-only root. A bind mount is
 * made read-only by a second call, a remount, as the kernel requires: the first one ignores `ro`.
 * Whether something is mounted at a path is read from /proc/self/mountinfo.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** mountinfo escapes space, tab, newline and backslash in paths as \ooo. */
function unescapeMountPath(path: string): string {
  return path.replace(/\\([0-7]{3})/g, (_m, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)));
}

/** The mount points of this process's mount namespace, from /proc/self/mountinfo (field 5). */
export async function mountPoints(): Promise<string[]> {
  const text = await readFile('/proc/self/mountinfo', 'utf8');
  return text.split('\n').filter((line) => line !== '').map((line) => unescapeMountPath(line.split(' ')[4]));
}

export async function isMountPoint(path: string): Promise<boolean> {
  return (await mountPoints()).includes(path);
}

async function command(file: string, args: string[]): Promise<void> {
  try {
    await run(file, args, { timeout: 30_000 });
  } catch (error) {
    const { stderr, message } = error as { stderr?: string; message: string };
    throw new Error(`${file} ${args.join(' ')}: ${(stderr ?? '').trim() || message}`, { cause: error });
  }
}

/** Mounts `source` at `target`, read-only; on a failed remount nothing stays mounted. */
export async function bindMountReadOnly(source: string, target: string): Promise<void> {
  await command('mount', ['-n', '-o', 'bind', source, target]);
  try {
    await command('mount', ['-n', '-o', 'remount,bind,ro', target]);
  } catch (error) {
    await command('umount', ['-n', target]).catch(() => {});
    throw error;
  }
}

export async function unmount(target: string): Promise<void> {
  await command('umount', ['-n', target]);
}
