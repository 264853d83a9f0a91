/**
 * npm run bench:compression — what zstd-compressed checkpoint layers save and cost, measured on
 * one real checkpoint (root + the CRIU lab: scripts/lab/provision.sh), to choose the registry
 * store's default layer compression (node-agent/src/storage/registry/layer-compression.ts).
 *
 * 1. heap-cache-app.ts runs in a lab container (crun, as CRI-O runs it) and builds ~512 MiB of
 *    real objects (TARGET_RSS_MIB); its RSS is read from /proc once it says it is ready.
 * 2. `crun checkpoint --leave-running` dumps it as CRI-O does (the lab's LabContainer.checkpoint;
 *    crun drives CRIU 4.2), and `crun restore` restores a copy from the uncompressed image
 *    directory, RESTORES times; CRIU's own times come from its dump.log and restore.log.
 * 3. The image directory is tarred (the archive the kubelet would hand the agent), and compressed
 *    with the agent's own zstdCompressFile at levels 1 and 3 (Node's zlib); each is decompressed
 *    DECOMPRESSIONS times into nothing: the time a runtime adds to unpacking the layer, beyond the
 *    untar it does for an uncompressed one too ("restore time lost to unpacking").
 * 4. The archive is stored by the RegistryStore with layer compression none and zstd into the
 *    lab's docker-registry on loopback: the checkpoint side of the trade.
 * Then the table, and the figure that decides the default. Everything it prints is measured in
 * this run. Files go under $CRYO_BENCH_DIR (default the system temp dir), ~2.5× the RSS.
 */
import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { createZstdDecompress } from 'node:zlib';
import { RegistryStore } from '@cryo/node-agent';
import { zstdCompressFile, type LayerCompression } from '../../node-agent/src/storage/registry/layer-compression.ts';
import { criuLogSeconds, openLab, runCommand, startLabRegistry, waitFor, type Lab, type LabRegistry } from '@cryo/test';
import { archiveInfoOf } from '../storage/registry-test-archives.ts';
import { quantile } from './quantiles.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const MiB = 1024 * 1024;
const TARGET_RSS_MIB = Number(process.env.TARGET_RSS_MIB ?? 512);
const RESTORES = 3;
const DECOMPRESSIONS = 5;
const LEVELS = [1, 3];
/** Bytes moved must be at most this share of the app's RSS for compression to count as paying (the issue's target). */
const TARGET_BYTES_PER_RSS = 0.5;
/** The link a restore pulls over that compression must win on: 1 Gbit/s, a registry across an ordinary cluster network. */
const DECIDING_LINK_MIB_PER_S = 1e9 / 8 / MiB;

const median = (values: readonly number[]) => quantile(values, 0.5);
const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const mib = (bytes: number) => `${(bytes / MiB).toFixed(1)} MiB`;
const rate = (bytes: number, ms: number) => `${(bytes / MiB / (ms / 1000)).toFixed(0)} MiB/s`;

async function checked(argv: string[], timeoutMs = 300_000): Promise<void> {
  const result = await runCommand(argv, { timeoutMs });
  if (result.code !== 0) throw new Error(`exit ${result.code}: ${argv.join(' ')}\n${result.stderr}`);
}

/** The time to stream a zstd file through the decompressor into nothing; its output must be `expectedBytes`. */
async function decompressMs(file: string, expectedBytes: number): Promise<number> {
  let bytes = 0;
  const started = performance.now();
  await pipeline(
    createReadStream(file, { highWaterMark: MiB }),
    createZstdDecompress({ chunkSize: 256 * 1024 }),
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        bytes += chunk.length;
        done();
      },
    }),
  );
  const ms = performance.now() - started;
  if (bytes !== expectedBytes) throw new Error(`${file} decompressed to ${bytes} bytes, not the archive's ${expectedBytes}`);
  return ms;
}

interface Checkpointed {
  rssBytes: number;
  dumpMs: number;
  dumpCriuMs: number;
  restoreMs: number[];
  restoreCriuMs: number[];
  imageDir: string;
}

/** Steps 1 and 2: the app, its dump, and restores of copies from the image directory. */
async function checkpointApp(lab: Lab, dir: string): Promise<Checkpointed> {
  const pod = await lab.createPod('bench-heap');
  const app = await lab.runContainer({
    id: 'bench-heap',
    pod,
    argv: [lab.nodeBinary, '--max-old-space-size=4096', path.join(ROOT, 'test/bench/heap-cache-app.ts')],
    cwd: ROOT,
    env: { TARGET_RSS_MIB: String(TARGET_RSS_MIB) },
  });
  const ready = await waitFor(async () => /^ready (.*)$/m.exec(await app.output())?.[1], { timeoutMs: 180_000, intervalMs: 200, what: 'the app to build its heap' });
  const status = await readFile(`/proc/${app.pid}/status`, 'utf8');
  const rssBytes = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1]) * 1024;
  console.log(`app ready: ${ready}; RSS ${mib(rssBytes)}`);

  const imageDir = path.join(dir, 'image');
  const dump = await app.checkpoint({ imageDir, leaveRunning: true });
  if (!dump.ok) throw new Error(`the dump failed:\n${dump.log}`);
  const dumpCriuMs = (await criuLogSeconds(path.join(imageDir, 'dump.log'))) * 1000;
  await app.remove(); // its memory back before the copies take as much

  const restoreMs: number[] = [];
  const restoreCriuMs: number[] = [];
  for (let i = 0; i < RESTORES; i++) {
    const { container: copy, durationMs } = await lab.restoreContainer({ id: `bench-heap-copy-${i}`, pod, imageDir });
    if ((await copy.state()) !== 'running') throw new Error(`the restored copy is ${await copy.state()}:\n${await copy.output()}`);
    restoreMs.push(durationMs);
    restoreCriuMs.push((await criuLogSeconds(path.join(copy.bundleDir, 'work/restore.log'))) * 1000);
    await copy.remove();
  }
  return { rssBytes, dumpMs: dump.durationMs, dumpCriuMs, restoreMs, restoreCriuMs, imageDir };
}

interface Compressed {
  level: number;
  bytes: number;
  compressMs: number;
  decompressMs: number;
}

async function storeMs(registry: LabRegistry, archive: string, layerCompression: LayerCompression): Promise<{ ms: number; bytes: number }> {
  const store = new RegistryStore({ repository: `${registry.host}/bench/compression-${layerCompression}`, insecure: true, layerCompression });
  try {
    const info = await archiveInfoOf(archive);
    const stored = await store.store({
      archive: info,
      checkpoint: { namespace: 'bench', name: `heap-${layerCompression}`, uid: randomUUID() },
      pod: { namespace: 'bench', name: 'bench-heap', uid: randomUUID() },
      containerName: 'app',
    });
    return { ms: stored.durationMs, bytes: stored.sizeBytes };
  } finally {
    store.close();
  }
}

async function bench(lab: Lab): Promise<void> {
  const dir = await mkdtemp(path.join(process.env.CRYO_BENCH_DIR ?? tmpdir(), 'cryo-bench-compression-'));
  let registry: LabRegistry | undefined;
  try {
    const run = await checkpointApp(lab, dir);
    const archive = path.join(dir, 'checkpoint.tar');
    await checked(['tar', '--owner=0', '--group=0', '-cf', archive, '-C', run.imageDir, '.']);
    await rm(run.imageDir, { recursive: true, force: true });
    const archiveBytes = (await stat(archive)).size;

    const compressed: Compressed[] = [];
    for (const level of LEVELS) {
      const out = path.join(dir, `checkpoint.tar.zst-${level}`);
      const started = performance.now();
      const result = await zstdCompressFile(archive, out, { level });
      const compressMs = performance.now() - started;
      const times: number[] = [];
      for (let i = 0; i < DECOMPRESSIONS; i++) times.push(await decompressMs(out, archiveBytes));
      compressed.push({ level, bytes: result.compressed.size, compressMs, decompressMs: median(times) });
      await rm(out);
    }

    registry = await startLabRegistry(lab);
    await checked(['sync']);
    const pushNone = await storeMs(registry, archive, 'none');
    await checked(['sync']);
    const pushZstd = await storeMs(registry, archive, 'zstd');

    const restore = median(run.restoreMs);
    console.log(`\n# checkpoint of a ${mib(run.rssBytes)} RSS Node heap (crun + CRIU 4.2 in the lab, page cache warm)`);
    console.log(`dump (crun checkpoint --leave-running): ${seconds(run.dumpMs)} (CRIU's own ${seconds(run.dumpCriuMs)})`);
    console.log(`restore from the uncompressed image (crun restore, median of ${RESTORES}): ${seconds(restore)} (CRIU's own ${seconds(median(run.restoreCriuMs))}; all: ${run.restoreMs.map(seconds).join(', ')})`);
    console.log('');
    const rows = [
      ['layer', 'bytes', 'bytes/RSS', 'bytes/uncompressed', 'compress', 'unpack (decompress)', '(restore + unpack)/restore'],
      ['uncompressed tar', mib(archiveBytes), (archiveBytes / run.rssBytes).toFixed(3), '1.000', '-', '-', '1.00'],
      ...compressed.map((c) => [
        `zstd level ${c.level}`,
        mib(c.bytes),
        (c.bytes / run.rssBytes).toFixed(3),
        (c.bytes / archiveBytes).toFixed(3),
        `${seconds(c.compressMs)} (${rate(archiveBytes, c.compressMs)})`,
        `${seconds(c.decompressMs)} (${rate(archiveBytes, c.decompressMs)})`,
        ((restore + c.decompressMs) / restore).toFixed(2),
      ]),
    ];
    const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
    for (const [i, row] of rows.entries()) {
      console.log(`| ${row.map((cell, j) => cell.padEnd(widths[j])).join(' | ')} |`);
      if (i === 0) console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
    }
    console.log('');
    console.log(`RegistryStore into docker-registry on loopback (same disk): none ${seconds(pushNone.ms)} for ${mib(pushNone.bytes)}; zstd (level of the agent) ${seconds(pushZstd.ms)} for ${mib(pushZstd.bytes)}`);

    // The decision, from these figures. Restores are the hot path (a checkpoint is taken once and
    // restored many times, and the app runs on while it is stored): zstd pays when it moves at
    // most TARGET_BYTES_PER_RSS of the RSS and the bytes it saves take longer to pull over the
    // deciding link than unpacking them takes.
    const [fastest, smaller] = compressed;
    const savedBytes = archiveBytes - fastest.bytes;
    const linkMiBs = (extraMs: number) => savedBytes / MiB / (extraMs / 1000);
    const gbits = (mibs: number) => `${((mibs * MiB * 8) / 1e9).toFixed(1)} Gbit/s`;
    const restoreBreakEven = linkMiBs(fastest.decompressMs);
    const perRss = fastest.bytes / run.rssBytes;
    const pays = perRss <= TARGET_BYTES_PER_RSS && restoreBreakEven >= DECIDING_LINK_MIB_PER_S;
    console.log('');
    console.log(
      `level: ${smaller.level} stores ${(100 * (1 - smaller.bytes / fastest.bytes)).toFixed(1)} % fewer bytes than ${fastest.level} for ${(smaller.compressMs / fastest.compressMs).toFixed(2)}× its compression time ` +
        `and ${(smaller.decompressMs / fastest.decompressMs).toFixed(2)}× its unpacking → level ${fastest.level}`,
    );
    console.log(`links below which zstd is faster: pull + unpack ${restoreBreakEven.toFixed(0)} MiB/s (${gbits(restoreBreakEven)}); compress + push ${linkMiBs(fastest.compressMs).toFixed(0)} MiB/s (${gbits(linkMiBs(fastest.compressMs))}); a migration's push + pull + unpack ${(2 * linkMiBs(fastest.compressMs + fastest.decompressMs)).toFixed(0)} MiB/s (${gbits(2 * linkMiBs(fastest.compressMs + fastest.decompressMs))})`);
    console.log(
      `deciding figure: zstd level ${fastest.level} moves ${perRss.toFixed(2)}× the RSS (target ≤ ${TARGET_BYTES_PER_RSS}: ${perRss <= TARGET_BYTES_PER_RSS ? 'met' : 'NOT met'}), ` +
        `and its ${seconds(fastest.decompressMs)} of unpacking is paid back by the ${mib(savedBytes)} it saves when a restore pulls over any link slower than ${restoreBreakEven.toFixed(0)} MiB/s (${gbits(restoreBreakEven)}; ` +
        `deciding link 1 Gbit/s = ${DECIDING_LINK_MIB_PER_S.toFixed(0)} MiB/s: ${restoreBreakEven >= DECIDING_LINK_MIB_PER_S ? 'faster' : 'slower'})`,
    );
    console.log(`→ default layer compression: ${pays ? `zstd, level ${fastest.level}` : 'none'}${pays ? ` (a registry on the node's own disk, where pulling costs next to nothing, loses ${seconds(fastest.decompressMs)} per restore: none there)` : ''}`);
  } finally {
    await lab.close().catch((err: unknown) => console.error(`lab cleanup: ${String(err)}`));
    await registry?.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

const lab = await openLab();
if ('skip' in lab) {
  console.error(`bench:compression needs the CRIU lab: ${lab.skip}`);
  process.exit(1);
}
console.log(`# layer compression benchmark (TARGET_RSS_MIB=${TARGET_RSS_MIB})`);
await bench(lab);
process.exit(0);
