/**
 * What storing a checkpoint archive in the directory store costs against the plainest durable
 * copy there is: `cp` + `sync` of the same archive to the same file system. Target: the store
 * reaches at least 0.8 of cp+sync's throughput (ratio = cpSyncMs / storeMs ≥ 0.8), although it
 * also hashes every byte and writes two fsynced sidecars.
 *
 * Both start from the archive in the page cache (it was just written by the kubelet, in real
 * life) and with no dirty pages pending (a `sync` before each run); each is timed until its data
 * is on disk. Rounds alternate the two; the medians are reported.
 *
 *   node test/bench/directory-store-bench.ts [archive.tar]   # without an archive: a generated 512 MiB one
 *
 * benchDirectoryStore() is also called by the registry benchmark.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { silentLogger } from '@cryo/common';
import { readCheckpointArchive, DirectoryStore } from '@cryo/node-agent';
import { buildCheckpointArchive } from '@cryo/test';

const run = promisify(execFile);
const MiB = 1024 * 1024;

export interface DirectoryStoreBenchOptions {
  /** Where both copies go (default: the OS temp directory's file system). */
  targetDir?: string;
  /** Rounds of each (default 5). */
  rounds?: number;
}

export interface DirectoryStoreBenchResult {
  /** Median DirectoryStore.store(), until archive and sidecars are fsynced. */
  storeMs: number;
  /** Median `cp <archive> <target> && sync`. */
  cpSyncMs: number;
  /** cpSyncMs / storeMs: the store's throughput as a share of cp+sync's (target ≥ 0.8). */
  ratio: number;
}

export async function benchDirectoryStore(archivePath: string, options: DirectoryStoreBenchOptions = {}): Promise<DirectoryStoreBenchResult> {
  const rounds = options.rounds ?? 5;
  const info = await readCheckpointArchive(archivePath);
  const work = await mkdtemp(path.join(options.targetDir ?? tmpdir(), 'cryo-dirstore-bench-'));
  try {
    // Into the page cache, as a freshly written archive is.
    await run('sh', ['-c', 'cat "$1" > /dev/null', 'sh', archivePath]);
    const root = path.join(work, 'store');
    const store = new DirectoryStore({ root, logger: silentLogger() });
    await store.ready();
    const storeTimes: number[] = [];
    const cpTimes: number[] = [];
    for (let round = 0; round < rounds; round++) {
      await run('sync');
      const copy = path.join(work, `cp-${round}.tar`);
      let started = performance.now();
      await run('sh', ['-c', 'cp "$1" "$2" && sync', 'sh', archivePath, copy]);
      cpTimes.push(performance.now() - started);
      await rm(copy);

      await run('sync');
      started = performance.now();
      await store.store({
        archive: info,
        checkpoint: { namespace: 'bench', name: `round-${round}`, uid: `0000000${round}-0000-4000-8000-000000000000` },
        pod: { namespace: 'bench', name: 'bench-0', uid: '11111111-2222-4333-8444-555555555555' },
        containerName: 'app',
      });
      storeTimes.push(performance.now() - started);
      await rm(root, { recursive: true });
    }
    const storeMs = median(storeTimes);
    const cpSyncMs = median(cpTimes);
    return { storeMs, cpSyncMs, ratio: cpSyncMs / storeMs };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

async function main(): Promise<void> {
  let archive = process.argv[2];
  let generated: string | undefined;
  if (archive === undefined) {
    generated = await mkdtemp(path.join(tmpdir(), 'cryo-dirstore-archive-'));
    const built = await buildCheckpointArchive({ dir: generated, fileName: 'bench-512m.tar', pagesBytes: 512 * MiB });
    archive = built.path;
    console.log(`generated ${archive} (${(built.sizeBytes / MiB).toFixed(1)} MiB, random pages)`);
  }
  try {
    const { sizeBytes } = await readCheckpointArchive(archive);
    const result = await benchDirectoryStore(archive);
    const rate = (ms: number) => `${(sizeBytes / MiB / (ms / 1000)).toFixed(0)} MiB/s`;
    console.log(`archive            ${(sizeBytes / MiB).toFixed(1)} MiB`);
    console.log(`cp + sync          ${result.cpSyncMs.toFixed(0)} ms  (${rate(result.cpSyncMs)})`);
    console.log(`DirectoryStore     ${result.storeMs.toFixed(0)} ms  (${rate(result.storeMs)}, sha256 + sidecars + fsyncs included)`);
    console.log(`ratio              ${result.ratio.toFixed(3)}  (target ≥ 0.80: ${result.ratio >= 0.8 ? 'met' : 'NOT met'})`);
  } finally {
    if (generated !== undefined) await rm(generated, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
