/**
 * The kubelet's checkpoint archives, as the agent reads and then deletes them: only regular files
 * in --kubelet-checkpoints-dir (or below it). The kubelet answers each archive's path, and the
 * agent, root on the node, would otherwise read and delete whatever path comes back (a wrong
 * answer, a proxy in the way, a symlink someone put in that directory).
 *
 * A path is accepted when, with the symlinks of its directory resolved (realpath of the parent,
 * which also settles `..` as the kernel would), that directory is the resolved
 * --kubelet-checkpoints-dir or below it, and the file itself, looked at without following it
 * (lstat), is a regular file: a symlink there is refused, never followed, never deleted. The agent
 * then uses that resolved path, and checks it again right before reading it and before deleting it.
 *
 * What is left: between the last check and the open() or unlink() the path is not pinned. The
 * unlink cannot be redirected at its last name (unlink never follows it), and its directory was
 * resolved just before; swapping a directory there in that window takes write access to the
 * kubelet's checkpoints directory, which only root on the node has.
 */
import { lstat, realpath, unlink } from 'node:fs/promises';
import path from 'node:path';
import { isAtOrBelow } from '../host-files/resolved-path.ts';

export class KubeletArchiveRefused extends Error {
  override name = 'KubeletArchiveRefused';
  /** The path as the kubelet answered it. */
  readonly answered: string;
  constructor(answered: string, message: string) {
    super(message);
    this.answered = answered;
  }
}

export class KubeletArchives {
  /** --kubelet-checkpoints-dir as configured. */
  readonly dir: string;

  constructor(dir: string) {
    if (!path.isAbsolute(dir)) throw new Error(`--kubelet-checkpoints-dir must be an absolute path (where the kubelet writes archives, mounted at the same path), got "${dir}"`);
    this.dir = path.normalize(dir);
  }

  /**
   * The path to read and delete the answered archive by: its directory resolved, its own name
   * kept. Throws KubeletArchiveRefused saying why when it is not a regular file in the directory.
   */
  async confine(answered: string): Promise<string> {
    const checked = await this.check(answered);
    if ('file' in checked) return checked.file;
    throw this.refusal(answered, 'missing' in checked ? 'it does not exist' : checked.refused);
  }

  /** Deletes an archive the kubelet answered, after checking it again; a refused one is left alone (the error says why). */
  async remove(answered: string): Promise<void> {
    const checked = await this.check(answered);
    if ('missing' in checked) return; // gone already: what removing wants
    if ('refused' in checked) throw this.refusal(answered, checked.refused);
    // unlink never follows the last name, and the directory is the resolved one.
    await unlink(checked.file).catch((error: unknown) => {
      if (codeOf(error) !== 'ENOENT') throw error;
    });
  }

  private async check(answered: string): Promise<{ file: string } | { refused: string } | { missing: true }> {
    if (!path.isAbsolute(answered)) return { refused: 'it is not an absolute path' };
    const name = path.basename(answered);
    if (answered.endsWith('/') || name === '' || name === '.' || name === '..') return { refused: 'it names a directory, not a file' };
    let root: string;
    try {
      root = await realpath(this.dir);
    } catch (error) {
      return { refused: `--kubelet-checkpoints-dir ${this.dir} cannot be resolved (${codeOf(error)})` };
    }
    let parent: string;
    try {
      parent = await realpath(path.dirname(answered));
    } catch (error) {
      return { refused: `its directory cannot be resolved (${codeOf(error)})` };
    }
    if (!isAtOrBelow(parent, root)) {
      const resolved = parent === path.dirname(answered) ? '' : ` (its directory resolves to ${parent})`;
      return { refused: `it is not in --kubelet-checkpoints-dir ${this.dir}${root === this.dir ? '' : ` (${root})`}${resolved}` };
    }
    const file = path.join(parent, name);
    let stats;
    try {
      stats = await lstat(file);
    } catch (error) {
      if (codeOf(error) === 'ENOENT') return { missing: true };
      return { refused: `it cannot be looked at (${codeOf(error)})` };
    }
    if (stats.isSymbolicLink()) return { refused: 'it is a symbolic link' };
    if (!stats.isFile()) return { refused: 'it is not a regular file' };
    return { file };
  }

  private refusal(answered: string, why: string): KubeletArchiveRefused {
    return new KubeletArchiveRefused(
      answered,
      `the kubelet answered the archive path "${answered}", which the agent does not read or delete: ${why}. ` +
        `The kubelet writes archives as regular files in its checkpoints directory; --kubelet-checkpoints-dir must be that directory (${this.dir}), mounted at the same path`,
    );
  }
}

function codeOf(error: unknown): string {
  return (error as NodeJS.ErrnoException | undefined)?.code ?? String(error);
}
