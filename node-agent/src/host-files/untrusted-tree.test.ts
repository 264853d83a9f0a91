/**
 * removeUntrustedTree and drainScratchDir on trees holding what a pod could put in its hook
 * directory: symlinks to directories and files outside, nested directories, other file types, a
 * directory made unreadable, a tree deeper than any path, more entries than the budget. The race
 * against a writer swapping names mid-walk is test/node-agent/hook-directory-symlink-race.test.ts.
 */
import { chmod, lstat, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isScratchName } from './agent-scratch.ts';
import { drainScratchDir, removeUntrustedTree } from './untrusted-tree.ts';

let dir: string;
let parent: string;
let outside: string;

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'cryo-untrusted-tree-'));
  parent = path.join(dir, 'hooks');
  outside = path.join(dir, 'outside');
  await mkdir(parent);
  await mkdir(path.join(outside, 'inner'), { recursive: true });
  await writeFile(path.join(outside, 'canary'), 'keep');
  await writeFile(path.join(outside, 'inner', 'canary'), 'keep');
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const outsideIntact = async () => {
  expect((await readdir(outside)).sort()).toEqual(['canary', 'inner']);
  expect(await readFile(path.join(outside, 'inner', 'canary'), 'utf8')).toBe('keep');
  expect((await stat(path.join(outside, 'canary'))).mode & 0o777).toBe(0o644);
};

describe('removeUntrustedTree', () => {
  it('removes a tree with symlinks to directories and files outside, following none of them', async () => {
    const tree = path.join(parent, 'pod');
    await mkdir(path.join(tree, 'a', 'b', 'c'), { recursive: true });
    await writeFile(path.join(tree, 'a', 'b', 'c', 'file'), 'x');
    await symlink(outside, path.join(tree, 'to-dir'));
    await symlink(path.join(outside, 'canary'), path.join(tree, 'a', 'to-file'));
    await symlink(path.join(outside, 'inner'), path.join(tree, 'a', 'b', 'to-inner'));
    await symlink('/nowhere/at/all', path.join(tree, 'dangling'));
    execFileSync('mkfifo', [path.join(tree, 'a', 'fifo')]);
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(path.join(tree, 'a', 'b', 'sock'), resolve));
    const result = await removeUntrustedTree(tree, { scratchParent: parent });
    server.close();
    expect(result).toEqual({ removed: true, entries: 11 });
    expect(await readdir(parent)).toEqual([]);
    await outsideIntact();
  });

  it('removes a symlink standing where the tree was, not what it points to', async () => {
    await symlink(outside, path.join(parent, 'pod'));
    expect(await removeUntrustedTree(path.join(parent, 'pod'), { scratchParent: parent })).toEqual({ removed: true, entries: 1 });
    expect(await readdir(parent)).toEqual([]);
    await outsideIntact();
  });

  it('says removed when there is nothing there', async () => {
    expect(await removeUntrustedTree(path.join(parent, 'pod'), { scratchParent: parent })).toEqual({ removed: true, entries: 0 });
    expect(await readdir(parent)).toEqual([]);
  });

  it('removes directories their writer made unreadable and unwritable', async () => {
    const tree = path.join(parent, 'pod');
    await mkdir(path.join(tree, 'locked', 'deeper'), { recursive: true });
    await writeFile(path.join(tree, 'locked', 'deeper', 'f'), '');
    await chmod(path.join(tree, 'locked', 'deeper'), 0o000);
    await chmod(path.join(tree, 'locked'), 0o000);
    expect((await removeUntrustedTree(tree, { scratchParent: parent })).removed).toBe(true);
    expect(await readdir(parent)).toEqual([]);
  });

  it('removes a tree deeper than PATH_MAX allows naming', async () => {
    const tree = path.join(parent, 'pod');
    await mkdir(tree);
    // 300 levels of 20-character names: 6,000+ bytes of path, past Linux's 4,096. Nothing can
    // name the bottom: it is built a step at a time, each relative to the last (as a pod can).
    const build = `const fs = require('node:fs'); process.chdir(${JSON.stringify(tree)});
      for (let i = 0; i < 300; i++) { const d = 'level-' + String(i).padStart(14, '0'); fs.mkdirSync(d); process.chdir(d); fs.writeFileSync('f', ''); }`;
    execFileSync(process.execPath, ['-e', build]);
    expect((await lstat(path.join(tree, `level-${'0'.repeat(14)}`))).isDirectory()).toBe(true);
    const result = await removeUntrustedTree(tree, { scratchParent: parent });
    expect(result).toEqual({ removed: true, entries: 601 });
    expect(await readdir(parent)).toEqual([]);
  });

  it('stops at its budget and leaves the rest in an agent-only directory, which a later drain finishes', async () => {
    const tree = path.join(parent, 'pod');
    await mkdir(tree);
    for (let i = 0; i < 50; i++) await writeFile(path.join(tree, `f${i}`), '');
    await symlink(outside, path.join(tree, 'to-dir'));
    const first = await removeUntrustedTree(tree, { scratchParent: parent, maxOperations: 20 });
    expect(first).toMatchObject({ removed: false, leftIn: expect.any(String), reason: expect.stringMatching(/stopped after 20 operations/) });
    const leftIn = first.leftIn!;
    expect(path.dirname(leftIn)).toBe(parent);
    expect(isScratchName(path.basename(leftIn))).toBe(true);
    expect((await stat(leftIn)).mode & 0o777).toBe(0o700);
    // The pod's path to it is gone at once.
    expect(await readdir(parent)).toEqual([path.basename(leftIn)]);
    expect(await drainScratchDir(leftIn)).toMatchObject({ removed: true });
    expect(await readdir(parent)).toEqual([]);
    await outsideIntact();
  });
});
