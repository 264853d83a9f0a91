/**
 * How the registry store writes a checkpoint image's one layer: the archive as it is (`none`, an
 * uncompressed tar) or zstd-compressed (`zstd`, media type `…tar+zstd`). Runtimes pull either as
 * they pull any image layer; for a compressed one the config's diff_id stays the sha256 of the
 * uncompressed tar, and the manifest names the compressed blob.
 *
 * The default and the level come from `npm run bench:compression` (docs/operations.md, "Layer
 * compression"): a 531 MiB RSS Node heap of real objects, dumped by CRIU, compresses to 0.17×
 * its RSS at level 1, and unpacking it adds ~1.5 s to a 0.6 s restore: it restores faster than
 * the uncompressed archive on any link slower than ~2.2 Gbit/s. Level 3 saves 1.6 % more bytes
 * for 1.2–1.6× the compression time.
 */
import { createHash, type Hash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { open } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { constants, createZstdCompress } from 'node:zlib';

export const LAYER_COMPRESSIONS = ['none', 'zstd'] as const;
export type LayerCompression = (typeof LAYER_COMPRESSIONS)[number];

/** What the agent writes unless a flag or storage class says otherwise (see the file comment). */
export const DEFAULT_LAYER_COMPRESSION: LayerCompression = 'zstd';

/** Level 1: level 3 compresses a heap's pages only 1.6 % smaller, in 1.2–1.6× the time (see above). */
export const ZSTD_LEVEL = 1;

export interface BlobFacts {
  /** `sha256:<hex>`. */
  digest: string;
  size: number;
}

export interface CompressedFile {
  /** The file read: its digest is a layer's diff_id. */
  source: BlobFacts;
  /** The file written. */
  compressed: BlobFacts;
}

/**
 * zstd's output buffers, each new (Node's zlib allocates them): at 64 KiB the collector frees them
 * as it goes (a 64 MiB push peaks ~15 MiB over idle; 256 KiB: ~35, 1 MiB: ~60), as fast as larger.
 */
const CHUNK_BYTES = 64 * 1024;
/** Read buffers: two, reused, so that reading the next overlaps compressing the last. */
const READ_BYTES = 1024 * 1024;

interface Measure {
  hash: Hash;
  size: number;
}

/** A pass-through stage that hashes and counts what goes by. */
function measured(into: Measure) {
  return async function* (chunks: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    for await (const chunk of chunks) {
      into.hash.update(chunk);
      into.size += chunk.length;
      yield chunk;
    }
  };
}

/**
 * Feeds the file to the compressor from two buffers it reuses: a buffer is read into again only
 * once the compressor has taken its last bytes (the write's callback), so the archive's size
 * never turns into garbage for the collector to be late with (a stream's reads would).
 */
async function feed(source: string, compressor: Writable, read: Measure): Promise<void> {
  const handle = await open(source, 'r');
  const buffers = [Buffer.allocUnsafeSlow(READ_BYTES), Buffer.allocUnsafeSlow(READ_BYTES)];
  const taken: Promise<void>[] = [];
  try {
    for (let n = 0; ; n++) {
      const slot = n % buffers.length;
      await taken[slot];
      const { bytesRead } = await handle.read(buffers[slot], 0, READ_BYTES, null);
      if (bytesRead === 0) break;
      const chunk = buffers[slot].subarray(0, bytesRead);
      read.hash.update(chunk);
      read.size += bytesRead;
      const write = new Promise<void>((resolve, reject) => compressor.write(chunk, (err) => (err ? reject(err) : resolve())));
      write.catch(() => {}); // awaited when its slot comes round, or below
      taken[slot] = write;
    }
    await Promise.all(taken);
    compressor.end();
  } catch (err) {
    compressor.destroy(err as Error);
    throw err;
  } finally {
    await Promise.allSettled(taken);
    await handle.close();
  }
}

/**
 * Compresses `source` into a new file `dest` (refused if it exists) with zstd at `level`, reading
 * `source` once: both sha256s are computed from the bytes as they go by. Errors are Node's (with
 * `path` naming the file that failed); an aborted `signal` stops it with an AbortError. A failure
 * may leave part of `dest`: the caller removes it.
 */
export async function zstdCompressFile(source: string, dest: string, options: { level?: number; signal?: AbortSignal } = {}): Promise<CompressedFile> {
  const read = { hash: createHash('sha256'), size: 0 };
  const written = { hash: createHash('sha256'), size: 0 };
  const compressor = createZstdCompress({ chunkSize: CHUNK_BYTES, params: { [constants.ZSTD_c_compressionLevel]: options.level ?? ZSTD_LEVEL } });
  const output = pipeline(compressor, measured(written), createWriteStream(dest, { flags: 'wx' }), { signal: options.signal });
  // Whichever fails first says why; the other then fails too (the compressor is destroyed).
  await Promise.all([feed(source, compressor, read), output]);
  return {
    source: { digest: `sha256:${read.hash.digest('hex')}`, size: read.size },
    compressed: { digest: `sha256:${written.hash.digest('hex')}`, size: written.size },
  };
}

/** The storage class's spelling (`None`, `Zstd`: Kubernetes enum style) as the agent's. */
export function layerCompressionOf(value: string): LayerCompression | undefined {
  return LAYER_COMPRESSIONS.find((c) => c === value.toLowerCase());
}
