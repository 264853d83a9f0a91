/**
 * The local-mode command line, wired to the real archive reader and directory store, with a fake
 * `podman` that "exports" a Podman-layout archive the test harness builds.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCheckpointArchive, runEntry } from '@cryo/test';

const MAIN = join(dirname(fileURLToPath(import.meta.url)), 'local-main.ts');

const FAKE_PODMAN = `
const fs = require('node:fs');
const args = process.argv.slice(2);
if (args[0] === 'container' && args[1] === 'inspect') process.stdout.write('abc123def456 ' + args.at(-1) + ' \\n');
else if (args[0] === 'container' && args[1] === 'checkpoint') fs.copyFileSync(process.env.FAKE_ARCHIVE, args.find((a) => a.startsWith('--export=')).slice(9));
else { process.stderr.write('unexpected: ' + args.join(' ')); process.exit(2); }
`;

function run(args: string[], env: Record<string, string> = {}) {
  return runEntry(MAIN, args, { ...process.env, ...env }, 30_000);
}

describe('local-main.ts', () => {
  let dir: string;
  let fakePodman: string;
  let archive: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cryo-local-main-'));
    fakePodman = join(dir, 'podman.cjs');
    await writeFile(fakePodman, FAKE_PODMAN);
    archive = (await buildCheckpointArchive({ dir, engine: 'podman', containerName: 'web', image: 'localhost/base:1', runtime: 'crun', volumeMounts: ['/data'] })).path;
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('checkpoints into a directory store and prints the restore reference as JSON', async () => {
    const result = await run(['checkpoint', 'web', '--directory', join(dir, 'store'), '--name', 'warm', '--podman', `${process.execPath} ${fakePodman}`], { FAKE_ARCHIVE: archive });
    expect(result.code, result.stderr).toBe(0);
    const output = JSON.parse(result.stdout) as Record<string, unknown>;
    expect(output).toMatchObject({ referenceType: 'archive', checkpointName: 'warm', container: 'web', baseImage: 'localhost/base:1', mountDestinations: ['/data'] });
    expect(output.restoreReference).toMatch(new RegExp(`^${join(dir, 'store')}/podman/web/web/warm-[0-9a-z]{8}\\.tar$`));
    expect(existsSync(output.restoreReference as string)).toBe(true);
    expect(output.restoreCommand).toBe(`podman container restore --import ${output.restoreReference as string}`);
    expect(output.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(result.stderr).toMatch(/^checkpointed web in \d+\.\d\d s, stored .* MiB in the directory store/);
  });

  it('refuses unclear arguments with the usage and exit 2', async () => {
    const cases: [string[], string][] = [
      [['checkpoint', 'web'], 'give exactly one store'],
      [['checkpoint', 'web', '--directory', dir, '--registry-repository', 'r.example/x'], 'give exactly one store'],
      [['restore', 'web', '--directory', dir], 'unknown command "restore"'],
      [['checkpoint', '--directory', dir], 'checkpoint needs the container'],
      [['checkpoint', 'web', '--bogus'], 'unknown flag --bogus'],
      // The agent's flag names, checks and boolean spelling, not local mode's own.
      [['checkpoint', 'web', '--registry', 'r.example/x'], 'unknown flag --registry'],
      [['checkpoint', 'web', '--registry-repository', 'http://r.example/x'], '--registry-repository (env CRYO_REGISTRY_REPOSITORY): expected a repository'],
      [['checkpoint', 'web', '--directory', 'store'], '--directory (env CRYO_DIRECTORY): expected an absolute path, got "store"'],
      [['checkpoint', 'web', '--directory', dir, '--stop', 'true'], '--stop takes no separate value'],
      [['checkpoint', 'web', '--directory', dir, '--timeout', '0'], '--timeout: expected at least 1ms, got "0"'],
    ];
    for (const [[args, why], result] of await Promise.all(cases.map(async (c) => [c, await run(c[0])] as const))) {
      expect(result.code, args.join(' ')).toBe(2);
      expect(result.stderr).toContain(`local-main: ${why}`);
      expect(result.stderr).toContain('Usage: local-main.ts checkpoint <container>');
    }
  });

  it('fails with exit 1 naming what podman said', async () => {
    const result = await run(['checkpoint', 'web', '--directory', join(dir, 'store2'), '--podman', `${process.execPath} ${join(dir, 'absent.cjs')}`]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^local-main: checkpoint failed: podman container inspect of "web" failed/);
  });
});
