/**
 * How far a push got, as the registry store tells StoreRequest.onProgress: against the in-process
 * fake registry (the fault proxy in front of it to cut a PATCH), for an uncompressed layer (the
 * archive's bytes) and a zstd one (the compressed layer's bytes, of its size), and through the
 * runner's StoreProgressThrottle, which turns it into the Checkpoint's progress reports.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildCheckpointArchive, startFakeRegistry, startFaultProxy, type FakeRegistry } from '@cryo/test';
import { readCheckpointArchive } from '../../archive/checkpoint-archive.ts';
import type { CheckpointArchiveInfo } from '../../archive/checkpoint-archive-info.ts';
import { describeStoreProgress, StoreProgressThrottle, type StoreProgress } from '../../checkpoints/store-progress.ts';
import type { StoreRequest } from '../checkpoint-store.ts';
import type { LayerCompression } from './layer-compression.ts';
import { RegistryStore } from './registry-store.ts';

const MiB = 1024 * 1024;

let dir: string;
/** 8 MiB of pages that do not compress: the zstd layer is about the archive's size. */
let archive: CheckpointArchiveInfo;
const cleanups: (() => Promise<void>)[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cryo-registry-progress-'));
  const built = await buildCheckpointArchive({ dir, containerName: 'app', fileName: 'app.tar', contents: { 'checkpoint/pages-1.img': randomBytes(8 * MiB) } });
  archive = await readCheckpointArchive(built.path);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function fakeRegistry(): Promise<FakeRegistry> {
  const registry = await startFakeRegistry();
  cleanups.push(() => registry.close());
  return registry;
}

function storeAt(host: string, layerCompression: LayerCompression, chunkSizeBytes?: number): RegistryStore {
  return new RegistryStore({ repository: `${host}/checkpoints/app`, insecure: true, layerCompression, retry: { attempts: 3, initialMs: 10, maxMs: 40 }, ...(chunkSizeBytes === undefined ? {} : { chunkSizeBytes }) });
}

function request(onProgress: StoreRequest['onProgress']): StoreRequest {
  return {
    archive,
    checkpoint: { namespace: 'shop', name: 'orders-warm', uid: '0a1b2c3d-0000-4000-8000-000000000001' },
    pod: { namespace: 'shop', name: 'orders-0', uid: 'pod-uid-1' },
    containerName: 'app',
    onProgress,
  };
}

/** Every call of onProgress, as [storedBytes, totalBytes]. */
function recorder() {
  const calls: [number, number | undefined][] = [];
  return { calls, onProgress: (stored: number, total?: number) => void calls.push([stored, total]) };
}

describe('the registry store says how far its push got', () => {
  it('an uncompressed layer in one PATCH: the archive\'s bytes sent, as each buffer goes, up to all of them', async () => {
    const registry = await fakeRegistry();
    const { calls, onProgress } = recorder();
    const stored = await storeAt(registry.host, 'none').store(request(onProgress));

    expect(stored.sizeBytes).toBe(archive.sizeBytes);
    // One report per 1 MiB read buffer within the one PATCH, not one at its end.
    expect(calls.length).toBeGreaterThanOrEqual(8);
    expect(calls.every(([, total]) => total === undefined)).toBe(true);
    const sent = calls.map(([bytes]) => bytes);
    expect(sent).toEqual([...sent].sort((a, b) => a - b));
    expect(sent[0]).toBe(MiB);
    expect(sent.at(-1)).toBe(archive.sizeBytes);
  });

  it('a zstd layer: the compressed layer\'s bytes sent, of its size (what goes to the registry)', async () => {
    const registry = await fakeRegistry();
    const { calls, onProgress } = recorder();
    const stored = await storeAt(registry.host, 'zstd').store(request(onProgress));

    expect(stored.sizeBytes).not.toBe(archive.sizeBytes);
    expect(calls.length).toBeGreaterThanOrEqual(8);
    expect(calls.every(([, total]) => total === stored.sizeBytes)).toBe(true);
    expect(calls.at(-1)).toEqual([stored.sizeBytes, stored.sizeBytes]);
  });

  it('a PATCH cut part-way: it goes on from what the registry holds, never back below it, and ends at the whole layer', async () => {
    const registry = await fakeRegistry();
    const proxy = await startFaultProxy(registry.port);
    cleanups.push(() => proxy.close());
    // The second 4 MiB PATCH is cut after 1 MiB (a cut first one starts the session over).
    let patches = 0;
    proxy.decide = (req) => (req.method === 'PATCH' && ++patches === 2 ? { cutAfterBytes: MiB + 1234 } : 'pass');
    const { calls, onProgress } = recorder();
    const stored = await storeAt(proxy.host, 'none', 4 * MiB).store(request(onProgress));

    expect(patches).toBeGreaterThan(3);
    const sent = calls.map(([bytes]) => bytes);
    const firstChunkIn = sent.indexOf(4 * MiB);
    expect(firstChunkIn).toBeGreaterThan(0);
    expect(Math.min(...sent.slice(firstChunkIn))).toBe(4 * MiB);
    expect(sent.at(-1)).toBe(stored.sizeBytes);
  });

  it('through the runner\'s throttle: a report each quarter of the layer, in the words of the Checkpoint\'s Events', async () => {
    const registry = await fakeRegistry();
    const reports: StoreProgress[] = [];
    const throttle = new StoreProgressThrottle({ container: 'app', totalBytes: archive.sizeBytes, report: (progress) => reports.push(progress) });
    const stored = await storeAt(registry.host, 'zstd').store(request((bytes, total) => throttle.update(bytes, total)));

    expect(reports.map((r) => Math.floor((r.storedBytes * 4) / r.totalBytes))).toEqual([1, 2, 3]);
    expect(reports.every((r) => r.totalBytes === stored.sizeBytes)).toBe(true);
    expect(describeStoreProgress(reports[0])).toMatch(/^container "app": stored \d\.0 MiB of 8\.0 MiB \(\d\d %\) at \d+(\.\d)? [KMG]?i?B\/s$/);
  });
});
