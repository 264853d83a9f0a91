/**
 * The CLI as `npm i -g` installs it: the packed tarball, unpacked into a node_modules of its own
 * beside its one dependency, run as plain JavaScript (no TypeScript, no @cryo/common on disk).
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT } from './errors.ts';
import { NS, startTestCluster, succeededCheckpoint, type TestCluster } from './testing.ts';

const run = promisify(execFile);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
let prefix: string;
let installed: string;
let cluster: TestCluster;

beforeAll(async () => {
  const { stdout } = await run(process.execPath, [path.join(root, 'kubectl-cryo/scripts/pack-publishable.ts')], { cwd: root, timeout: 120_000 });
  const tarball = stdout.trim().split('\n').at(-1)!;
  await mkdir(path.join(root, '.tmp'), { recursive: true });
  prefix = await mkdtemp(path.join(root, '.tmp/kubectl-cryo-install-'));
  installed = path.join(prefix, 'node_modules/@cryo/kubectl-cryo');
  await mkdir(installed, { recursive: true });
  await run('tar', ['xzf', tarball, '-C', installed, '--strip-components=1']);
  // Its one dependency, as npm would have installed it.
  await mkdir(path.join(prefix, 'node_modules/@kubernetes'), { recursive: true });
  await symlink(path.join(root, 'node_modules/@kubernetes/client-node'), path.join(prefix, 'node_modules/@kubernetes/client-node'));
  cluster = await startTestCluster();
  cluster.api.put(succeededCheckpoint('web-warm', 'web'));
}, 180_000);

afterAll(async () => {
  await cluster?.stop();
  if (prefix !== undefined) await rm(prefix, { recursive: true, force: true });
});

describe('the published @cryo/kubectl-cryo', () => {
  it('declares the kubectl-cryo executable and depends on client-node alone', async () => {
    const manifest = JSON.parse(await readFile(path.join(installed, 'package.json'), 'utf8'));
    expect(manifest).toMatchObject({ name: '@cryo/kubectl-cryo', type: 'module', bin: { 'kubectl-cryo': './bin/kubectl-cryo.js' } });
    expect(Object.keys(manifest.dependencies)).toEqual(['@kubernetes/client-node']);
    expect(manifest.private).toBeUndefined();
    const bin = await readFile(path.join(installed, 'bin/kubectl-cryo.js'), 'utf8');
    expect(bin.startsWith('#!/usr/bin/env node\n')).toBe(true);
    expect(bin).not.toMatch(/from "@cryo\//);
  });

  it('runs as plain JavaScript against a cluster', async () => {
    const { stdout } = await run(process.execPath, [path.join(installed, 'bin/kubectl-cryo.js'), 'get', 'checkpoints', '--kubeconfig', cluster.kubeconfig, '-n', NS, '-o', 'name'], { cwd: prefix });
    expect(stdout).toBe('checkpoint.cryo.dev/web-warm\n');
    const failed = await run(process.execPath, [path.join(installed, 'bin/kubectl-cryo.js'), 'restore'], { cwd: prefix }).catch((err: { code: number; stderr: string }) => err);
    expect(failed).toMatchObject({ code: EXIT.USAGE });
  });
});
