/**
 * Randomness a restored copy can trust. Every copy restored from one checkpoint has the same
 * memory, so the same state of OpenSSL's generator behind crypto.randomBytes() and randomUUID()
 * (with or without disableEntropyCache) and of Math.random(); and a copy keeps its pid, so
 * OpenSSL sees no fork and does not reseed. Copies then draw the same "random" numbers. These
 * read the kernel's generator (/dev/urandom) directly, which is per boot and per read.
 */
import { openSync, readSync, closeSync } from 'node:fs';

/** `size` bytes from the kernel's generator. */
export function kernelRandomBytes(size: number): Buffer {
  const buffer = Buffer.alloc(size);
  const fd = openSync('/dev/urandom', 'r');
  try {
    let filled = 0;
    while (filled < size) filled += readSync(fd, buffer, filled, size - filled, null);
  } finally {
    closeSync(fd);
  }
  return buffer;
}

/** An RFC 4122 version 4 UUID from the kernel's generator. */
export function kernelRandomUUID(): string {
  const b = kernelRandomBytes(16);
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const hex = b.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
