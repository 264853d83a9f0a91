/**
 * Test helper: writes a POSIX ustar file member by member, the way Go's archive/tar (CRI-O,
 * Podman) does, streaming: a member's data may be generated in chunks (random memory pages of
 * hundreds of MiB) and never has to be in memory whole.
 */
import { randomFill } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';

const BLOCK = 512;
const CHUNK = 4 * 1024 * 1024;
const fillRandom = (buffer: Buffer, offset: number, size: number) =>
  new Promise<void>((resolve, reject) => randomFill(buffer, offset, size, (err) => (err ? reject(err) : resolve())));

export interface TarEntryOptions {
  mode?: number;
  mtime?: Date;
}

export class TarWriter {
  readonly #file: FileHandle;
  #offset = 0;

  constructor(file: FileHandle) {
    this.#file = file;
  }

  /** Bytes written so far. */
  get offset(): number {
    return this.#offset;
  }

  async directory(name: string, options: TarEntryOptions = {}): Promise<void> {
    await this.#write(header(name.endsWith('/') ? name : `${name}/`, 0, '5', { mode: 0o755, ...options }));
  }

  /** A regular file; returns the offset of its data. */
  async file(name: string, content: Buffer | string, options: TarEntryOptions = {}): Promise<number> {
    const data = typeof content === 'string' ? Buffer.from(content) : content;
    await this.#write(header(name, data.length, '0', options));
    const dataOffset = this.#offset;
    await this.#write(data);
    await this.#pad(data.length);
    return dataOffset;
  }

  /** A regular file of `size` random bytes, written in 4 MiB chunks; returns the offset of its data. */
  async randomFile(name: string, size: number, options: TarEntryOptions = {}): Promise<number> {
    await this.#write(header(name, size, '0', options));
    const dataOffset = this.#offset;
    const chunk = Buffer.alloc(Math.min(CHUNK, Math.max(size, 1)));
    for (let left = size; left > 0; ) {
      const n = Math.min(left, chunk.length);
      await fillRandom(chunk, 0, n);
      await this.#write(chunk.subarray(0, n));
      left -= n;
    }
    await this.#pad(size);
    return dataOffset;
  }

  /** The two zero blocks that end a tar. */
  async end(): Promise<void> {
    await this.#write(Buffer.alloc(2 * BLOCK));
  }

  async #pad(size: number): Promise<void> {
    const rest = size % BLOCK;
    if (rest !== 0) await this.#write(Buffer.alloc(BLOCK - rest));
  }

  async #write(data: Buffer): Promise<void> {
    let done = 0;
    while (done < data.length) {
      const { bytesWritten } = await this.#file.write(data, done, data.length - done, this.#offset + done);
      done += bytesWritten;
    }
    this.#offset += data.length;
  }
}

function header(name: string, size: number, typeflag: string, { mode = 0o644, mtime = new Date() }: TarEntryOptions): Buffer {
  const block = Buffer.alloc(BLOCK);
  let prefix = '';
  let base = name;
  if (Buffer.byteLength(name) > 100) {
    const cut = name.lastIndexOf('/', 155);
    if (cut <= 0 || Buffer.byteLength(name.slice(cut + 1)) > 100) throw new Error(`tar-writer: name too long for ustar: ${name}`);
    prefix = name.slice(0, cut);
    base = name.slice(cut + 1);
  }
  block.write(base, 0, 100, 'utf8');
  octal(block, 100, 8, mode);
  octal(block, 108, 8, 0);
  octal(block, 116, 8, 0);
  octal(block, 124, 12, size);
  octal(block, 136, 12, Math.floor(mtime.getTime() / 1000));
  block.fill(0x20, 148, 156);
  block.write(typeflag, 156, 1, 'latin1');
  block.write('ustar\x0000', 257, 8, 'latin1');
  block.write(prefix, 345, 155, 'utf8');
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
  return block;
}

function octal(block: Buffer, offset: number, length: number, value: number): void {
  block.write(`${value.toString(8).padStart(length - 1, '0')}\0`, offset, length, 'latin1');
}

/** A small tar in memory (a rootfs-diff.tar, a devshm-checkpoint.tar): files by name, ended by two zero blocks. */
export function tarOf(files: Record<string, string | Buffer>, options: TarEntryOptions = {}): Buffer {
  const parts: Buffer[] = [];
  for (const [name, content] of Object.entries(files)) {
    const data = typeof content === 'string' ? Buffer.from(content) : content;
    parts.push(header(name, data.length, '0', options), data, Buffer.alloc((BLOCK - (data.length % BLOCK)) % BLOCK));
  }
  parts.push(Buffer.alloc(2 * BLOCK));
  return Buffer.concat(parts);
}
