/**
 * StoreResolver: a Checkpoint's spec.storage.directory.path must be the agent's --directory or
 * below it once the symlinks of both are resolved, and the store then writes to the resolved path.
 */
import { mkdir, mkdtemp, readdir, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger, type Checkpoint } from '@cryo/common';
import { DirectoryStore } from '../storage/directory/directory-store.ts';
import { StoreResolver, type StoreDefaults } from './store-resolver.ts';

let dir: string;
let root: string;
let outside: string;

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'cryo-store-resolver-'));
  root = path.join(dir, 'store');
  outside = path.join(dir, 'outside');
  await mkdir(path.join(root, 'team-a'), { recursive: true });
  await mkdir(outside);
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const resolver = (defaults: Partial<StoreDefaults> = {}) =>
  new StoreResolver({ registryRepository: '', registryDockerConfig: '', registryInsecure: false, registryCaBundle: '', directory: root, namespace: 'cryo-node', ...defaults }, silentLogger());

const checkpointTo = (directory: string): Checkpoint => ({
  metadata: { namespace: 'shop', name: 'orders-warm', uid: 'ckpt-uid-1' },
  spec: { podName: 'orders-0', storage: { directory: { path: directory } } },
});

async function rootOf(directory: string, defaults: Partial<StoreDefaults> = {}): Promise<string | { error: string }> {
  const store = await resolver(defaults).storeFor(checkpointTo(directory));
  if ('error' in store) return store;
  expect(store).toBeInstanceOf(DirectoryStore);
  return (store as DirectoryStore).root;
}

describe('StoreResolver confines a Checkpoint’s directory to --directory', () => {
  it('accepts --directory and directories below it, existing or not', async () => {
    expect(await rootOf(root)).toBe(root);
    expect(await rootOf(path.join(root, 'team-a'))).toBe(path.join(root, 'team-a'));
    expect(await rootOf(path.join(root, 'team-b', 'new'))).toBe(path.join(root, 'team-b', 'new'));
  });

  it('refuses a directory outside, lexically or by ../', async () => {
    expect(await rootOf(outside)).toEqual({
      error: `directory ${outside} is not one this node agent stores to (its --directory is ${root}); name that directory or one below it, or use a registry`,
    });
    expect(await rootOf(`${root}/team-a/../../outside`)).toMatchObject({ error: expect.stringMatching(/is not one this node agent stores to/) });
    expect(await rootOf(`${root}-sibling`)).toMatchObject({ error: expect.stringMatching(/is not one this node agent stores to/) });
  });

  it('refuses a symlink below --directory pointing outside, and any path through it', async () => {
    await symlink(outside, path.join(root, 'escape'));
    await symlink(outside, path.join(root, 'team-a', 'escape'));
    for (const named of [path.join(root, 'escape'), path.join(root, 'escape', 'ns'), path.join(root, 'team-a', 'escape', 'deeper', 'still')]) {
      expect(await rootOf(named)).toEqual({
        error: `directory ${named} is not one this node agent stores to (its --directory is ${root}): it resolves to ${named.replace(/^.*escape/, outside)} through a symbolic link; name that directory or one below it, or use a registry`,
      });
    }
    // Nothing was made outside.
    expect(await readdir(outside)).toEqual([]);
  });

  it('refuses a dangling symlink below --directory: creating through it could land anywhere', async () => {
    await symlink(path.join(outside, 'not-yet'), path.join(root, 'later'));
    expect(await rootOf(path.join(root, 'later', 'ns'))).toMatchObject({
      error: expect.stringMatching(/is not one this node agent stores to .*: it cannot be resolved \(.*later is a symbolic link to something that does not exist\)/),
    });
  });

  it('accepts a symlink that stays inside, and stores to where it leads', async () => {
    await symlink(path.join(root, 'team-a'), path.join(root, 'alias'));
    expect(await rootOf(path.join(root, 'alias', 'x'))).toBe(path.join(root, 'team-a', 'x'));
  });

  it('resolves --directory itself when it is a symlink', async () => {
    const link = path.join(dir, 'store-link');
    await symlink(root, link);
    expect(await rootOf(path.join(link, 'team-a'), { directory: link })).toBe(path.join(root, 'team-a'));
    expect(await rootOf(path.join(root, 'team-a'), { directory: link })).toBe(path.join(root, 'team-a'));
    expect(await rootOf(outside, { directory: link })).toMatchObject({ error: expect.stringMatching(/is not one this node agent stores to/) });
  });

  it('refuses any directory when --directory is not set', async () => {
    expect(await rootOf(root, { directory: '' })).toEqual({
      error: `directory ${root} is not one this node agent stores to (its --directory is not set); name that directory or one below it, or use a registry`,
    });
  });
});
