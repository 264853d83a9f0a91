import { lstat, mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { V1Pod } from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { annotations, silentLogger, type Checkpoint, type CheckpointFailure } from '@cryo/common';
import type { CheckpointArchiveInfo, CheckpointEngine } from '../archive/checkpoint-archive-info.ts';
import { StoreError, type CheckpointStore } from '../storage/checkpoint-store.ts';
import { KubeletArchives } from '../kubelet/kubelet-archives.ts';
import { CheckpointRunner, finishOutcome } from './checkpoint-runner.ts';
import { statusWithConditions } from './checkpoint-status.ts';
import { describeStoreProgress } from './store-progress.ts';
import type { PrepareOptions, PrepareResult } from '../hooks/hook-server.ts';

const pod: V1Pod = { metadata: { namespace: 'shop', name: 'orders-0', uid: 'pod-uid-1' }, spec: { nodeName: 'node-a', containers: [{ name: 'app', image: 'shop/orders:1' }] } };
const checkpoint: Checkpoint = { metadata: { namespace: 'shop', name: 'orders-warm', uid: 'ckpt-uid-1' }, spec: { podName: 'orders-0' } };

async function runWithEngine(engine: CheckpointEngine, kubeletAnswers: Array<Error | undefined> = []) {
  const archive: CheckpointArchiveInfo = {
    path: '/kubelet/app.tar', sizeBytes: 10, containerName: 'app', baseImage: 'shop/orders:1', baseImageId: '', runtime: 'runc',
    engine, checkpointedTime: '', pod: { name: 'orders-0', namespace: 'shop', uid: 'pod-uid-1' }, mountDestinations: [], criuVersion: '',
  };
  const store: CheckpointStore = {
    kind: 'registry',
    store: () => Promise.resolve({ restoreReference: `r/app@sha256:${'a'.repeat(64)}`, referenceType: 'image', sizeBytes: 10, digest: `sha256:${'a'.repeat(64)}`, durationMs: 1 }),
    storePodCheckpoint: () => Promise.resolve({ reference: `r/pod@sha256:${'b'.repeat(64)}`, referenceType: 'image-index', digest: `sha256:${'b'.repeat(64)}` }),
    list: () => Promise.resolve([]),
    applyRetention: () => Promise.resolve({ kept: [], removed: [] }),
    removeCheckpoint: () => Promise.resolve([]),
  };
  const answers = [...kubeletAnswers];
  let kubeletCalls = 0;
  const runner = new CheckpointRunner({
    hooks: { hasPod: () => false, prepare: () => Promise.reject(new Error('no hooks')), finish: () => Promise.resolve() },
    // Each call takes the next answer: an error to throw, or (none left) the archive.
    kubelet: {
      checkpoint: () => {
        kubeletCalls++;
        const answer = answers.shift();
        return answer === undefined ? Promise.resolve({ archivePath: archive.path, durationMs: 5 }) : Promise.reject(answer);
      },
    },
    readArchive: () => Promise.resolve(archive),
    removeKubeletArchive: () => Promise.resolve(),
    logger: silentLogger(),
    hookTimeoutMs: 1_000,
    kubeletTimeoutSeconds: 10,
    kubeletRetryDelayMs: 0,
  });
  const result = await runner.run(checkpoint, pod, ['app'], store);
  return Object.assign(result, { kubeletCalls });
}

describe('CheckpointRunner and failures of the runtime that pass', () => {
  const unableToFreeze = () => new Error('the container runtime failed to checkpoint: checkpointing of shop/orders-0/app failed (OCI runtime pause failed: unable to freeze)');

  it('asks the kubelet again when the runtime could not freeze the container, and succeeds', async () => {
    const result = await runWithEngine('containerd', [unableToFreeze(), unableToFreeze()]);
    expect(result).toMatchObject({ phase: 'Succeeded', kubeletCalls: 3 });
  });

  it('gives up after two more tries, with the runtime\'s words', async () => {
    const result = await runWithEngine('containerd', [unableToFreeze(), unableToFreeze(), unableToFreeze()]);
    expect(result).toMatchObject({ phase: 'Failed', reason: 'DumpFailed', kubeletCalls: 3, error: expect.stringContaining('unable to freeze') });
  });

  it('does not ask again after any other failure', async () => {
    const result = await runWithEngine('containerd', [new Error('checkpointing failed: CRIU said: Error (criu/sk-inet.c:191): inet: Connected TCP socket')]);
    expect(result).toMatchObject({ phase: 'Failed', kubeletCalls: 1 });
  });
});

describe('CheckpointRunner records the runtime that took each container', () => {
  it.each([
    ['containerd', { runtime: 'containerd' }],
    ['cri-o', { runtime: 'cri-o' }],
  ] as const)('%s: the status names it, so that the webhook restores only on nodes of that runtime', async (engine, expected) => {
    const result = await runWithEngine(engine);
    expect(result.phase).toBe('Succeeded');
    expect(result.phase === 'Succeeded' && result.containers).toEqual([expect.objectContaining({ name: 'app', ...expected })]);
  });

  it('podman: none (no kubelet writes such an archive, and no node restores it)', async () => {
    const result = await runWithEngine('podman');
    expect(result.phase === 'Succeeded' && 'runtime' in result.containers[0]).toBe(false);
  });
});

describe('CheckpointRunner tells the app how its checkpoint ended', () => {
  const withHooks: V1Pod = { ...pod, metadata: { ...pod.metadata, annotations: { [annotations.HOOKS]: annotations.HOOKS_ENABLED } } };

  /** One container; the kubelet fails when `dumpFails`. Records what the hooks were asked. */
  async function run(purpose: 'Snapshot' | 'Migration' | undefined, dumpFails = false) {
    const archive: CheckpointArchiveInfo = {
      path: '/kubelet/app.tar', sizeBytes: 10, containerName: 'app', baseImage: 'shop/orders:1', baseImageId: '', runtime: 'runc',
      engine: 'containerd', checkpointedTime: '', pod: { name: 'orders-0', namespace: 'shop', uid: 'pod-uid-1' }, mountDestinations: [], criuVersion: '',
    };
    const store: CheckpointStore = {
      kind: 'registry',
      store: () => Promise.resolve({ restoreReference: `r/app@sha256:${'a'.repeat(64)}`, referenceType: 'image', sizeBytes: 10, digest: `sha256:${'a'.repeat(64)}`, durationMs: 1 }),
      storePodCheckpoint: () => Promise.resolve({ reference: `r/pod@sha256:${'b'.repeat(64)}`, referenceType: 'image-index', digest: `sha256:${'b'.repeat(64)}` }),
      list: () => Promise.resolve([]),
      applyRetention: () => Promise.resolve({ kept: [], removed: [] }),
      removeCheckpoint: () => Promise.resolve([]),
    };
    const prepared: PrepareOptions[] = [];
    const finished: Array<[string, string, string]> = [];
    const runner = new CheckpointRunner({
      hooks: {
        hasPod: () => true,
        prepare: (_uid, options) => Promise.resolve(void prepared.push(options)).then(() => ({ status: 'ready' as const, sessions: [], durationMs: 1 })),
        finish: (uid, id, outcome) => Promise.resolve(void finished.push([uid, id, outcome])),
      },
      kubelet: { checkpoint: () => (dumpFails ? Promise.reject(new Error('CRIU said: Connected TCP socket')) : Promise.resolve({ archivePath: archive.path, durationMs: 5 })) },
      readArchive: () => Promise.resolve(archive),
      removeKubeletArchive: () => Promise.resolve(),
      logger: silentLogger(),
      hookTimeoutMs: 1_000,
      kubeletTimeoutSeconds: 10,
    });
    const spec = purpose === undefined ? checkpoint.spec : { ...checkpoint.spec, purpose };
    const result = await runner.run({ ...checkpoint, spec }, withHooks, ['app'], store);
    return { result, prepared, finished };
  }

  it.each([
    ['no purpose', undefined, 'Snapshot', 'done'],
    ['Snapshot', 'Snapshot', 'Snapshot', 'done'],
    ['Migration', 'Migration', 'Migration', 'superseded'],
  ] as const)('%s, dumped: the app is told %s', async (_what, purpose, asked, outcome) => {
    const { result, prepared, finished } = await run(purpose);
    expect(result.phase).toBe('Succeeded');
    expect(prepared).toEqual([expect.objectContaining({ checkpointId: 'shop/orders-warm', purpose: asked, containers: ['app'] })]);
    expect(finished).toEqual([['pod-uid-1', 'shop/orders-warm', outcome]]);
  });

  it.each([undefined, 'Snapshot', 'Migration'] as const)('purpose %s, the dump failed: aborted, and the original carries on', async (purpose) => {
    const { result, finished } = await run(purpose, true);
    expect(result).toMatchObject({ phase: 'Failed', reason: 'DumpFailed', error: expect.stringContaining('Connected TCP socket') });
    expect(finished).toEqual([['pod-uid-1', 'shop/orders-warm', 'aborted']]);
  });

  it('finishOutcome: aborted whenever nothing was dumped, superseded only for a dumped Migration', () => {
    const of = (purpose?: 'Snapshot' | 'Migration') => ({ ...checkpoint, spec: { ...checkpoint.spec, ...(purpose === undefined ? {} : { purpose }) } });
    expect([finishOutcome(of(), true), finishOutcome(of('Snapshot'), true), finishOutcome(of('Migration'), true)]).toEqual(['done', 'done', 'superseded']);
    expect([finishOutcome(of(), false), finishOutcome(of('Snapshot'), false), finishOutcome(of('Migration'), false)]).toEqual(['aborted', 'aborted', 'aborted']);
  });
});

describe('CheckpointRunner and the archive paths the kubelet answers', () => {
  let dir: string;
  let checkpointsDir: string;
  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'cryo-runner-archives-'));
    checkpointsDir = path.join(dir, 'checkpoints');
    await mkdir(checkpointsDir);
    await writeFile(path.join(dir, 'victim.tar'), 'keep');
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** Two containers: `app` answers a good archive, `sidecar` what the test says. */
  async function run(sidecarAnswer: string) {
    const archives = new KubeletArchives(checkpointsDir);
    const good = path.join(checkpointsDir, 'app.tar');
    await writeFile(good, 'tar');
    const calls: string[] = [];
    const outcomes: string[] = [];
    const twoContainers: V1Pod = { ...pod, metadata: { ...pod.metadata, annotations: { [annotations.HOOKS]: annotations.HOOKS_ENABLED } } };
    const runner = new CheckpointRunner({
      hooks: {
        hasPod: () => true,
        prepare: () => Promise.resolve({ status: 'ready', sessions: [], durationMs: 1 }),
        finish: (_uid, _id, outcome) => Promise.resolve(void outcomes.push(outcome)),
      },
      kubelet: { checkpoint: (_ns, _pod, container) => Promise.resolve({ archivePath: container === 'app' ? good : sidecarAnswer, durationMs: 5 }) },
      confineKubeletArchive: (answered) => archives.confine(answered),
      readArchive: (answered) => Promise.resolve(void calls.push(`read ${answered}`)).then(() => Promise.reject(new Error('not reached'))),
      // Recorded; really removed only inside the test's directory (a regression must not delete a real /etc/passwd).
      removeKubeletArchive: (answered) => (calls.push(`remove ${answered}`), answered.startsWith(dir) ? archives.remove(answered) : Promise.resolve()),
      logger: silentLogger(),
      hookTimeoutMs: 1_000,
      kubeletTimeoutSeconds: 10,
    });
    const store = { kind: 'registry' } as CheckpointStore;
    const result = await runner.run(checkpoint, twoContainers, ['app', 'sidecar'], store);
    return { result, calls, outcomes, good };
  }

  it.each([
    ['/etc/passwd', () => '/etc/passwd', /it is not in --kubelet-checkpoints-dir/],
    ['a ../ escape', () => `${checkpointsDir}/../victim.tar`, /it is not in --kubelet-checkpoints-dir/],
    ['a symlink in the directory pointing outside', () => path.join(checkpointsDir, 'evil.tar'), /it is a symbolic link/],
  ])('fails the Checkpoint on %s, reads and deletes nothing there, and resumes the app', async (_what, answer, why) => {
    await symlink(path.join(dir, 'victim.tar'), path.join(checkpointsDir, 'evil.tar'));
    const passwd = await stat('/etc/passwd');
    const { result, calls, outcomes, good } = await run(answer());
    expect(result).toMatchObject({ phase: 'Failed', reason: 'ArchiveRefused' });
    const { error } = result as CheckpointFailure;
    expect(error).toMatch(new RegExp(`^the archive of container "sidecar" was refused, so nothing was stored and the app resumed: the kubelet answered the archive path "${escape(answer())}", which the agent does not read or delete: `));
    expect(error).toMatch(why);
    // The good archive of the first container is discarded; nothing of the refused one is touched.
    expect(calls).toEqual([`remove ${good}`]);
    expect(outcomes).toEqual(['aborted']);
    expect(await readFile(path.join(dir, 'victim.tar'), 'utf8')).toBe('keep');
    expect((await lstat(path.join(checkpointsDir, 'evil.tar'))).isSymbolicLink()).toBe(true);
    expect((await stat('/etc/passwd')).ino).toBe(passwd.ino);
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

describe('CheckpointRunner when the hooks or the store fail', () => {
  const withHooks: V1Pod = { ...pod, metadata: { ...pod.metadata, annotations: { [annotations.HOOKS]: annotations.HOOKS_ENABLED } } };
  const archiveOf = (container: string): CheckpointArchiveInfo => ({
    path: `/kubelet/${container}.tar`, sizeBytes: 10, containerName: container, baseImage: 'shop/orders:1', baseImageId: '', runtime: 'runc',
    engine: 'containerd', checkpointedTime: '', pod: { name: 'orders-0', namespace: 'shop', uid: 'pod-uid-1' }, mountDestinations: [], criuVersion: '',
  });

  /** A runner whose every step is recorded in `calls`; `prepare` answers as the hook server would. */
  function runnerWith(prepare: () => Promise<PrepareResult>) {
    const calls: string[] = [];
    const runner = new CheckpointRunner({
      hooks: {
        hasPod: () => true,
        prepare: () => (calls.push('prepare'), prepare()),
        finish: (_uid, _id, outcome) => Promise.resolve(void calls.push(`finish ${outcome}`)),
      },
      kubelet: { checkpoint: (_ns, _pod, container) => (calls.push(`kubelet ${container}`), Promise.resolve({ archivePath: `/kubelet/${container}.tar`, durationMs: 5 })) },
      readArchive: (archivePath) => Promise.resolve(archiveOf(path.basename(archivePath, '.tar'))),
      removeKubeletArchive: (archivePath) => Promise.resolve(void calls.push(`remove ${archivePath}`)),
      logger: silentLogger(),
      hookTimeoutMs: 1_000,
      kubeletTimeoutSeconds: 10,
    });
    return { runner, calls };
  }

  /** Stores `app`, then fails on any other container with `failure`; removeCheckpoint as given. */
  function storeFailingAfterApp(removeCheckpoint: CheckpointStore['removeCheckpoint'], calls: string[], failure: Error = new Error('ENOSPC: no space left on device, write')): CheckpointStore {
    return {
      kind: 'directory',
      store: ({ containerName }) => {
        calls.push(`store ${containerName}`);
        return containerName === 'app'
          ? Promise.resolve({ restoreReference: '/store/app.tar', referenceType: 'archive', sizeBytes: 10, digest: `sha256:${'a'.repeat(64)}`, durationMs: 1 })
          : Promise.reject(failure);
      },
      storePodCheckpoint: () => Promise.reject(new Error('not reached')),
      list: () => Promise.resolve([]),
      applyRetention: () => Promise.resolve({ kept: [], removed: [] }),
      removeCheckpoint: (identity) => (calls.push(`removeCheckpoint ${identity.namespace}/${identity.name} ${identity.uid}`), removeCheckpoint(identity)),
    };
  }

  it('prepare fails: HooksNotReady with the hooks\' reasons, nothing dumped, and the app told aborted', async () => {
    const { runner, calls } = runnerWith(() => Promise.resolve({ status: 'failed', reasons: ['process 12 (app): hook "flush-cache" timed out after 1000 ms'], sessions: [], durationMs: 1000 }));
    const store = storeFailingAfterApp(() => Promise.resolve([]), calls);
    const result = await runner.run(checkpoint, withHooks, ['app'], store);
    expect(result).toEqual({ phase: 'Failed', reason: 'HooksNotReady', error: 'the app\'s pre-checkpoint hooks did not get ready, so nothing was dumped and the app resumed: process 12 (app): hook "flush-cache" timed out after 1000 ms' });
    expect(calls).toEqual(['prepare', 'finish aborted']);
  });

  it('the store fails on the second container: StoreFailed, both kubelet archives discarded, the first container removed from the store', async () => {
    const { runner, calls } = runnerWith(() => Promise.resolve({ status: 'ready', sessions: [], durationMs: 1 }));
    const store = storeFailingAfterApp(() => Promise.resolve([]), calls);
    const result = await runner.run(checkpoint, withHooks, ['app', 'sidecar'], store);
    expect(result).toEqual({ phase: 'Failed', reason: 'StoreFailed', error: 'storing the checkpoint of container "sidecar" failed (the app was resumed): ENOSPC: no space left on device, write' });
    expect(calls).toEqual([
      'prepare', 'kubelet app', 'kubelet sidecar', 'finish done',
      'store app', 'remove /kubelet/app.tar', 'store sidecar', 'remove /kubelet/sidecar.tar', 'removeCheckpoint shop/orders-warm ckpt-uid-1',
    ]);
  });

  it.each([
    { blocker: undefined, reason: 'StoreFailed', retryable: true },
    { blocker: 'denied', reason: 'StoreDenied', retryable: false },
    { blocker: 'full', reason: 'StoreFull', retryable: false },
    { blocker: 'rejected', reason: 'StoreRejected', retryable: false },
  ] as const)('a store failure with blocker $blocker is $reason, retryable $retryable: what someone must fix first is not worth a new Checkpoint', async ({ blocker, reason, retryable }) => {
    const { runner, calls } = runnerWith(() => Promise.resolve({ status: 'ready', sessions: [], durationMs: 1 }));
    const failure = new StoreError('start a blob upload: registry r.example, repository team/app: HTTP 4xx', { retriable: blocker === undefined, blocker });
    const result = await runner.run(checkpoint, withHooks, ['app', 'sidecar'], storeFailingAfterApp(() => Promise.resolve([]), calls, failure));
    expect(result).toEqual({ phase: 'Failed', reason, error: 'storing the checkpoint of container "sidecar" failed (the app was resumed): start a blob upload: registry r.example, repository team/app: HTTP 4xx' });
    expect(statusWithConditions({ phase: 'Failed', reason, message: (result as CheckpointFailure).error }, undefined, 1, new Date()).retryable).toBe(retryable);
    // Whatever the reason, the container stored before it is removed again.
    expect(calls).toContain('removeCheckpoint shop/orders-warm ckpt-uid-1');
  });

  it('the store fails on the first container: nothing was stored, so nothing is removed from it', async () => {
    const { runner, calls } = runnerWith(() => Promise.resolve({ status: 'ready', sessions: [], durationMs: 1 }));
    const store = storeFailingAfterApp(() => Promise.resolve([]), calls);
    const result = await runner.run(checkpoint, withHooks, ['sidecar', 'app'], store);
    expect(result).toMatchObject({ phase: 'Failed', reason: 'StoreFailed' });
    expect(calls.filter((call) => call.startsWith('remove'))).toEqual(['remove /kubelet/sidecar.tar', 'remove /kubelet/app.tar']);
  });

  it('what was stored cannot be removed either: the message says so and what to do', async () => {
    const { runner, calls } = runnerWith(() => Promise.resolve({ status: 'ready', sessions: [], durationMs: 1 }));
    const store = storeFailingAfterApp(() => Promise.reject(new Error('EIO: i/o error, unlink \'/store/app.tar\'')), calls);
    const result = await runner.run(checkpoint, withHooks, ['app', 'sidecar'], store);
    expect(result).toMatchObject({ phase: 'Failed', reason: 'StoreFailed' });
    expect((result as CheckpointFailure).error).toMatch(/; the containers stored before it could not be removed \(EIO: i\/o error, unlink '\/store\/app.tar'\): remove them by hand$/);
  });
});

describe('CheckpointRunner while a slow store stores', () => {
  it('passes on how far the store got, each quarter and each interval, on its clock', async () => {
    let clock = 0;
    const MiB = 1024 * 1024;
    const archive: CheckpointArchiveInfo = {
      path: '/kubelet/app.tar', sizeBytes: 100 * MiB, containerName: 'app', baseImage: 'shop/orders:1', baseImageId: '', runtime: 'runc',
      engine: 'containerd', checkpointedTime: '', pod: { name: 'orders-0', namespace: 'shop', uid: 'pod-uid-1' }, mountDestinations: [], criuVersion: '',
    };
    // 10 MiB every 3 s: 30 s for the archive.
    const slowStore: CheckpointStore = {
      kind: 'directory',
      store: ({ onProgress }) => {
        for (let stored = 10 * MiB; stored <= archive.sizeBytes; stored += 10 * MiB) {
          clock += 3_000;
          onProgress?.(stored);
        }
        return Promise.resolve({ restoreReference: '/store/app.tar', referenceType: 'archive', sizeBytes: archive.sizeBytes, digest: `sha256:${'a'.repeat(64)}`, durationMs: 30_000 });
      },
      storePodCheckpoint: () => Promise.resolve({ reference: '/store/pod.json', referenceType: 'file', digest: `sha256:${'b'.repeat(64)}` }),
      list: () => Promise.resolve([]),
      applyRetention: () => Promise.resolve({ kept: [], removed: [] }),
      removeCheckpoint: () => Promise.resolve([]),
    };
    const runner = new CheckpointRunner({
      hooks: { hasPod: () => false, prepare: () => Promise.reject(new Error('no hooks')), finish: () => Promise.resolve() },
      kubelet: { checkpoint: () => Promise.resolve({ archivePath: archive.path, durationMs: 5 }) },
      readArchive: () => Promise.resolve(archive),
      removeKubeletArchive: () => Promise.resolve(),
      logger: silentLogger(),
      hookTimeoutMs: 1_000,
      kubeletTimeoutSeconds: 10,
      storeProgressIntervalMs: 10_000,
      now: () => clock,
    });
    const heard: string[] = [];
    const result = await runner.run(checkpoint, pod, ['app'], slowStore, (progress) => heard.push(describeStoreProgress(progress)));
    expect(result.phase).toBe('Succeeded');
    // 30 MiB at 9 s (a quarter crossed), 50 MiB at 15 s, 80 MiB at 24 s; never 10 s between two
    // (the interval is StoreProgressThrottle's test), and none at 100 % (the final status says it).
    expect(heard).toEqual([
      'container "app": stored 30.0 MiB of 100.0 MiB (30 %) at 3.3 MiB/s',
      'container "app": stored 50.0 MiB of 100.0 MiB (50 %) at 3.3 MiB/s',
      'container "app": stored 80.0 MiB of 100.0 MiB (80 %) at 3.3 MiB/s',
    ]);
  });
});
