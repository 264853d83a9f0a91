/**
 * Removing a directory tree that someone else may be writing while it is removed, without ever
 * following anything they put there. The case: a pod's hook directory, which the pod mounts
 * read-write; its processes can create files, directories and symlinks in it and swap them while
 * the agent walks it (the attack a recursive rm loses: it lstat()s `d`, finds a directory, then
 * readdir()s and unlinks `d/<name>` by path after the pod swapped `d` for a symlink to a directory
 * elsewhere, and so deletes files there).
 *
 * Node has no openat()/unlinkat(), so the walk works by path, and is made safe by never handing the
 * kernel a path with more than one name the other party controls, and that one only as the last
 * component of calls that do not follow it:
 *
 *   1. The tree is first renamed into an agent-only scratch directory (agent-scratch.ts: 0700, in
 *      the same parent, so the same filesystem). rename() moves the name itself, whatever it is by
 *      then; it never follows a symlink.
 *   2. Every directory the walk reads sits directly in the scratch directory under a name only the
 *      agent gives, so the name stays that directory for good (nothing else can rename or replace
 *      names there). Its entries are the untrusted names. Each is lstat()ed, then: a non-directory
 *      is unlink()ed (never follows: if it was swapped for a symlink, the symlink is what goes); a
 *      directory is rename()d up into the scratch directory under a fresh agent name (moves
 *      whatever is there by then, following nothing) and read in turn, by its new name. So the
 *      tree is flattened, a level at a time, and no path ever goes through an untrusted directory
 *      name, which is what a swap to a symlink would redirect. Emptied directories are rmdir()ed by
 *      their agent names.
 *   3. A writer still at work (the pod's bind mount follows the directory's inode, and a process
 *      may have its working directory in a subdirectory the walk moved) can keep adding entries;
 *      those are removed the same way, within a budget of operations. Past it, or on an error, the
 *      rest stays in the scratch directory, where the pod cannot reach it by path, and the caller
 *      logs where; draining it again later (drainScratchDir) finishes the job.
 *
 * What it relies on: every component of the target's parent path, and the scratch directory's
 * parent, are the agent's (the hooks directory and above: no pod can write there); the agent's own
 * calls are the only ones renaming inside the scratch directory (one drain per scratch directory,
 * see agent-scratch.ts). A hard link the writer made to a file of its own is only a name: unlinking
 * it removes that name. A mount point inside the tree (the writer cannot make one in the agent's
 * mount namespace) would stop the removal (EBUSY/EXDEV), never be crossed.
 */
import { randomBytes } from 'node:crypto';
import { chmod, lstat, opendir, readdir, rename, rmdir, unlink } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import path from 'node:path';
import { claimScratchDir, createScratchDir, releaseScratchDir } from './agent-scratch.ts';

export interface TreeRemoval {
  /** Nothing is left. */
  removed: boolean;
  /** Names removed: files, symlinks and other non-directories unlinked, directories removed. */
  entries: number;
  /** When something is left: the agent-only scratch directory holding it, to drain again later. */
  leftIn?: string;
  /** Why something is left. */
  reason?: string;
  /** drainScratchDir only: another operation of this process is using it, so it was not touched. */
  inUse?: true;
}

/** lstat/unlink/rename/rmdir calls one removal may make before it stops and leaves the rest for later. */
export const DEFAULT_MAX_OPERATIONS = 100_000;

export interface RemoveUntrustedTreeOptions {
  /** Where to make the scratch directory: the target's own parent, or another agent-only directory on its filesystem. */
  scratchParent: string;
  maxOperations?: number;
}

/**
 * Removes `target` (a directory, or anything else) and everything below it, following nothing in
 * it. Never throws for what it finds there: what it cannot remove is reported in the result.
 * Throws only when the scratch directory cannot be made.
 */
export async function removeUntrustedTree(target: string, options: RemoveUntrustedTreeOptions): Promise<TreeRemoval> {
  const scratch = await createScratchDir(options.scratchParent);
  try {
    try {
      await rename(target, path.join(scratch, 'tree'));
    } catch (error) {
      if (errnoOf(error) !== 'ENOENT') {
        await rmdir(scratch).catch(() => {});
        return { removed: false, entries: 0, reason: `cannot move ${target} aside to remove it: ${describe(error)}` };
      }
      // Already gone: the scratch directory is empty and goes below.
    }
    return await drain(scratch, options.maxOperations ?? DEFAULT_MAX_OPERATIONS);
  } finally {
    releaseScratchDir(scratch);
  }
}

/**
 * Removes a scratch directory and what is in it (a removal's leftover, or one an earlier agent
 * left). `dir` must be an agent scratch directory (named by agent-scratch.ts, in an agent-only
 * parent); one an operation of this process is using is left alone.
 */
export async function drainScratchDir(dir: string, maxOperations = DEFAULT_MAX_OPERATIONS): Promise<TreeRemoval> {
  if (!claimScratchDir(dir)) return { removed: false, entries: 0, leftIn: dir, reason: 'in use by another operation', inUse: true };
  try {
    const stats = await lstatOrNull(dir);
    if (stats === null) return { removed: true, entries: 0 };
    // Only the agent makes these names; anything but a directory is removed as the name it is.
    if (!stats.isDirectory()) {
      await unlink(dir);
      return { removed: true, entries: 1 };
    }
    return await drain(dir, maxOperations);
  } catch (error) {
    return { removed: false, entries: 0, leftIn: dir, reason: describe(error) };
  } finally {
    releaseScratchDir(dir);
  }
}

/** Removes a scratch directory the caller made (createScratchDir) and is done with, with whatever is in it. */
export async function removeOwnScratchDir(dir: string, maxOperations = DEFAULT_MAX_OPERATIONS): Promise<TreeRemoval> {
  try {
    return await drain(dir, maxOperations);
  } finally {
    releaseScratchDir(dir);
  }
}

/** Empties and removes the agent-only directory `scratch` (see the file comment for why each call is safe). */
async function drain(scratch: string, maxOperations: number): Promise<TreeRemoval> {
  let operations = 0;
  let entries = 0;
  // Names this drain gives to directories it moves up; another drain of a leftover uses another tag.
  const tag = randomBytes(6).toString('hex');
  let moved = 0;
  const left = (reason: string): TreeRemoval => ({ removed: false, entries, leftIn: scratch, reason });
  const overBudget = () => ++operations > maxOperations;
  try {
    for (;;) {
      const pending = await readdir(scratch);
      if (pending.length === 0) break;
      let progress = false;
      while (pending.length > 0) {
        if (overBudget()) return left(`stopped after ${maxOperations} operations (something keeps adding entries, or there are that many)`);
        const name = pending.pop()!;
        // An agent name in an agent-only directory: what it is now, it stays.
        const here = path.join(scratch, name);
        const stats = await lstatOrNull(here);
        if (stats === null) continue;
        if (!stats.isDirectory()) {
          await unlink(here);
          entries++;
          progress = true;
          continue;
        }
        // Its writer may have made it unreadable to its owner; it is the agent's now.
        await chmod(here, 0o700).catch(() => {});
        const dir = await opendir(here);
        for await (const child of dir) {
          if (overBudget()) return left(`stopped after ${maxOperations} operations (something keeps adding entries, or there are that many)`);
          // The one untrusted component, last, and only for calls that do not follow it.
          const from = path.join(here, child.name);
          const childStats = await lstatOrNull(from);
          if (childStats === null) continue;
          if (!childStats.isDirectory()) {
            const unlinked = await unlink(from).then(
              () => true,
              (error: unknown) => {
                if (errnoOf(error) === 'ENOENT') return false;
                // It became a directory since the lstat: move it up like one.
                if (errnoOf(error) === 'EISDIR') return undefined;
                throw error;
              },
            );
            if (unlinked === true) {
              entries++;
              progress = true;
            }
            if (unlinked !== undefined) continue;
          }
          const to = `${tag}-${(moved++).toString(36)}`;
          await rename(from, path.join(scratch, to)).then(
            () => {
              pending.push(to);
              progress = true;
            },
            (error: unknown) => {
              if (errnoOf(error) !== 'ENOENT') throw error;
            },
          );
        }
        await rmdir(here).then(
          () => {
            entries++;
            progress = true;
          },
          (error: unknown) => {
            // Written to since it was read: the next round reads it again.
            if (errnoOf(error) !== 'ENOTEMPTY' && errnoOf(error) !== 'EEXIST') throw error;
          },
        );
      }
      if (!progress) return left('a whole round removed nothing');
    }
    await rmdir(scratch);
    return { removed: true, entries };
  } catch (error) {
    return left(describe(error));
  }
}

async function lstatOrNull(file: string): Promise<Stats | null> {
  try {
    return await lstat(file);
  } catch (error) {
    if (errnoOf(error) === 'ENOENT') return null;
    throw error;
  }
}

function errnoOf(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
