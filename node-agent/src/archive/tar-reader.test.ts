import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, open, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TarWriter, tarOf } from '@cryo/test';
import { readTarMemberHead, TarError, tarMembers, type TarMember } from './tar-reader.ts';

const run = promisify(execFile);
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'cryo-tar-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function walk(file: string): Promise<TarMember[]> {
  const handle = await open(file, 'r');
  try {
    const members: TarMember[] = [];
    for await (const member of tarMembers(handle, (await handle.stat()).size)) members.push(member);
    return members;
  } finally {
    await handle.close();
  }
}

async function walkError(file: string): Promise<TarError> {
  const err = await walk(file).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(TarError);
  return err as TarError;
}

/** Rewrites a header's checksum after a test changed its bytes. */
function fixChecksum(block: Buffer): void {
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
}

describe('tarMembers', () => {
  it('lists every member with its type, size and data offset, and reads a member\'s head', async () => {
    const file = path.join(dir, 'plain.tar');
    await writeFile(file, tarOf({ 'a.txt': 'hello', 'dir/b.bin': Buffer.alloc(1000, 1) }));
    const members = await walk(file);
    expect(members.map(({ name, type, size, dataOffset }) => ({ name, type, size, dataOffset }))).toEqual([
      { name: 'a.txt', type: 'file', size: 5, dataOffset: 512 },
      { name: 'dir/b.bin', type: 'file', size: 1000, dataOffset: 1536 },
    ]);
    const handle = await open(file, 'r');
    expect((await readTarMemberHead(handle, members[0], 3)).toString()).toBe('hel');
    expect((await readTarMemberHead(handle, members[0], 100)).toString()).toBe('hello');
    await handle.close();
  });

  it('reads what GNU tar writes in each of its formats: directories, symlinks, hard links, long names', async () => {
    const tree = path.join(dir, 'tree');
    const long = `${'d'.repeat(120)}/${'f'.repeat(120)}.img`;
    await mkdir(path.join(tree, 'checkpoint', path.dirname(long)), { recursive: true });
    await writeFile(path.join(tree, 'checkpoint', long), 'x'.repeat(700));
    await writeFile(path.join(tree, 'config.dump'), '{}');
    await run('ln', ['-s', 'config.dump', path.join(tree, 'link')]);
    await run('ln', [path.join(tree, 'config.dump'), path.join(tree, 'hard')]);
    for (const format of ['pax', 'gnu', 'posix']) {
      const file = path.join(dir, `gnu-${format}.tar`);
      await run('tar', [`--format=${format}`, '-cf', file, '-C', tree, '.']);
      const members = await walk(file);
      const byName = new Map(members.map((m) => [m.name, m]));
      expect(byName.get(`checkpoint/${long}`), format).toMatchObject({ type: 'file', size: 700 });
      expect(byName.get('checkpoint')?.type, format).toBe('directory');
      expect(byName.get('link'), format).toMatchObject({ type: 'symlink', size: 0 });
      expect([byName.get('hard')?.type, byName.get('config.dump')?.type].sort(), format).toEqual(['file', 'hardlink']);
      // tar -C tree . names the root `./`: it is not a member.
      expect(byName.has(''), format).toBe(false);
    }
  });

  it('takes a size written in base-256 (GNU tar\'s form for members over 8 GiB)', async () => {
    const file = path.join(dir, 'base256.tar');
    const tar = tarOf({ 'pages.img': 'abcdef' });
    const header = tar.subarray(0, 512);
    header.fill(0, 124, 136);
    header[124] = 0x80;
    header[135] = 6;
    fixChecksum(header);
    await writeFile(file, tar);
    expect((await walk(file))[0]).toMatchObject({ name: 'pages.img', size: 6 });
  });

  it('refuses a damaged header in the middle, a zero block followed by data, and a lone end block', async () => {
    const good = tarOf({ 'a.txt': 'a', 'b.txt': 'b' });
    const damaged = Buffer.from(good);
    damaged[1024 + 10] ^= 0xff;
    await writeFile(path.join(dir, 'damaged.tar'), damaged);
    const e1 = await walkError(path.join(dir, 'damaged.tar'));
    expect([e1.reason, e1.message]).toEqual(['corrupt', 'the header at byte 1024 after member a.txt has a bad checksum']);

    const zeroThenData = Buffer.concat([good.subarray(0, 1024), Buffer.alloc(512), good.subarray(1024)]);
    await writeFile(path.join(dir, 'zero-then-data.tar'), zeroThenData);
    const e2 = await walkError(path.join(dir, 'zero-then-data.tar'));
    expect([e2.reason, e2.message]).toEqual(['corrupt', 'a zero block at byte 1024 after member a.txt is followed by data instead of a second zero block']);

    await writeFile(path.join(dir, 'lone.tar'), good.subarray(0, good.length - 512));
    expect((await walkError(path.join(dir, 'lone.tar'))).reason).toBe('truncated');
  });

  it('says what a compressed file is', async () => {
    const file = path.join(dir, 'plain-for-zip.tar');
    await writeFile(file, tarOf({ 'a.txt': 'a', 'random.bin': randomBytes(4096) }));
    await run('gzip', ['-k', '-f', file]);
    expect((await walkError(`${file}.gz`)).message).toBe('its first 512 bytes are not a tar header: it is gzip-compressed (gunzip it first)');
    await writeFile(path.join(dir, 'tiny.gz'), gzipSync('tiny'));
    expect((await walkError(path.join(dir, 'tiny.gz'))).message).toMatch(/^it is \d+ bytes, shorter than one tar header: it is gzip-compressed/);
    const zstd = Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), Buffer.alloc(600)]);
    await writeFile(path.join(dir, 'x.tar.zst'), zstd);
    expect((await walkError(path.join(dir, 'x.tar.zst'))).message).toContain('zstd-compressed');
  });

  it('walks a large tar by its headers, without reading the data between them', async () => {
    const file = path.join(dir, 'sparse-data.tar');
    const handle = await open(file, 'w');
    const tar = new TarWriter(handle);
    await tar.file('first', 'x');
    await handle.close();
    // A 1 GiB member whose data is a hole: walking it must not read (or allocate) the GiB.
    const header = tarOf({ big: '' }).subarray(0, 512);
    header.write(`${(1024 ** 3).toString(8).padStart(11, '0')}\0`, 124, 12, 'latin1');
    fixChecksum(header);
    const h = await open(file, 'r+');
    await h.write(header, 0, 512, 1024);
    await h.write(Buffer.alloc(1024), 0, 1024, 1024 + 512 + 1024 ** 3);
    await h.close();
    expect((await stat(file)).size).toBe(1024 + 512 + 1024 ** 3 + 1024);
    const started = performance.now();
    const members = await walk(file);
    expect(members.map((m) => [m.name, m.size])).toEqual([
      ['first', 1],
      ['big', 1024 ** 3],
    ]);
    expect(performance.now() - started).toBeLessThan(100);
  });
});
