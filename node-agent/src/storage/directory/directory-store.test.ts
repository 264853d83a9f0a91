import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, open, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCheckpointArchive, captureLogger, waitFor, rejectionOf } from '@cryo/test';
import { readCheckpointArchive } from '../../archive/checkpoint-archive.ts';
import type { CheckpointArchiveInfo } from '../../archive/checkpoint-archive-info.ts';
import { CHECKPOINT_API_VERSION, POD_CHECKPOINT_KIND, type PodCheckpoint } from '@cryo/common';
import { StoreError, type StoredCheckpoint, type StoreRequest } from '../checkpoint-store.ts';
import { DirectoryStore } from './directory-store.ts';

const run = promisify(execFile);
const MiB = 1024 * 1024;
let work: string;
let small: CheckpointArchiveInfo;

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), 'cryo-dirstore-'));
  await mkdir(path.join(work, 'archives'));
  small = await readCheckpointArchive((await buildCheckpointArchive({ dir: path.join(work, 'archives'), fileName: 'small.tar', pagesBytes: MiB })).path);
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

let roots = 0;
async function newRoot(): Promise<string> {
  const root = path.join(work, `root-${++roots}`);
  await mkdir(root);
  return root;
}

function request(archive: CheckpointArchiveInfo, o: { name?: string; uid?: string; pod?: string; container?: string; signal?: AbortSignal } = {}): StoreRequest {
  return {
    archive,
    checkpoint: { namespace: 'shop', name: o.name ?? 'orders-warm', uid: o.uid ?? '0a1b2c3d-4e5f-6789-abcd-ef0123456789' },
    pod: { namespace: 'shop', name: o.pod ?? 'orders-api-7c9f8d6b5-x2vqz', uid: '6f1c2b9e-8d4a-4e5f-9a7b-3c2d1e0f9a8b' },
    containerName: o.container ?? 'app',
    signal: o.signal,
  };
}

async function sha256Of(file: string): Promise<string> {
  return createHash('sha256').update(await readFile(file)).digest('hex');
}

/** Every file under `dir`, relative, sorted (directories only as the paths of their files). */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => !e.isDirectory())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))
    .sort();
}

/** The pod checkpoint of `containers`, as the runner builds it. */
function podDocument(o: { name: string; containers: Array<{ name: string; stored: StoredCheckpoint }> }): PodCheckpoint {
  const req = request(small, { name: o.name });
  return {
    apiVersion: CHECKPOINT_API_VERSION,
    kind: POD_CHECKPOINT_KIND,
    checkpoint: req.checkpoint,
    createdAt: '2026-12-01T12:00:00.000Z',
    nodeName: 'node-a',
    pod: { ...req.pod, labels: { app: 'orders' }, annotations: {}, spec: { containers: o.containers.map((c) => ({ name: c.name, image: `shop/${c.name}:1` })) } },
    containers: o.containers.map(({ name, stored }) => ({ name, image: `shop/${name}:1`, restoreReference: stored.restoreReference, referenceType: stored.referenceType, digest: stored.digest, sizeBytes: stored.sizeBytes, mountDestinations: [] })),
    notCheckpointed: [],
  };
}

describe('DirectoryStore.store', () => {
  it('lays an archive out as <ns>/<pod>/<container>/<checkpoint>-<uid8>.tar with its sha256sum line and metadata', async () => {
    const root = await newRoot();
    const store = new DirectoryStore({ root, logger: captureLogger().logger, now: () => new Date('2026-12-01T12:00:00Z') });

    const stored = await store.store(request(small));

    const archive = path.join(root, 'shop/orders-api-7c9f8d6b5-x2vqz/app/orders-warm-0a1b2c3d.tar');
    const hex = await sha256Of(small.path);
    // No registry view: the archive's path, and the image it would be served as.
    expect(stored).toEqual({ restoreReference: archive, referenceType: 'archive', archivePath: archive, sizeBytes: small.sizeBytes, digest: `sha256:${hex}`, durationMs: expect.any(Number), manifest: { digest: expect.stringMatching(/^sha256:[0-9a-f]{64}$/), sizeBytes: expect.any(Number) } });
    expect(await filesUnder(root)).toEqual(['shop/orders-api-7c9f8d6b5-x2vqz/app/orders-warm-0a1b2c3d.tar', 'shop/orders-api-7c9f8d6b5-x2vqz/app/orders-warm-0a1b2c3d.tar.json', 'shop/orders-api-7c9f8d6b5-x2vqz/app/orders-warm-0a1b2c3d.tar.sha256']);
    expect(await sha256Of(archive)).toBe(hex);
    // Every memory page of the container is in there: root only.
    expect((await stat(archive)).mode & 0o777).toBe(0o600);
    // The .sha256 file is what sha256sum writes and checks.
    expect(await readFile(`${archive}.sha256`, 'utf8')).toBe(`${hex}  orders-warm-0a1b2c3d.tar\n`);
    const { stdout } = await run('sha256sum', ['-c', 'orders-warm-0a1b2c3d.tar.sha256'], { cwd: path.dirname(archive) });
    expect(stdout).toBe('orders-warm-0a1b2c3d.tar: OK\n');
    expect(JSON.parse(await readFile(`${archive}.json`, 'utf8'))).toEqual({
      version: 1,
      archive: 'orders-warm-0a1b2c3d.tar',
      namespace: 'shop',
      podName: 'orders-api-7c9f8d6b5-x2vqz',
      podUid: '6f1c2b9e-8d4a-4e5f-9a7b-3c2d1e0f9a8b',
      containerName: 'app',
      checkpointName: 'orders-warm',
      checkpointUid: '0a1b2c3d-4e5f-6789-abcd-ef0123456789',
      createdAt: '2026-12-01T12:00:00.000Z',
      checkpointedTime: small.checkpointedTime,
      sizeBytes: small.sizeBytes,
      digest: `sha256:${hex}`,
      engine: 'cri-o',
      runtime: 'crun',
      criuVersion: '4.2',
      baseImage: small.baseImage,
      baseImageId: small.baseImageId,
      mountDestinations: small.mountDestinations,
      image: { manifest: expect.any(String), config: expect.any(String) },
    });
    expect(await store.list()).toEqual([
      { restoreReference: archive, namespace: 'shop', podName: 'orders-api-7c9f8d6b5-x2vqz', containerName: 'app', checkpointName: 'orders-warm', checkpointUid: '0a1b2c3d-4e5f-6789-abcd-ef0123456789', sizeBytes: small.sizeBytes, createdAt: new Date('2026-12-01T12:00:00Z') },
    ]);
    // The stored archive is itself a valid checkpoint archive.
    expect(await readCheckpointArchive(archive)).toEqual({ ...small, path: archive });
  });

  it('stores a containerd archive the same way: its engine, shim and digest-pinned base image in the sidecar, listed like any other', async () => {
    const root = await newRoot();
    const store = new DirectoryStore({ root, logger: captureLogger().logger });
    const archive = await readCheckpointArchive((await buildCheckpointArchive({ dir: path.join(work, 'archives'), engine: 'containerd', fileName: 'containerd.tar' })).path);

    const stored = await store.store(request(archive));

    expect(JSON.parse(await readFile(`${stored.restoreReference}.json`, 'utf8'))).toMatchObject({
      engine: 'containerd',
      runtime: 'io.containerd.runc.v2',
      baseImage: 'registry.example/shop/orders-api:1.4.2',
      baseImageId: 'registry.example/shop/orders-api@sha256:3f4e5d6c7b8a99887766554433221100ffeeddccbbaa99887766554433221100',
      mountDestinations: ['/data', '/var/run/secrets/kubernetes.io/serviceaccount'],
    });
    // The sidecar parses back (an unknown engine would leave the entry out of list() and retention).
    expect((await store.list()).map((e) => e.restoreReference)).toEqual([stored.restoreReference]);
    // The copy is still containerd's archive, status.dump and all.
    expect(await readCheckpointArchive(stored.restoreReference)).toEqual({ ...archive, path: stored.restoreReference });
  });

  it('stores the same Checkpoint again in place, and a re-created one (new uid) beside it', async () => {
    const root = await newRoot();
    const store = new DirectoryStore({ root, logger: captureLogger().logger });
    const first = await store.store(request(small));
    const again = await store.store(request(small));
    const recreated = await store.store(request(small, { uid: 'ffee0011-2233-4455-6677-8899aabbccdd' }));
    expect(again.restoreReference).toBe(first.restoreReference);
    expect(recreated.restoreReference).toBe(path.join(path.dirname(first.restoreReference), 'orders-warm-ffee0011.tar'));
    expect((await store.list()).map((e) => path.basename(e.restoreReference)).sort()).toEqual(['orders-warm-0a1b2c3d.tar', 'orders-warm-ffee0011.tar']);
    expect(await filesUnder(root)).toHaveLength(6);
  });

  it('refuses names that are not Kubernetes names, so nothing is written outside the root', async () => {
    const root = await newRoot();
    const store = new DirectoryStore({ root, logger: captureLogger().logger });
    const err = await rejectionOf(store.store(request(small, { pod: '../../etc' })), StoreError);
    expect(err.message).toBe('cannot store the checkpoint of shop/../../etc/app: pod name "../../etc" is not a Kubernetes name (lowercase letters, digits, \'-\' and \'.\')');
    expect(err.retriable).toBe(false);
    expect(await readdir(root)).toEqual([]);
  });

  it('refuses an archive that changed since it was read, and one that is gone, leaving nothing', async () => {
    const root = await newRoot();
    const store = new DirectoryStore({ root, logger: captureLogger().logger });
    const changed = await rejectionOf(store.store(request({ ...small, sizeBytes: small.sizeBytes + 512 })), StoreError);
    expect(changed.message).toBe(`checkpoint archive ${small.path} changed while it was stored (${small.sizeBytes} bytes read, ${small.sizeBytes + 512} when it was checked): take the checkpoint again`);
    const gone = await rejectionOf(store.store(request({ ...small, path: path.join(work, 'archives/gone.tar') })), StoreError);
    expect(gone.message).toBe(`checkpoint archive ${path.join(work, 'archives/gone.tar')} disappeared before it was stored (ENOENT): take the checkpoint again`);
    expect(gone.retriable).toBe(false);
    expect(await readdir(root)).toEqual([]);
  });

  it('on a full disk: StoreError naming the path and errno, nothing left behind, and the store still works', async (ctx) => {
    const mnt = path.join(work, 'tmpfs-8m');
    await mkdir(mnt);
    const mountError = await run('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', mnt]).then(
      () => undefined,
      (err: Error) => err.message,
    );
    if (mountError !== undefined) {
      ctx.skip(`needs root to mount an 8 MiB tmpfs (mount -t tmpfs -o size=8m tmpfs ${mnt}): ${mountError.trim()}`);
      return;
    }
    try {
      const big = await readCheckpointArchive((await buildCheckpointArchive({ dir: path.join(work, 'archives'), fileName: 'big-16m.tar', pagesBytes: 16 * MiB })).path);
      const root = path.join(mnt, 'checkpoints');
      const store = new DirectoryStore({ root, logger: captureLogger().logger });

      const err = await rejectionOf(store.store(request(big)), StoreError);

      expect(err.message).toBe(
        `no space left on device writing ${root}/shop/orders-api-7c9f8d6b5-x2vqz/app/orders-warm-0a1b2c3d.tar: free space on that volume or tighten the directory store's retention (maxCount, maxTotalBytes)`,
      );
      expect(err.retriable).toBe(true);
      expect((err.cause as NodeJS.ErrnoException).code).toBe('ENOSPC');
      // No temp file, no sidecar, not even the directories it made for this pod.
      expect(await readdir(root)).toEqual([]);
      const { stdout } = await run('df', ['--output=used', '-B1', mnt]);
      expect(Number(stdout.split('\n')[1])).toBeLessThan(MiB);

      const stored = await store.store(request(small));
      expect(await store.verify(stored.restoreReference)).toMatchObject({ ok: true });
      expect(await store.list()).toHaveLength(1);
    } finally {
      await run('umount', [mnt]);
    }
  });

  it('aborted mid-copy: rejects as aborted and removes its temp file', async () => {
    const root = await newRoot();
    const store = new DirectoryStore({ root, logger: captureLogger().logger });
    // The archive arrives through a FIFO, so the copy is in the middle for as long as the test wants.
    const fifo = path.join(work, 'slow-archive.fifo');
    await run('mkfifo', [fifo]);
    const writer = createWriteStream(fifo);
    writer.write(Buffer.alloc(MiB, 1));
    const controller = new AbortController();

    const storing = store.store(request({ ...small, path: fifo, sizeBytes: 64 * MiB }, { signal: controller.signal }));
    const dir = path.join(root, 'shop/orders-api-7c9f8d6b5-x2vqz/app');
    const temp = await waitFor(async () => {
      const names = await readdir(dir).catch(() => []);
      const name = names.find((n) => /^\.orders-warm-0a1b2c3d\.tar\.tmp-[0-9a-f]{16}$/.test(n));
      return name !== undefined && (await stat(path.join(dir, name))).size === MiB ? name : undefined;
    }, { what: 'the first MiB in the temp file' });
    expect(temp).toBeDefined();
    controller.abort(new Error('the Checkpoint was deleted'));
    writer.end();

    const err = await rejectionOf(storing, StoreError);
    expect(err.message).toBe(`storing checkpoint archive ${fifo} as ${dir}/orders-warm-0a1b2c3d.tar was aborted: the Checkpoint was deleted`);
    expect(await readdir(root)).toEqual([]);
  });

  it('aborted before it starts: writes nothing', async () => {
    const root = await newRoot();
    const store = new DirectoryStore({ root, logger: captureLogger().logger });
    const err = await rejectionOf(store.store(request(small, { signal: AbortSignal.abort() })), StoreError);
    expect(err.message).toContain('was aborted');
    expect(await readdir(root)).toEqual([]);
  });
});

describe('DirectoryStore after a crash', () => {
  it('removes what a crashed store left (once stale) at start, keeps what another writer is still writing', async () => {
    const root = await newRoot();
    const logger = captureLogger();
    const before = new DirectoryStore({ root, logger: logger.logger });
    const kept = await before.store(request(small, { name: 'kept' }));
    const dir = path.dirname(kept.restoreReference);
    const hourAgo = new Date(Date.now() - 3600_000);
    // Crashed mid-copy an hour ago:
    await writeFile(path.join(dir, '.crashed-0a1b2c3d.tar.tmp-0123456789abcdef'), Buffer.alloc(4096));
    // Crashed between placing the sidecars and the archive an hour ago:
    await writeFile(path.join(dir, 'half-0a1b2c3d.tar.json'), '{}');
    await writeFile(path.join(dir, 'half-0a1b2c3d.tar.sha256'), `${'0'.repeat(64)}  half-0a1b2c3d.tar\n`);
    for (const name of ['.crashed-0a1b2c3d.tar.tmp-0123456789abcdef', 'half-0a1b2c3d.tar.json', 'half-0a1b2c3d.tar.sha256']) await utimes(path.join(dir, name), hourAgo, hourAgo);
    // Another node writing into the same (shared) root right now:
    await writeFile(path.join(dir, '.busy-0a1b2c3d.tar.tmp-fedcba9876543210'), Buffer.alloc(4096));
    await writeFile(path.join(dir, 'busy2-0a1b2c3d.tar.json'), '{}');

    const after = new DirectoryStore({ root, logger: logger.logger });
    await after.ready();

    expect((await readdir(dir)).sort()).toEqual([
      '.busy-0a1b2c3d.tar.tmp-fedcba9876543210',
      'busy2-0a1b2c3d.tar.json',
      'kept-0a1b2c3d.tar',
      'kept-0a1b2c3d.tar.json',
      'kept-0a1b2c3d.tar.sha256',
    ]);
    expect(logger.messages('warn')).toEqual(expect.arrayContaining(['removed a temp file of a store that did not finish', 'removed a sidecar of an archive that was never committed or was being removed']));
    // Sidecars without their archive are never listed, stale or not.
    expect((await after.list()).map((e) => e.checkpointName)).toEqual(['kept']);
    expect(await after.verify(kept.restoreReference)).toMatchObject({ ok: true });
  });

  it('lists only what it wrote: an archive without sidecar or with a damaged one is left alone, with a warning', async () => {
    const root = await newRoot();
    const logger = captureLogger();
    const store = new DirectoryStore({ root, logger: logger.logger });
    const stored = await store.store(request(small));
    const dir = path.dirname(stored.restoreReference);
    await writeFile(path.join(dir, 'foreign.tar'), 'x');
    await writeFile(path.join(dir, 'broken-0a1b2c3d.tar'), 'x');
    await writeFile(path.join(dir, 'broken-0a1b2c3d.tar.json'), '{"version": 1');
    expect((await store.list()).map((e) => path.basename(e.restoreReference))).toEqual(['orders-warm-0a1b2c3d.tar']);
    expect(logger.messages('warn')).toEqual(expect.arrayContaining([
      'archive without its .json sidecar: not written by this store, so neither listed nor removed by retention',
      'unreadable checkpoint sidecar: its archive is neither listed nor removed by retention',
    ]));
    expect(await new DirectoryStore({ root: path.join(work, 'no-such-root'), logger: logger.logger }).list()).toEqual([]);
  });
});

describe('DirectoryStore.verify', () => {
  it('hashes the archive again and compares it with its .sha256 file', async () => {
    const root = await newRoot();
    const store = new DirectoryStore({ root, logger: captureLogger().logger });
    const stored = await store.store(request(small));
    expect(await store.verify(stored.restoreReference)).toEqual({ ok: true, expected: stored.digest, actual: stored.digest });

    const file = await open(stored.restoreReference, 'r+');
    await file.write(Buffer.from([0xff]), 0, 1, 100_000);
    await file.close();
    const result = await store.verify(stored.restoreReference);
    expect(result.ok).toBe(false);
    expect(result.expected).toBe(stored.digest);
    expect(result.actual).toBe(`sha256:${await sha256Of(stored.restoreReference)}`);

    await expect(store.verify(path.join(root, 'nothing.tar'))).rejects.toThrow(`cannot verify ${path.join(root, 'nothing.tar')}: its digest file ${path.join(root, 'nothing.tar')}.sha256 cannot be read (ENOENT)`);
  });
});

describe('DirectoryStore.applyRetention', () => {
  it('removes the oldest beyond the policy, archive and sidecars together', async () => {
    const root = await newRoot();
    let clock = new Date('2026-12-01T10:00:00Z');
    const store = new DirectoryStore({ root, logger: captureLogger().logger, now: () => clock });
    const stored = [];
    for (const [i, container] of ['app', 'app', 'app', 'sidecar'].entries()) {
      clock = new Date(clock.getTime() + 60_000);
      stored.push(await store.store(request(small, { name: `ckpt-${i}`, container })));
    }

    const result = await store.applyRetention({ scope: 'container', maxCount: 2 });

    expect(result.removed.map((e) => e.checkpointName)).toEqual(['ckpt-0']);
    expect(result.kept.map((e) => e.checkpointName)).toEqual(['ckpt-1', 'ckpt-2', 'ckpt-3']);
    expect((await filesUnder(root)).filter((f) => f.includes('ckpt-0'))).toEqual([]);
    expect((await store.list()).map((e) => e.checkpointName)).toEqual(['ckpt-1', 'ckpt-2', 'ckpt-3']);

    // One byte less than two archives per pod: only the newest of the pod stays.
    const bySize = await store.applyRetention({ scope: 'pod', maxTotalBytes: 2 * small.sizeBytes - 1 });
    expect(bySize.removed.map((e) => e.checkpointName)).toEqual(['ckpt-1', 'ckpt-2']);
    expect((await store.list()).map((e) => e.checkpointName)).toEqual(['ckpt-3']);
    expect(await filesUnder(root)).toHaveLength(3);
    await expect(store.applyRetention({ scope: 'pod', maxCount: 0 })).rejects.toThrow(RangeError);
  });

  it('writes the pod checkpoint beside its containers’ directories, and retention removes it with the first of its archives', async () => {
    const root = await newRoot();
    let clock = new Date('2026-12-01T10:00:00Z');
    const store = new DirectoryStore({ root, logger: captureLogger().logger, now: () => clock });
    const podDir = path.join(root, 'shop/orders-api-7c9f8d6b5-x2vqz');
    const checkpointPod = async (name: string) => {
      clock = new Date(clock.getTime() + 60_000);
      const containers = [];
      for (const container of ['app', 'sidecar']) containers.push({ name: container, stored: await store.store(request(small, { name, container })) });
      return store.storePodCheckpoint({ document: podDocument({ name, containers }), stored: containers });
    };

    const first = await checkpointPod('ckpt-a');
    expect(first).toEqual({ reference: path.join(podDir, 'ckpt-a-0a1b2c3d.pod.json'), referenceType: 'file', digest: `sha256:${await sha256Of(path.join(podDir, 'ckpt-a-0a1b2c3d.pod.json'))}` });
    const written = JSON.parse(await readFile(first.reference, 'utf8')) as PodCheckpoint;
    expect(written.containers.map((c) => c.restoreReference)).toEqual([path.join(podDir, 'app/ckpt-a-0a1b2c3d.tar'), path.join(podDir, 'sidecar/ckpt-a-0a1b2c3d.tar')]);
    expect(written.pod.labels).toEqual({ app: 'orders' });
    // Not an archive: neither listed nor counted.
    expect((await store.list()).map((e) => `${e.checkpointName}/${e.containerName}`)).toEqual(['ckpt-a/app', 'ckpt-a/sidecar']);

    const second = await checkpointPod('ckpt-b');
    // Keep one per container: ckpt-a's app and sidecar go, and ckpt-a's pod checkpoint with them; ckpt-b's stays.
    const result = await store.applyRetention({ scope: 'container', maxCount: 1 });
    expect(result.removed.map((e) => `${e.checkpointName}/${e.containerName}`)).toEqual(['ckpt-a/app', 'ckpt-a/sidecar']);
    expect((await readdir(podDir)).filter((f) => f.endsWith('.pod.json'))).toEqual([path.basename(second.reference)]);
  });

  it('refuses a pod checkpoint whose names are not Kubernetes names, so nothing is written outside the root', async () => {
    const root = await newRoot();
    const store = new DirectoryStore({ root, logger: captureLogger().logger });
    const containers = [{ name: 'app', stored: await store.store(request(small, { name: 'ckpt-c' })) }];
    const bad = podDocument({ name: 'ckpt-c', containers });
    bad.pod.name = '../../etc';
    expect(await rejectionOf(store.storePodCheckpoint({ document: bad, stored: containers }), StoreError)).toMatchObject({ retriable: false, message: expect.stringMatching(/pod name "\.\.\/\.\.\/etc" is not a Kubernetes name/) });
    expect((await filesUnder(root)).filter((f) => f.endsWith('.pod.json'))).toEqual([]);
  });

  it('ages entries by when they were stored', async () => {
    const root = await newRoot();
    let clock = new Date('2026-12-01T10:00:00Z');
    const store = new DirectoryStore({ root, logger: captureLogger().logger, now: () => clock });
    await store.store(request(small, { name: 'old' }));
    clock = new Date('2026-12-01T11:30:00Z');
    await store.store(request(small, { name: 'new' }));
    clock = new Date('2026-12-01T12:00:00Z');
    const result = await store.applyRetention({ scope: 'namespace', maxAgeSeconds: 3600 });
    expect(result.removed.map((e) => e.checkpointName)).toEqual(['old']);
    expect(result.kept.map((e) => e.checkpointName)).toEqual(['new']);
  });
});

describe('DirectoryStore throughput', () => {
  it('copies with one read and one write in flight, memory flat (64 MiB archive)', async () => {
    const root = await newRoot();
    const big = await readCheckpointArchive((await buildCheckpointArchive({ dir: path.join(work, 'archives'), fileName: 'big-64m.tar', pagesBytes: 64 * MiB })).path);
    const store = new DirectoryStore({ root, logger: captureLogger().logger });
    const before = process.memoryUsage();
    const stored = await store.store(request(big));
    const after = process.memoryUsage();
    expect(stored.sizeBytes).toBe(big.sizeBytes);
    expect(stored.digest).toBe(`sha256:${await hashStreamed(big.path)}`);
    expect(after.arrayBuffers - before.arrayBuffers).toBeLessThan(16 * MiB);
  });
});

async function hashStreamed(file: string): Promise<string> {
  const child = spawn('sha256sum', [file]);
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  await new Promise((resolve) => child.on('close', resolve));
  return out.split(' ')[0];
}
