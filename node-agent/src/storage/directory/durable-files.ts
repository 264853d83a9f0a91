/**
 * The file operations the directory store's all-or-nothing writes are built from: a copy that
 * hashes what it copies in the same pass and is on disk when it returns, small files written the
 * same way, directories whose new entries survive a power cut.
 *
 * The copy keeps one read and one write in flight around the hashing: while chunk N is hashed
 * (on this thread), chunk N+1 is being read and chunk N-1 written (in libuv's thread pool), so
 * the three overlap and memory is three 1 MiB buffers whatever the archive's size. And it keeps the disk busy meanwhile: left
 * alone, the kernel starts writing dirty pages back only once they reach dirty_background_ratio
 * (10 % of RAM: gigabytes) or are 30 s old, so a plain copy ends with the whole archive still to
 * be written by the final fsync, and takes copy + disk time. An fdatasync every 64 MiB (one at a
 * time, not waited for) starts that writeback while the copy goes on; the copy then takes about
 * the longer of the two, and the final fsync only the last few MiB. Measured at 512 MiB on this
 * project's VM: 2.1–2.7 s without, 1.1–1.2 s with (`cp` + `sync`: 1.1–1.4 s).
 */
import { createHash, type Hash } from 'node:crypto';
import { constants } from 'node:fs';
import { mkdir, open, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { fsStep } from './fs-step.ts';

const CHUNK_BYTES = 1024 * 1024;
const FLUSH_EVERY_BYTES = 64 * 1024 * 1024;
/** Archives hold every memory page of the checkpointed processes: nobody but root reads them (CRI-O also writes 0600). */
export const ARCHIVE_MODE = 0o600;
const CREATE_EXCLUSIVE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL;

export interface CopyResult {
  bytes: number;
  sha256Hex: string;
}

/**
 * Copies `source` to `target` (created here, must not exist) and fsyncs it, hashing the bytes as
 * they pass. Aborting `signal` stops it between reads (or while a read waits); the caller removes
 * `target`.
 */
export async function copyHashed(source: string, target: string, signal?: AbortSignal, onProgress?: (bytes: number) => void): Promise<CopyResult> {
  signal?.throwIfAborted();
  const input = await fsStep('reading', source, () => open(source, 'r'));
  let output: FileHandle | undefined;
  try {
    const out = await fsStep('writing', target, () => open(target, CREATE_EXCLUSIVE, ARCHIVE_MODE));
    output = out;
    const hash = createHash('sha256');
    // Three buffers: one being read into, one being hashed, one being written from.
    const buffers = [Buffer.allocUnsafe(CHUNK_BYTES), Buffer.allocUnsafe(CHUNK_BYTES), Buffer.allocUnsafe(CHUNK_BYTES)];
    // Reads without a position, so a pipe or FIFO works as a source too.
    const read = (buffer: Buffer) => quiet(fsStep('reading', source, () => input.read(buffer, 0, CHUNK_BYTES, null)));
    const aborted = abortPromise(signal);
    let pendingRead = read(buffers[0]);
    let pendingWrite: Promise<void> = Promise.resolve();
    let flushing: Promise<void> | undefined;
    let flushError: Error | undefined;
    let unflushed = 0;
    let position = 0;
    try {
      for (let i = 0; ; i = (i + 1) % 3) {
        const { bytesRead } = await (aborted === undefined ? pendingRead : Promise.race([pendingRead, aborted.promise]));
        if (bytesRead === 0) break;
        const chunk = buffers[i].subarray(0, bytesRead);
        // The next buffer was last written from two turns ago, and that write has finished.
        pendingRead = read(buffers[(i + 1) % 3]);
        hash.update(chunk);
        await pendingWrite;
        signal?.throwIfAborted();
        if (flushError !== undefined) throw flushError;
        pendingWrite = quiet(writeAll(out, chunk, position, target));
        position += bytesRead;
        onProgress?.(position);
        unflushed += bytesRead;
        if (unflushed >= FLUSH_EVERY_BYTES && flushing === undefined) {
          unflushed = 0;
          flushing = fsStep('syncing', target, () => out.datasync()).then(
            () => (flushing = undefined),
            (err: unknown) => {
              flushError = err as Error;
              flushing = undefined;
            },
          );
        }
      }
      await pendingWrite;
    } finally {
      aborted?.dispose();
      // Whatever is still in flight after an error must finish before the handles close.
      await Promise.allSettled([pendingRead, pendingWrite, flushing]);
    }
    if (flushError !== undefined) throw flushError;
    await fsStep('syncing', target, () => out.sync());
    return { bytes: position, sha256Hex: hash.digest('hex') };
  } finally {
    await output?.close().catch(() => {});
    await input.close().catch(() => {});
  }
}

/** Marks a promise as handled: it may fail while another is awaited, and is awaited (and throws) later. */
function quiet<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => {});
  return promise;
}

/** Writes `content` to `target` (created here, must not exist) and fsyncs it. */
export async function writeDurably(target: string, content: string): Promise<void> {
  const file = await fsStep('writing', target, () => open(target, CREATE_EXCLUSIVE, ARCHIVE_MODE));
  try {
    await fsStep('writing', target, () => file.writeFile(content));
    await fsStep('syncing', target, () => file.sync());
  } finally {
    await file.close().catch(() => {});
  }
}

/** fsync of a directory: makes its renames and new entries durable. */
export async function syncDirectory(dir: string): Promise<void> {
  await fsStep('syncing', dir, async () => {
    const handle = await open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  });
}

/**
 * Creates `dir` and its missing parents below `root`; returns the directories it created,
 * outermost first, each already durable in its parent.
 */
export async function makeDirectories(root: string, dir: string): Promise<string[]> {
  const relative = path.relative(root, dir);
  const created: string[] = [];
  let current = root;
  await fsStep('creating', root, () => mkdir(root, { recursive: true }));
  for (const part of relative.split(path.sep).filter((p) => p !== '')) {
    current = path.join(current, part);
    const made = await fsStep('creating', current, () =>
      // 0700 like the archives: the directory names alone tell which pods were checkpointed.
      mkdir(current, { mode: 0o700 }).then(
        () => true,
        (err: NodeJS.ErrnoException) => {
          if (err.code === 'EEXIST') return false;
          throw err;
        },
      ),
    );
    if (made) {
      created.push(current);
      await syncDirectory(path.dirname(current));
    }
  }
  return created;
}

/** The sha256 of a file, streamed. */
export async function hashFile(file: string): Promise<string> {
  const handle = await fsStep('reading', file, () => open(file, 'r'));
  try {
    const hash: Hash = createHash('sha256');
    const buffer = Buffer.allocUnsafe(CHUNK_BYTES);
    for (;;) {
      const { bytesRead } = await fsStep('reading', file, () => handle.read(buffer, 0, CHUNK_BYTES, null));
      if (bytesRead === 0) break;
      hash.update(buffer.subarray(0, bytesRead));
    }
    return hash.digest('hex');
  } finally {
    await handle.close();
  }
}

async function writeAll(file: FileHandle, chunk: Buffer, position: number, target: string): Promise<void> {
  let done = 0;
  while (done < chunk.length) {
    const { bytesWritten } = await fsStep('writing', target, () => file.write(chunk, done, chunk.length - done, position + done));
    done += bytesWritten;
  }
}

/** A promise that rejects with the signal's reason when it aborts, and a way to stop listening. */
function abortPromise(signal: AbortSignal | undefined): { promise: Promise<never>; dispose: () => void } | undefined {
  if (signal === undefined) return undefined;
  let onAbort!: () => void;
  const promise = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  promise.catch(() => {});
  return { promise, dispose: () => signal.removeEventListener('abort', onAbort) };
}
