/**
 * Uploads a file as one blob in a single pass: a chunked upload session (POST, then PATCH
 * chunks with Content-Range, then PUT ?digest=) whose sha256 is computed from the same bytes as
 * they are read for sending, so the archive is read once and memory stays at a few stream
 * buffers whatever its size.
 *
 * A chunk that fails (network, 5xx) is not simply resent: the registry may have taken part of
 * it. The session's offset is asked for, the hash is rewound to the chunk's start (a copy taken
 * there) and the chunk is read again, hashing all of it but sending only what the registry lacks.
 * When the session is gone or the offsets make no sense, the whole upload starts over, at most
 * twice.
 */
import { createHash, type Hash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import type { Logger } from '@cryo/common';
import { StoreError } from '../checkpoint-store.ts';
import type { BodySink } from './http-transport.ts';
import type { RegistryClient } from './registry-client.ts';
import { RegistryHttpError } from './registry-client.ts';

export interface UploadedBlob {
  digest: string;
  size: number;
}

export interface FileBlobOptions {
  chunkSizeBytes: number;
  signal?: AbortSignal;
  logger?: Logger;
  /** Read buffer size: large reads keep syscalls few. */
  readSizeBytes?: number;
  /**
   * Told how many of the file's bytes the registry has been sent (the socket took them), as each
   * read buffer goes: from where the registry had it again when a chunk is resent, from 0 when the
   * upload starts over.
   */
  onProgress?: (uploadedBytes: number) => void;
}

/** The session must start over (it expired, or the registry's offset is not one we can resume from). */
class RestartUpload extends Error {
  override name = 'RestartUpload';
}

const MAX_RESTARTS = 2;

/** Reads in flight per upload: reading the next buffer overlaps sending the previous ones. */
const BUFFERS = 4;

/** The few buffers one upload reads into, reused once the socket has taken their bytes. */
interface BufferRing {
  buffers: Buffer[];
  /** Per buffer: the write still holding it. */
  inFlight: (Promise<void> | undefined)[];
}

function bufferRing(readSize: number): BufferRing {
  // Slow = unpooled: each is its own allocation, freed with the upload.
  return { buffers: Array.from({ length: BUFFERS }, () => Buffer.allocUnsafeSlow(readSize)), inFlight: [] };
}

/**
 * Reads bytes [hashFrom, end) of the file into the ring's buffers, feeding all of them to
 * `hash` and writing those from `sendFrom` on to `sink` (when given), telling `onSent` the
 * position each write reached once the socket took it. A buffer is read into again only after
 * the socket took its previous bytes, so an upload holds BUFFERS × readSize bytes at most, and
 * makes no garbage for the collector to be late with.
 */
async function readRange(handle: FileHandle, range: { hashFrom: number; sendFrom: number; end: number }, hash: Hash, ring: BufferRing, sink?: BodySink, onSent?: (position: number) => void): Promise<void> {
  let position = range.hashFrom;
  try {
    for (let n = 0; position < range.end; n++) {
      const slot = n % BUFFERS;
      await ring.inFlight[slot];
      const buffer = ring.buffers[slot];
      const { bytesRead } = await handle.read(buffer, 0, Math.min(buffer.length, range.end - position), position);
      if (bytesRead === 0) throw new StoreError(`the archive ended at byte ${position}, before the ${range.end} bytes it had when the upload began: it must not change while it is stored`, { retriable: false });
      const chunk = buffer.subarray(0, bytesRead);
      hash.update(chunk);
      const start = position;
      position += bytesRead;
      if (sink === undefined || position <= range.sendFrom) continue;
      const sent = position;
      const write = sink.write(start >= range.sendFrom ? chunk : chunk.subarray(range.sendFrom - start)).then(() => onSent?.(sent));
      write.catch(() => {}); // awaited below or when the slot comes round; never unhandled
      ring.inFlight[slot] = write;
    }
    await Promise.all(ring.inFlight.filter((w) => w !== undefined));
  } finally {
    // A failed request leaves writes that may still hold buffers: let them settle before the ring is reused.
    await Promise.allSettled(ring.inFlight.filter((w) => w !== undefined));
    ring.inFlight = [];
  }
}

async function uploadOnce(client: RegistryClient, handle: FileHandle, size: number, options: FileBlobOptions): Promise<string> {
  const { signal, chunkSizeBytes } = options;
  const ring = bufferRing(options.readSizeBytes ?? 1024 * 1024);
  let location = await client.startUpload(signal);
  let hash = createHash('sha256');
  try {
    for (let offset = 0; offset < size; ) {
      const end = Math.min(offset + chunkSizeBytes, size);
      const atChunkStart = hash.copy();
      const what = `upload bytes ${offset}-${end - 1} of ${size}`;
      ({ location, hash } = await client.retrying(what, signal, async (attempt) => {
        let sendFrom = offset;
        let at = location;
        if (attempt > 1) {
          // At offset 0 a new session costs nothing, and distribution's "0-0" cannot tell 0 bytes from 1.
          if (offset === 0) throw new RestartUpload('the first chunk failed');
          const status = await client.uploadOffset(at, signal);
          if (status === undefined || status.offset < offset || status.offset > end) throw new RestartUpload(`the registry holds ${status?.offset ?? 'no'} bytes of the session, expected ${offset} to ${end}`);
          sendFrom = status.offset;
          at = status.location;
        }
        let chunkHash = atChunkStart.copy();
        if (sendFrom === end) {
          // The registry took the whole chunk but its answer was lost: only hash it.
          await readRange(handle, { hashFrom: offset, sendFrom: end, end }, chunkHash, ring);
          options.onProgress?.(end);
          return { location: at, hash: chunkHash };
        }
        const next = await client.patchUpload(at, sendFrom, end, (sink) => {
          // Called afresh for each request (a 401 answered with a new token sends it again).
          chunkHash = atChunkStart.copy();
          return readRange(handle, { hashFrom: offset, sendFrom, end }, chunkHash, ring, sink, options.onProgress);
        }, signal);
        return { location: next, hash: chunkHash };
      }).catch((err: unknown) => {
        // retrying() wraps what it gives up on; a restart request comes out as the cause.
        if (err instanceof RestartUpload || (err as { cause?: unknown }).cause instanceof RestartUpload) throw new RestartUpload(String(err));
        throw err;
      }));
      offset = end;
    }
    const digest = `sha256:${hash.digest('hex')}`;
    await client
      .retrying(`complete the upload of blob ${digest}`, signal, async (attempt) => {
        try {
          await client.finishUpload(location, digest, signal);
        } catch (err) {
          // A PUT whose answer was lost leaves the session closed: the blob is there if it was stored.
          if (attempt > 1 && err instanceof RegistryHttpError && err.status === 404 && (await client.blobExists(digest, signal))) return;
          throw err;
        }
      })
      .catch((err: unknown) => {
        const cause = (err as { cause?: unknown }).cause;
        if (cause instanceof RegistryHttpError && cause.code === 'DIGEST_INVALID') {
          // Worth storing again (from a fresh read), not worth finishing this session again.
          throw new StoreError(`${client.where()}: the registry computed another digest than ${digest} for the uploaded archive: it changed while it was read, or the upload was corrupted; store it again`, { retriable: true, cause: err });
        }
        throw err;
      });
    return digest;
  } catch (err) {
    await client.cancelUpload(location);
    throw err;
  }
}

export async function uploadFileBlob(client: RegistryClient, path: string, options: FileBlobOptions): Promise<UploadedBlob> {
  let handle: FileHandle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    throw new StoreError(`cannot read the checkpoint archive ${path}: ${(err as Error).message}`, { retriable: false, cause: err });
  }
  try {
    const { size } = await handle.stat();
    for (let restarts = 0; ; restarts++) {
      try {
        const digest = await uploadOnce(client, handle, size, options);
        return { digest, size };
      } catch (err) {
        if (!(err instanceof RestartUpload) || restarts >= MAX_RESTARTS) {
          if (err instanceof RestartUpload) throw new StoreError(`upload of ${path}: ${client.where()}: the upload session was lost ${restarts + 1} times (${err.message})`, { retriable: true });
          throw err;
        }
        options.logger?.warn({ registry: client.registry, repository: client.name, reason: err.message }, 'blob upload session lost; starting it over');
      }
    }
  } finally {
    await handle.close();
  }
}
