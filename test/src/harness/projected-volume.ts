/**
 * Test helper: updates a directory the way the kubelet updates a Secret volume (its
 * AtomicWriter): files go into a fresh hidden directory, `..data` is switched to it with one
 * rename, and the visible names are symlinks through `..data`. The visible files never see a write.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export async function writeProjectedVolume(dir: string, files: Record<string, string>): Promise<void> {
  const version = `..${new Date().toISOString().replace(/[:.]/g, '_')}.${randomUUID().slice(0, 8)}`;
  await mkdir(join(dir, version), { recursive: true });
  for (const [name, content] of Object.entries(files)) await writeFile(join(dir, version, name), content);
  const previous = await readlink(join(dir, '..data')).catch(() => undefined);
  await symlink(version, join(dir, '..data_tmp'));
  await rename(join(dir, '..data_tmp'), join(dir, '..data'));
  for (const name of Object.keys(files)) {
    await symlink(join('..data', name), join(dir, name)).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err;
    });
  }
  if (previous !== undefined) await rm(join(dir, previous), { recursive: true, force: true });
}
