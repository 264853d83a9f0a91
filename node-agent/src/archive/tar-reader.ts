/**
 * Walks the member headers of an uncompressed tar file (POSIX ustar, pax extended headers, GNU
 * long names: what Go's archive/tar writes for CRI-O, containerd and Podman, and what GNU tar writes), front to
 * back, in one pass. Member data is skipped by offset, not read: a checkpoint archive is mostly
 * memory pages (gigabytes), and all the agent needs from it are a few small JSON members, which
 * the caller reads with readTarMemberHead(). So walking a 10 GiB archive costs one small read per
 * member and no memory.
 *
 * It checks what says the tar is whole: every header's checksum, every member's data and padding
 * inside the file, and the two zero blocks that end a tar. A copy cut exactly at a member boundary
 * looks complete to most tar readers (tar-stream among them, which is also why this is not
 * tar-stream: it cannot say where a tar ends nor by how much a member is short); here it is
 * `truncated`, with the byte offsets in the message.
 */
import type { FileHandle } from 'node:fs/promises';

export const BLOCK = 512;

export type TarMemberType = 'file' | 'directory' | 'symlink' | 'hardlink' | 'other';

export interface TarMember {
  /** Without a leading `./` or `/` and without a trailing `/`. */
  name: string;
  type: TarMemberType;
  /** Bytes of data that follow the header (0 for directories and links). */
  size: number;
  headerOffset: number;
  dataOffset: number;
}

export type TarErrorReason = 'not-tar' | 'truncated' | 'corrupt';

/** The file is not a tar, ends early, or has a damaged header; `detail` says which and where. */
export class TarError extends Error {
  override name = 'TarError';
  readonly reason: TarErrorReason;
  constructor(reason: TarErrorReason, detail: string) {
    super(detail);
    this.reason = reason;
  }
}

/** pax and GNU long-name members hold a path or a few attributes; anything bigger is not a tar we wrote. */
const MAX_META_BYTES = 1024 * 1024;
const WINDOW_BYTES = 64 * 1024;
const ZERO_BLOCK = Buffer.alloc(BLOCK);
const HEADER_ONLY_TYPES = new Set(['1', '2', '3', '4', '5', '6']);

/**
 * Yields each member of the tar in `file` (whose size is `fileSize`), in archive order. Throws
 * TarError when the file is not a tar, is cut short, or has a damaged header.
 */
export async function* tarMembers(file: FileHandle, fileSize: number): AsyncGenerator<TarMember> {
  const window = new ReadWindow(file, fileSize);
  let offset = 0;
  let previous: string | undefined;
  let pending: { path?: string; size?: number } = {};
  const after = () => (previous === undefined ? 'at the start' : `after member ${previous}`);

  if (fileSize === 0) throw new TarError('not-tar', 'the file is empty');
  if (fileSize < BLOCK) {
    const head = Buffer.alloc(BLOCK);
    await readFully(file, head.subarray(0, fileSize), 0);
    throw new TarError('not-tar', `it is ${fileSize} bytes, shorter than one tar header${compressionHint(head)}`);
  }
  for (;;) {
    if (offset + BLOCK > fileSize) {
      if (offset === fileSize) throw new TarError('truncated', `it ends ${after()} without the two end-of-archive blocks (at byte ${offset})`);
      throw new TarError('truncated', `it ends inside the header ${after()} (at byte ${fileSize}, the header needs ${offset + BLOCK})`);
    }
    const block = await window.bytes(offset, BLOCK);
    if (block.equals(ZERO_BLOCK)) {
      if (offset === 0) throw new TarError('not-tar', 'it starts with a zero block, not a tar header');
      if (offset + 2 * BLOCK > fileSize) throw new TarError('truncated', `it ends after the first of its two end-of-archive blocks (at byte ${fileSize})`);
      const second = await window.bytes(offset + BLOCK, BLOCK);
      if (!second.equals(ZERO_BLOCK)) throw new TarError('corrupt', `a zero block at byte ${offset} ${after()} is followed by data instead of a second zero block`);
      return;
    }
    if (!checksumMatches(block)) {
      if (offset === 0) throw new TarError('not-tar', `its first 512 bytes are not a tar header${compressionHint(block)}`);
      throw new TarError('corrupt', `the header at byte ${offset} ${after()} has a bad checksum`);
    }

    const typeflag = String.fromCharCode(block[156]);
    const sizeField = parseNumber(block, 124, 12);
    if (sizeField === undefined) throw new TarError('corrupt', `the header at byte ${offset} ${after()} has an unreadable size field`);
    const size = HEADER_ONLY_TYPES.has(typeflag) ? 0 : (pending.size ?? sizeField);
    const dataOffset = offset + BLOCK;
    const name = pending.path ?? headerName(block);
    const end = dataOffset + size;
    if (end > fileSize) {
      const what = typeflag === 'x' || typeflag === 'g' || typeflag === 'L' || typeflag === 'K' ? `the extended header before byte ${end}` : `member ${normalizeName(name)}`;
      throw new TarError('truncated', `${what} ends at byte ${fileSize - dataOffset} of ${size}`);
    }
    const next = dataOffset + Math.ceil(size / BLOCK) * BLOCK;

    if (typeflag === 'x' || typeflag === 'L' || typeflag === 'g' || typeflag === 'K') {
      if (size > MAX_META_BYTES) throw new TarError('corrupt', `the extended header at byte ${offset} holds ${size} bytes, more than a path and attributes need`);
      if (typeflag === 'x') pending = { ...pending, ...parsePax(await window.bytes(dataOffset, size), offset) };
      if (typeflag === 'L') pending = { ...pending, path: cString(await window.bytes(dataOffset, size), 0, size) };
      // 'g' (global pax attributes) and 'K' (GNU long link target) say nothing the agent uses.
      offset = next;
      continue;
    }

    const member: TarMember = { name: normalizeName(name), type: memberType(typeflag), size, headerOffset: offset, dataOffset };
    pending = {};
    previous = member.name;
    offset = next;
    // A tar may hold a `./` entry for its own root; it names nothing.
    if (member.name !== '') yield member;
  }
}

/** The first `maxBytes` of a member's data (all of it when smaller). */
export async function readTarMemberHead(file: FileHandle, member: TarMember, maxBytes: number): Promise<Buffer> {
  const length = Math.min(member.size, maxBytes);
  const buffer = Buffer.alloc(length);
  await readFully(file, buffer, member.dataOffset);
  return buffer;
}

/** Reads ahead in 64 KiB windows: consecutive small members then cost one read between them. */
class ReadWindow {
  readonly #file: FileHandle;
  readonly #fileSize: number;
  #buffer = Buffer.alloc(WINDOW_BYTES);
  #start = 0;
  #end = 0;

  constructor(file: FileHandle, fileSize: number) {
    this.#file = file;
    this.#fileSize = fileSize;
  }

  /** `length` bytes at `offset`; the caller has checked they are inside the file. Valid until the next call. */
  async bytes(offset: number, length: number): Promise<Buffer> {
    if (offset >= this.#start && offset + length <= this.#end) return this.#buffer.subarray(offset - this.#start, offset - this.#start + length);
    if (length > this.#buffer.length) this.#buffer = Buffer.alloc(length);
    const span = Math.min(this.#buffer.length, this.#fileSize - offset);
    await readFully(this.#file, this.#buffer.subarray(0, span), offset);
    this.#start = offset;
    this.#end = offset + span;
    return this.#buffer.subarray(0, length);
  }
}

async function readFully(file: FileHandle, into: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < into.length) {
    const { bytesRead } = await file.read(into, done, into.length - done, position + done);
    // The caller checked the size; a short file now means it shrank while being read.
    if (bytesRead === 0) throw new TarError('truncated', `it ended at byte ${position + done} while being read (the file shrank)`);
    done += bytesRead;
  }
}

/** The header checksum: the byte sum with the checksum field read as spaces (unsigned, or signed as some old tars wrote). */
function checksumMatches(block: Buffer): boolean {
  const stored = parseNumber(block, 148, 8);
  if (stored === undefined) return false;
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const byte = i >= 148 && i < 156 ? 0x20 : block[i];
    unsigned += byte;
    signed += byte > 127 ? byte - 256 : byte;
  }
  return stored === unsigned || stored === signed;
}

/** An octal field (NUL- or space-terminated), or GNU's base-256 form for values that do not fit. */
function parseNumber(block: Buffer, offset: number, length: number): number | undefined {
  if (block[offset] & 0x80) {
    if (block[offset] & 0x40) return undefined; // negative: no size or checksum is
    let value = block[offset] & 0x3f;
    for (let i = 1; i < length; i++) value = value * 256 + block[offset + i];
    return Number.isSafeInteger(value) ? value : undefined;
  }
  const text = block.toString('latin1', offset, offset + length).replace(/[\0 ]+$/, '').replace(/^ +/, '');
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) return undefined;
  return parseInt(text, 8);
}

function cString(buffer: Buffer, offset: number, length: number): string {
  const end = buffer.indexOf(0, offset);
  return buffer.toString('utf8', offset, end === -1 || end > offset + length ? offset + length : end);
}

/** ustar splits long names into prefix (byte 345) and name; GNU tar uses those bytes for times instead. */
function headerName(block: Buffer): string {
  const name = cString(block, 0, 100);
  const posix = block.toString('latin1', 257, 263) === 'ustar\0';
  const prefix = posix ? cString(block, 345, 155) : '';
  return prefix === '' ? name : `${prefix}/${name}`;
}

function normalizeName(name: string): string {
  let n = name;
  for (;;) {
    if (n.startsWith('./')) n = n.slice(2);
    else if (n.startsWith('/')) n = n.slice(1);
    else break;
  }
  if (n === '.') n = '';
  return n.replace(/\/+$/, '');
}

function memberType(typeflag: string): TarMemberType {
  switch (typeflag) {
    case '0':
    case '\0':
    case '7':
      return 'file';
    case '1':
      return 'hardlink';
    case '2':
      return 'symlink';
    case '5':
      return 'directory';
    default:
      return 'other';
  }
}

/** pax records: `<length> <key>=<value>\n`, the length counting the whole record. */
function parsePax(data: Buffer, headerOffset: number): { path?: string; size?: number } {
  const result: { path?: string; size?: number } = {};
  let at = 0;
  while (at < data.length) {
    if (data[at] === 0) break; // padding some writers leave
    const space = data.indexOf(0x20, at);
    const length = space === -1 ? NaN : Number(data.toString('latin1', at, space));
    if (!Number.isInteger(length) || length <= 0 || at + length > data.length || data[at + length - 1] !== 0x0a) {
      throw new TarError('corrupt', `the pax header at byte ${headerOffset} has a malformed record at its byte ${at}`);
    }
    const record = data.toString('utf8', space + 1, at + length - 1);
    const equals = record.indexOf('=');
    const key = record.slice(0, equals);
    const value = record.slice(equals + 1);
    if (key === 'path') result.path = value;
    if (key === 'size') {
      if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) throw new TarError('corrupt', `the pax header at byte ${headerOffset} has an unreadable size ${JSON.stringify(value)}`);
      result.size = Number(value);
    }
    at += length;
  }
  return result;
}

/** Why the first block is not a tar header, when the answer is a compressed tar. */
function compressionHint(block: Buffer): string {
  if (block[0] === 0x1f && block[1] === 0x8b) return ': it is gzip-compressed (gunzip it first)';
  if (block.readUInt32LE(0) === 0xfd2fb528) return ': it is zstd-compressed (Podman --export compresses with zstd unless --compress=none; unzstd it first)';
  if (block.toString('latin1', 0, 6) === '\xfd7zXZ\0') return ': it is xz-compressed (unxz it first)';
  if (block.toString('latin1', 0, 3) === 'BZh') return ': it is bzip2-compressed (bunzip2 it first)';
  return '';
}
