/**
 * Local mode's steps against a fake `podman` (a script that records its arguments): the flags
 * the checkpoint gets, the path mapping, hooks around the dump, the export removed whatever
 * happens, and errors that name podman's stderr. test/e2e/podman-checkpoint.test.ts runs the
 * real thing.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CheckpointArchiveInfo } from '../archive/checkpoint-archive-info.ts';
import type { PrepareOptions, PrepareResult } from '../hooks/hook-server.ts';
import type { CheckpointStore, StoreRequest } from '../storage/checkpoint-store.ts';
import { StoreError } from '../storage/checkpoint-store.ts';
import { localCheckpoint, storeName } from './local-checkpoint.ts';
import { checkpointPodmanContainer } from './podman-checkpointer.ts';

// The fake: `container inspect` answers id/name/pod, `pod inspect` the pod's name, `container
// checkpoint` writes the export (or fails when FAKE_PODMAN_FAIL is set). Every call is logged.
const FAKE_PODMAN = `
const fs = require('node:fs');
const args = process.argv.slice(2);
fs.appendFileSync(process.env.FAKE_PODMAN_LOG, JSON.stringify(args) + '\\n');
const [group, verb] = args;
if (group === 'container' && verb === 'inspect') {
  if (args.at(-1) === 'missing') { process.stderr.write('Error: no such container missing\\n'); process.exit(125); }
  process.stdout.write(args.at(-1) === 'in-pod' ? 'c0ffee in-pod beef42\\n' : 'abc123 ' + args.at(-1) + ' \\n');
} else if (group === 'pod' && verb === 'inspect') {
  process.stdout.write('Web_Pod\\n');
} else if (group === 'container' && verb === 'checkpoint') {
  if (process.env.FAKE_PODMAN_FAIL) { process.stderr.write('Error: criu failed: type NOTIFY errno 0\\n'); process.exit(125); }
  const exported = args.find((a) => a.startsWith('--export=')).slice('--export='.length);
  fs.writeFileSync(exported.replace(/^\\/mapped/, ''), 'archive bytes');
}
`;

interface Recorded {
  requests: StoreRequest[];
  archivesSeen: string[];
}

function fakeStore(recorded: Recorded, fail?: Error): CheckpointStore {
  return {
    kind: 'directory',
    store: async (request) => {
      recorded.requests.push(request);
      recorded.archivesSeen.push(await readFile(request.archive.path, 'utf8'));
      if (fail) throw fail;
      return { restoreReference: '/store/x.tar', referenceType: 'archive', sizeBytes: 13, digest: 'sha256:00', durationMs: 1 };
    },
    storePodCheckpoint: () => Promise.reject(new Error('local mode stores no pod checkpoint')),
    list: () => Promise.resolve([]),
    applyRetention: () => Promise.resolve({ kept: [], removed: [] }),
    removeCheckpoint: () => Promise.resolve([]),
  };
}

const readArchive = (path: string): Promise<CheckpointArchiveInfo> =>
  Promise.resolve({
    path,
    sizeBytes: 13,
    containerName: 'Web_App',
    baseImage: 'localhost/base:1',
    baseImageId: 'f00',
    runtime: 'crun',
    engine: 'podman',
    checkpointedTime: '',
    pod: { name: '', namespace: '', uid: '' },
    mountDestinations: [],
    criuVersion: '',
  });

describe('local mode (fake podman)', () => {
  let dir: string;
  let podmanArgv: string[];
  let logFile: string;
  let recorded: Recorded;
  const calls = async (): Promise<string[][]> => (await readFile(logFile, 'utf8')).trim().split('\n').map((line) => JSON.parse(line) as string[]);

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cryo-local-test-'));
    logFile = join(dir, 'calls.log');
    await writeFile(join(dir, 'podman.cjs'), FAKE_PODMAN);
    podmanArgv = [process.execPath, join(dir, 'podman.cjs')];
    process.env.FAKE_PODMAN_LOG = logFile;
    delete process.env.FAKE_PODMAN_FAIL;
    recorded = { requests: [], archivesSeen: [] };
  });
  afterEach(async () => {
    delete process.env.FAKE_PODMAN_FAIL;
    await rm(dir, { recursive: true, force: true });
  });

  it('checkpoints as CRI-O does (leave running, uncompressed export, no --tcp-established), stores the archive and removes the export', async () => {
    const exportDir = join(dir, 'exports');
    const result = await localCheckpoint({ container: 'web', store: fakeStore(recorded), readArchive, podmanArgv, exportDir, checkpointName: 'warm', podmanPath: (p) => `/mapped${p}` });
    const checkpointCall = (await calls()).find((c) => c[1] === 'checkpoint')!;
    expect(checkpointCall.slice(0, 3)).toEqual(['container', 'checkpoint', '--leave-running']);
    expect(checkpointCall).toContain('--compress=none');
    expect(checkpointCall.at(-1)).toBe('web');
    expect(checkpointCall.find((a) => a.startsWith('--export='))).toMatch(new RegExp(`^--export=/mapped${exportDir}/web-.+\\.tar$`));
    expect(checkpointCall.join(' ')).not.toContain('tcp-established');
    expect(recorded.archivesSeen).toEqual(['archive bytes']);
    expect(recorded.requests[0]).toMatchObject({ checkpoint: { namespace: 'podman', name: 'warm' }, pod: { namespace: 'podman', name: 'web', uid: 'abc123' }, containerName: 'web-app' });
    expect(result).toMatchObject({ restoreReference: '/store/x.tar', referenceType: 'archive', checkpointName: 'warm', archive: { containerName: 'Web_App' } });
    expect(await readdir(exportDir)).toEqual([]);
  });

  it('records the Podman pod of a container in one, in names the stores take', async () => {
    await localCheckpoint({ container: 'in-pod', store: fakeStore(recorded), readArchive, podmanArgv, namespace: 'lab' });
    expect(recorded.requests[0].pod).toEqual({ namespace: 'lab', name: 'web-pod', uid: 'beef42' });
    expect(recorded.requests[0].checkpoint.name).toMatch(/^in-pod-\d{8}-\d{6}z$/);
    expect(await calls()).toContainEqual(['pod', 'inspect', '--format', '{{.Name}}', 'beef42']);
  });

  it('stops the container with leaveRunning false', async () => {
    await checkpointPodmanContainer('web', { exportDir: join(dir, 'e'), leaveRunning: false, podmanArgv });
    expect((await calls()).at(-1)).not.toContain('--leave-running');
  });

  it("names podman's stderr when the checkpoint fails, leaves no export, and resumes the app's hooks as aborted", async () => {
    process.env.FAKE_PODMAN_FAIL = '1';
    const finished: string[] = [];
    const hooks = {
      coordinator: {
        prepare: (_uid: string, options: PrepareOptions): Promise<PrepareResult> => {
          finished.push(`prepare ${options.checkpointId} ${options.containers?.join(',')}`);
          return Promise.resolve({ status: 'ready', sessions: [], durationMs: 1 });
        },
        finish: (_uid: string, id: string, outcome: string) => {
          finished.push(`finish ${id} ${outcome}`);
          return Promise.resolve();
        },
      },
      podUid: 'pod-1',
      containerName: 'app',
    };
    const exportDir = join(dir, 'exports');
    await expect(localCheckpoint({ container: 'web', store: fakeStore(recorded), readArchive, podmanArgv, exportDir, checkpointName: 'c1', hooks })).rejects.toThrow(
      /podman container checkpoint of "web" failed \(exit 125\): Error: criu failed: type NOTIFY errno 0/,
    );
    expect(finished).toEqual(['prepare podman/c1 app', 'finish podman/c1 aborted']);
    expect(recorded.requests).toEqual([]);
    expect(await readdir(exportDir)).toEqual([]);
  });

  it('does not dump when the hooks do not get ready', async () => {
    const finished: string[] = [];
    const hooks = {
      coordinator: {
        prepare: (): Promise<PrepareResult> => Promise.resolve({ status: 'failed', reasons: ['db: flush refused'], sessions: [], durationMs: 1 }),
        finish: (_uid: string, _id: string, outcome: string) => {
          finished.push(outcome);
          return Promise.resolve();
        },
      },
      podUid: 'pod-1',
    };
    await expect(localCheckpoint({ container: 'web', store: fakeStore(recorded), readArchive, podmanArgv, hooks })).rejects.toThrow(/did not get ready.*db: flush refused/);
    expect(finished).toEqual(['aborted']);
    expect((await calls()).some((c) => c[1] === 'checkpoint')).toBe(false);
  });

  it('removes the export when the store fails, and passes the store error on', async () => {
    const exportDir = join(dir, 'exports');
    await expect(localCheckpoint({ container: 'web', store: fakeStore(recorded, new StoreError('registry said 500', { retriable: true })), readArchive, podmanArgv, exportDir })).rejects.toThrow('registry said 500');
    expect(recorded.archivesSeen).toEqual(['archive bytes']);
    expect(await readdir(exportDir)).toEqual([]);
  });

  it('says so when the container does not exist or podman cannot run', async () => {
    await expect(localCheckpoint({ container: 'missing', store: fakeStore(recorded), readArchive, podmanArgv })).rejects.toThrow(/no such container missing/);
    await expect(localCheckpoint({ container: 'web', store: fakeStore(recorded), readArchive, podmanArgv: [join(dir, 'no-podman-here')] })).rejects.toThrow(/is not installed or not on PATH/);
    await expect(checkpointPodmanContainer('bad name', { exportDir: dir })).rejects.toThrow(/not a Podman container name/);
    expect(existsSync(join(dir, 'exports'))).toBe(false);
  });

  it('turns Podman names into names the stores take', () => {
    expect(storeName('Web_App')).toBe('web-app');
    expect(storeName('_x..y_')).toBe('x..y');
    expect(storeName('___')).toBe('container');
    expect(storeName('a'.repeat(80))).toHaveLength(63);
  });
});
