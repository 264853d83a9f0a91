/**
 * scripts/build-images.ts (npm run images), run as a user runs it, with a stand-in builder on PATH
 * that records what it is asked and answers pushes with a digest: what it builds from where, what
 * it pushes, and the images: it writes into a copy of manifests/Kustomization; and how it refuses
 * a registry that would resolve to someone else's namespace.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { setKustomizationImages } from '../../scripts/build-images.ts';
import { REPO_ROOT } from '@cryo/test';

const dir = mkdtempSync(join(tmpdir(), 'cryo-build-images-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A builder named `name` in its own PATH directory: logs each call, writes a digest for each push with --digestfile. */
function standInBuilder(name: string): { binDir: string; calls: () => string[][] } {
  const binDir = mkdtempSync(join(dir, 'bin-'));
  const log = join(binDir, 'calls.jsonl');
  writeFileSync(
    join(binDir, name),
    `#!${process.execPath}
const { appendFileSync, writeFileSync } = require('node:fs');
const { createHash } = require('node:crypto');
const args = process.argv.slice(2);
appendFileSync(${JSON.stringify(log)}, JSON.stringify(args) + '\\n');
const at = args.indexOf('--digestfile');
if (args[0] === 'push' && at !== -1) writeFileSync(args[at + 1], 'sha256:' + createHash('sha256').update(args.at(-1)).digest('hex'));
`,
  );
  chmodSync(join(binDir, name), 0o755);
  return { binDir, calls: () => readFileSync(log, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as string[]) };
}

function runImages(args: string[], binDir: string) {
  const kustomization = join(mkdtempSync(join(dir, 'manifests-')), 'Kustomization');
  copyFileSync(join(REPO_ROOT, 'manifests/Kustomization'), kustomization);
  const result = spawnSync(process.execPath, [join(REPO_ROOT, 'scripts/build-images.ts'), ...args, '--kustomization', kustomization], {
    env: { PATH: `${binDir}:/usr/bin:/bin`, HOME: dir },
    encoding: 'utf8',
  });
  return { ...result, kustomization: () => readFileSync(kustomization, 'utf8') };
}

describe('npm run images', () => {
  it('builds the three images from their Dockerfiles in the repository, pushes each, and pins them by digest in the Kustomization', () => {
    const podman = standInBuilder('podman');
    const run = runImages(['--registry', 'registry.test:5000/team/cryo', '--base-image', 'registry.test:5000/mirror/node:24'], podman.binDir);
    expect(run.status, run.stderr).toBe(0);
    const components = ['webhook', 'node-agent', 'controller'];
    expect(podman.calls()).toEqual([
      ...components.map((c) => ['build', '-f', join(REPO_ROOT, c, 'Dockerfile'), '-t', `registry.test:5000/team/cryo/${c}:0.1.0`, '--build-arg', 'BASE_IMAGE=registry.test:5000/mirror/node:24', REPO_ROOT]),
      ...components.map((c): unknown[] => ['push', '--digestfile', expect.any(String), `registry.test:5000/team/cryo/${c}:0.1.0`]),
    ]);
    const written = run.kustomization();
    const { images, resources } = parse(written) as { images: unknown[]; resources: string[] };
    expect(images).toEqual(components.map((c) => ({ name: `cryo.invalid/${c}`, newName: `registry.test:5000/team/cryo/${c}`, digest: expect.stringMatching(/^sha256:[0-9a-f]{64}$/) })));
    // The rest stays as it was, comments included.
    expect(resources).toEqual((parse(readFileSync(join(REPO_ROOT, 'manifests/Kustomization'), 'utf8')) as { resources: string[] }).resources);
    expect(written).toContain('# The images: below are the one place');
    expect(run.stdout.trim().split('\n')).toEqual(components.map((c): unknown => expect.stringMatching(new RegExp(`^${c} registry\\.test:5000/team/cryo/${c}@sha256:[0-9a-f]{64}$`))));
  });

  it('with --no-push and --tag, only builds, and the Kustomization names the tag', () => {
    const buildah = standInBuilder('buildah');
    const run = runImages(['--registry', 'localhost/cryo', '--tag', 'dev-1', '--no-push'], buildah.binDir);
    expect(run.status, run.stderr).toBe(0);
    expect(buildah.calls().map((call) => call[0])).toEqual(['build', 'build', 'build']);
    expect((parse(run.kustomization()) as { images: unknown[] }).images).toContainEqual({ name: 'cryo.invalid/node-agent', newName: 'localhost/cryo/node-agent', newTag: 'dev-1' });
  });

  it.each([
    [[], /--registry is required/],
    [['--registry', 'someone/cryo'], /"someone" is no registry host .* pulled from the namespace "someone"/],
    [['--registry', 'https://registry.test/cryo'], /no scheme or tag/],
    [['--registry', 'cryo.invalid/cryo'], /placeholder the manifests name/],
    [['--registry', 'registry.test/cryo', '--builder', 'kaniko'], /--builder .*expected one of podman, buildah, docker/],
  ])('refuses %j, saying what is wrong, and changes nothing', (args, message) => {
    const podman = standInBuilder('podman');
    const run = runImages(args, podman.binDir);
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(message);
    expect(run.kustomization()).toBe(readFileSync(join(REPO_ROOT, 'manifests/Kustomization'), 'utf8'));
  });

  it('says which builders it looks for when none is on PATH', () => {
    const run = runImages(['--registry', 'registry.test/cryo'], mkdtempSync(join(dir, 'empty-bin-')));
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(/none of podman, buildah, docker is on PATH/);
  });

  it('a failed build stops it before any push, and leaves the Kustomization alone', () => {
    const binDir = mkdtempSync(join(dir, 'failing-bin-'));
    writeFileSync(join(binDir, 'podman'), '#!/bin/sh\necho "no space left on device" >&2\nexit 125\n');
    chmodSync(join(binDir, 'podman'), 0o755);
    const run = runImages(['--registry', 'registry.test/cryo'], binDir);
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/build registry\.test\/cryo\/webhook:0\.1\.0 failed \(podman exited 125\)/);
    expect(run.kustomization()).toBe(readFileSync(join(REPO_ROOT, 'manifests/Kustomization'), 'utf8'));
  });

  it('adds an entry a kustomization lacks, and switches a pinned one back to a tag', () => {
    const text = 'resources: [../base]\nimages:\n  - name: cryo.invalid/webhook\n    newName: old.test/cryo/webhook\n    digest: sha256:' + '0'.repeat(64) + '\n';
    const updated = parse(setKustomizationImages(text, [
      { component: 'webhook', newName: 'new.test/cryo/webhook', newTag: '0.2.0' },
      { component: 'controller', newName: 'new.test/cryo/controller', newTag: '0.2.0' },
    ]));
    expect(updated).toEqual({
      resources: ['../base'],
      images: [
        { name: 'cryo.invalid/webhook', newName: 'new.test/cryo/webhook', newTag: '0.2.0' },
        { name: 'cryo.invalid/controller', newName: 'new.test/cryo/controller', newTag: '0.2.0' },
      ],
    });
  });
});
