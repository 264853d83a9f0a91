/**
 * Where a host path really leads, for confinement checks: a path that names a directory lexically
 * at or below a root can lead anywhere through a symlink on the way, so the check must compare
 * resolved paths, and the agent must then use the resolved path it checked.
 */
import { lstat, realpath } from 'node:fs/promises';
import path from 'node:path';

export class UnresolvablePathError extends Error {
  override name = 'UnresolvablePathError';
}

/**
 * `target` made absolute and normalised, with the symlinks of its deepest existing ancestor
 * resolved (realpath) and the rest, which does not exist yet, appended. `..` is normalised away
 * lexically first: the result is what the agent will use, and it is checked as such.
 *
 * Throws UnresolvablePathError when a name on the way exists but does not resolve (a symlink to
 * nowhere, or a loop): creating through it could land anywhere. Other errors (EACCES...) pass on.
 */
export async function resolveThroughSymlinks(target: string): Promise<string> {
  let existing = path.resolve(target);
  const missing: string[] = [];
  for (;;) {
    try {
      const real = await realpath(existing);
      return missing.length === 0 ? real : path.join(real, ...missing.reverse());
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ELOOP') throw new UnresolvablePathError(`${existing} is a symbolic link loop`);
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw error;
      // The name itself exists (lstat does not follow it) yet does not resolve: a dangling symlink.
      const itself = await lstat(existing).then(
        (stats) => stats,
        () => undefined,
      );
      if (itself?.isSymbolicLink() === true) throw new UnresolvablePathError(`${existing} is a symbolic link to something that does not exist`);
      const parent = path.dirname(existing);
      if (parent === existing) throw error;
      missing.push(path.basename(existing));
      existing = parent;
    }
  }
}

/** Whether `child` is `root` or below it; both absolute and normalised (resolved ones, for a confinement check). */
export function isAtOrBelow(child: string, root: string): boolean {
  if (child === root) return true;
  const prefix = root.endsWith(path.sep) ? root : root + path.sep;
  return child.startsWith(prefix);
}
