/**
 * Removes the cgroups of a lab container, killing what still runs in them. `crun delete -f`
 * removes the ones crun made, but not the cgroup2 ones CRIU makes on restore in the host's
 * /sys/fs/cgroup/unified (which crun does not manage here), sometimes nested; and crun's state
 * lives in the lab namespace's /run, so when that namespace was made anew, the processes of a
 * crashed run's container can live on in their cgroups.
 */
import { readdir, readFile, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { cgroupsPathOf } from './oci-spec.ts';

const CGROUP_ROOT = '/sys/fs/cgroup';

/** The directory and every directory below it, deepest first (the order rmdir needs). */
export async function treeOf(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => undefined);
  if (entries === undefined) return [];
  const below = await Promise.all(entries.filter((e) => e.isDirectory()).map((e) => treeOf(join(dir, e.name))));
  return [...below.flat(), dir];
}

async function cgroupDirsOf(id: string): Promise<string[]> {
  const hierarchies = await readdir(CGROUP_ROOT).catch(() => [] as string[]);
  const tops = [join(CGROUP_ROOT, cgroupsPathOf(id)), ...hierarchies.map((h) => join(CGROUP_ROOT, h, cgroupsPathOf(id)))];
  return (await Promise.all(tops.map(treeOf))).flat();
}

export async function clearCgroups(id: string, timeoutMs = 5_000): Promise<void> {
  await killAndRemoveCgroups(() => cgroupDirsOf(id), timeoutMs, `cannot remove the cgroups of lab container ${id}`);
}

/**
 * Kills what runs in the cgroups `find` lists and removes them, until none is left; after
 * `timeoutMs` it throws `failure` with the directories left (or returns, without one).
 */
export async function killAndRemoveCgroups(find: () => Promise<string[]>, timeoutMs: number, failure?: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const dirs = await find();
    if (dirs.length === 0) return;
    for (const dir of dirs) {
      const procs = await readFile(join(dir, 'cgroup.procs'), 'utf8').catch(() => '');
      for (const pid of procs.split('\n').filter(Boolean)) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          // already gone
        }
      }
      await rmdir(dir).catch(() => {}); // busy until the killed processes have exited
    }
    if (Date.now() > deadline) {
      if (failure === undefined) return;
      throw new Error(`${failure}: ${dirs.join(', ')}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
