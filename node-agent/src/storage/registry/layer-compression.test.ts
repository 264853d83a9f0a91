import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { zstdDecompressSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { layerCompressionOf, zstdCompressFile } from './layer-compression.ts';

const sha256 = (bytes: Buffer) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

describe('zstdCompressFile', () => {
  let dir: string;
  let source: string;
  // Pages of a heap are mostly structure and repeated text: compressible, but not trivially.
  const content = Buffer.from(Array.from({ length: 40_000 }, (_, i) => `{"id":"cus_${i.toString(36)}","city":"${['Berlin', 'Paris', 'Rome'][i % 3]}","total":${(i * 7919) % 100_000}}\n`).join(''));
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'cryo-layer-compression-'));
    source = path.join(dir, 'archive.tar');
    await writeFile(source, content);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes a zstd stream of the file, with the digests and sizes of both read as they went by', async () => {
    const dest = path.join(dir, 'layer.tar.zst');
    const result = await zstdCompressFile(source, dest);
    const written = await readFile(dest);
    expect(result.source).toEqual({ digest: sha256(content), size: content.length });
    expect(result.compressed).toEqual({ digest: sha256(written), size: written.length });
    expect(written.length).toBeLessThan(content.length / 4);
    expect(zstdDecompressSync(written).equals(content)).toBe(true);
  });

  it('never writes over an existing file, and stops when aborted', async () => {
    const existing = path.join(dir, 'taken.zst');
    await writeFile(existing, 'mine');
    await expect(zstdCompressFile(source, existing)).rejects.toMatchObject({ code: 'EEXIST', path: existing });
    expect(await readFile(existing, 'utf8')).toBe('mine');
    const controller = new AbortController();
    controller.abort(new Error('the Checkpoint was deleted'));
    await expect(zstdCompressFile(source, path.join(dir, 'aborted.zst'), { signal: controller.signal })).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('reads a missing archive as an error naming it', async () => {
    const missing = path.join(dir, 'missing.tar');
    await expect(zstdCompressFile(missing, path.join(dir, 'missing.zst'))).rejects.toMatchObject({ code: 'ENOENT', path: missing });
  });
});

describe('layerCompressionOf', () => {
  it("reads a storage class's None and Zstd as the agent's none and zstd, and nothing else", () => {
    expect(layerCompressionOf('None')).toBe('none');
    expect(layerCompressionOf('Zstd')).toBe('zstd');
    expect(layerCompressionOf('gzip')).toBeUndefined();
  });
});
