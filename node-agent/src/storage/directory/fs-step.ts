/**
 * File-system calls that say what they were doing: an errno from FileHandle.write carries no path,
 * and "ENOSPC" alone tells an operator neither which volume filled up nor what to do. fsStep()
 * tags a failure with its operation and path; storeError() turns it into the StoreError the
 * caller sees, with the errno, the path and the remedy.
 */
import { blockerOfErrno, StoreError } from '../checkpoint-store.ts';

export type FsOperation = 'reading' | 'writing' | 'syncing' | 'renaming' | 'creating' | 'removing' | 'listing';

export class FsStepError extends Error {
  override name = 'FsStepError';
  readonly operation: FsOperation;
  readonly path: string;
  readonly code: string | undefined;
  constructor(operation: FsOperation, path: string, cause: unknown) {
    const code = (cause as NodeJS.ErrnoException | undefined)?.code;
    super(`${operation} ${path}: ${code ?? (cause as Error)?.message ?? String(cause)}`, { cause });
    this.operation = operation;
    this.path = path;
    this.code = code;
  }
}

export async function fsStep<T>(operation: FsOperation, path: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    if (err instanceof FsStepError || (err as Error)?.name === 'AbortError') throw err;
    throw new FsStepError(operation, path, err);
  }
}

/**
 * The StoreError for a failed step: what happened where, and what the operator can do. `path`
 * replaces the step's own (a temp file's name means nothing to an operator; its final name does).
 */
export function storeError(err: FsStepError, path = err.path): StoreError {
  const { operation, code } = err;
  const options = { cause: err.cause, blocker: blockerOfErrno(code) };
  switch (code) {
    case 'ENOSPC':
      return new StoreError(`no space left on device ${operation} ${path}: free space on that volume or tighten the directory store's retention (maxCount, maxTotalBytes)`, { retriable: true, ...options });
    case 'EDQUOT':
      return new StoreError(`disk quota exceeded ${operation} ${path}: raise the quota or tighten the directory store's retention`, { retriable: true, ...options });
    case 'EIO':
      return new StoreError(`I/O error (EIO) ${operation} ${path}: the disk or network volume is failing; check the node's kernel log`, { retriable: true, ...options });
    case 'EROFS':
      return new StoreError(`read-only file system (EROFS) ${operation} ${path}: the directory store's root must be mounted read-write`, { retriable: false, ...options });
    case 'EACCES':
    case 'EPERM':
      return new StoreError(`permission denied (${code}) ${operation} ${path}: the agent must be able to write under the directory store's root`, { retriable: false, ...options });
    default:
      return new StoreError(`${operation} ${path} failed (${code ?? 'no errno'}): ${(err.cause as Error)?.message ?? String(err.cause)}`, { retriable: true, ...options });
  }
}
