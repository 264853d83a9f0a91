/**
 * KubeletArchives: the agent reads and deletes only regular files in --kubelet-checkpoints-dir,
 * whatever path the kubelet answers. Every refused path is checked to be left as it was.
 */
import { lstat, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { KubeletArchiveRefused, KubeletArchives } from './kubelet-archives.ts';

let dir: string;
let checkpoints: string;
let outside: string;
let archives: KubeletArchives;

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'cryo-kubelet-archives-'));
  checkpoints = path.join(dir, 'kubelet', 'checkpoints');
  outside = path.join(dir, 'outside');
  await mkdir(checkpoints, { recursive: true });
  await mkdir(outside);
  await writeFile(path.join(outside, 'victim.tar'), 'not the kubelet’s');
  archives = new KubeletArchives(checkpoints);
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const victimIntact = async () => expect(await readFile(path.join(outside, 'victim.tar'), 'utf8')).toBe('not the kubelet’s');

/** confine() and remove() both refuse it; remove() is tried only on the test's own files (a regression must not delete a real /etc/passwd). */
async function refusal(answered: string): Promise<string> {
  const confined = await archives.confine(answered).then(
    () => undefined,
    (error: unknown) => error,
  );
  expect(confined).toBeInstanceOf(KubeletArchiveRefused);
  if (answered.startsWith(dir) || !path.isAbsolute(answered)) {
    const removed = await archives.remove(answered).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(removed).toBeInstanceOf(KubeletArchiveRefused);
  }
  return (confined as Error).message;
}

describe('KubeletArchives', () => {
  it('reads and removes a regular file in the directory or below it', async () => {
    const archive = path.join(checkpoints, 'checkpoint-orders-0_shop-app-2025-01-01T00:00:00Z.tar');
    await writeFile(archive, 'tar');
    expect(await archives.confine(archive)).toBe(archive);
    await mkdir(path.join(checkpoints, 'sub'));
    await writeFile(path.join(checkpoints, 'sub', 'a.tar'), 'tar');
    expect(await archives.confine(path.join(checkpoints, 'sub', 'a.tar'))).toBe(path.join(checkpoints, 'sub', 'a.tar'));
    await archives.remove(archive);
    await expect(lstat(archive)).rejects.toThrow(/ENOENT/);
    // Already gone: nothing to do.
    await archives.remove(archive);
  });

  it('accepts the directory given through a symlink: both sides are resolved', async () => {
    const link = path.join(dir, 'checkpoints-link');
    await symlink(checkpoints, link);
    await writeFile(path.join(checkpoints, 'a.tar'), 'tar');
    expect(await new KubeletArchives(link).confine(path.join(link, 'a.tar'))).toBe(path.join(checkpoints, 'a.tar'));
    expect(await archives.confine(path.join(link, 'a.tar'))).toBe(path.join(checkpoints, 'a.tar'));
  });

  it('refuses /etc/passwd', async () => {
    const before = await lstat('/etc/passwd');
    expect(await refusal('/etc/passwd')).toBe(
      `the kubelet answered the archive path "/etc/passwd", which the agent does not read or delete: it is not in --kubelet-checkpoints-dir ${checkpoints}. ` +
        `The kubelet writes archives as regular files in its checkpoints directory; --kubelet-checkpoints-dir must be that directory (${checkpoints}), mounted at the same path`,
    );
    expect((await lstat('/etc/passwd')).ino).toBe(before.ino);
  });

  it('refuses ../ escapes, as the kernel resolves them', async () => {
    expect(await refusal(path.join(checkpoints, '..', '..', 'outside', 'victim.tar'))).toMatch(/it is not in --kubelet-checkpoints-dir/);
    expect(await refusal(`${checkpoints}/../../outside/victim.tar`)).toMatch(/it is not in --kubelet-checkpoints-dir/);
    await victimIntact();
  });

  it('refuses a symlink in the directory pointing outside, and a path through a symlinked subdirectory', async () => {
    await symlink(path.join(outside, 'victim.tar'), path.join(checkpoints, 'evil.tar'));
    expect(await refusal(path.join(checkpoints, 'evil.tar'))).toMatch(/: it is a symbolic link\./);
    expect((await lstat(path.join(checkpoints, 'evil.tar'))).isSymbolicLink()).toBe(true);
    await symlink(outside, path.join(checkpoints, 'sub'));
    expect(await refusal(path.join(checkpoints, 'sub', 'victim.tar'))).toMatch(new RegExp(`it is not in --kubelet-checkpoints-dir .*\\(its directory resolves to ${outside}\\)`));
    await victimIntact();
  });

  it('refuses what is not a regular file, a relative path, and a directory', async () => {
    await mkdir(path.join(checkpoints, 'dir.tar'));
    expect(await refusal(path.join(checkpoints, 'dir.tar'))).toMatch(/it is not a regular file/);
    expect(await refusal(`${checkpoints}/dir.tar/`)).toMatch(/it names a directory/);
    expect(await refusal(`${checkpoints}/..`)).toMatch(/it names a directory/);
    expect(await refusal('checkpoints/a.tar')).toMatch(/it is not an absolute path/);
    expect(await refusal(path.join(dir, 'nowhere', 'a.tar'))).toMatch(/its directory cannot be resolved \(ENOENT\)/);
    expect((await lstat(path.join(checkpoints, 'dir.tar'))).isDirectory()).toBe(true);
  });

  it('needs an absolute --kubelet-checkpoints-dir', () => {
    expect(() => new KubeletArchives('var/lib/kubelet/checkpoints')).toThrow(/must be an absolute path/);
  });
});
