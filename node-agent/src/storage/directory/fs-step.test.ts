import { describe, expect, it } from 'vitest';
import { fsStep, storeError, type FsStepError } from './fs-step.ts';

/** The FsStepError a failed write of `path` with this errno becomes. */
async function failedWrite(code: string, path = '/store/shop/web/app/c.tar.tmp'): Promise<FsStepError> {
  const cause = Object.assign(new Error(`${code}: failed, write`), { code });
  return fsStep('writing', path, () => Promise.reject(cause)).then(
    () => expect.unreachable('the step failed'),
    (err: unknown) => err as FsStepError,
  );
}

describe('storeError: what the operator sees of a failed file-system step, and whether a new Checkpoint can succeed', () => {
  it.each([
    { code: 'ENOSPC', blocker: 'full', message: /^no space left on device writing \/store\/shop\/web\/app\/c\.tar: free space on that volume/ },
    { code: 'EDQUOT', blocker: 'full', message: /^disk quota exceeded writing \/store\/shop\/web\/app\/c\.tar: raise the quota/ },
    { code: 'EACCES', blocker: 'denied', message: /^permission denied \(EACCES\) writing \/store\/shop\/web\/app\/c\.tar: the agent must be able to write/ },
    { code: 'EPERM', blocker: 'denied', message: /^permission denied \(EPERM\) writing / },
    { code: 'EROFS', blocker: 'denied', message: /^read-only file system \(EROFS\) writing \/store\/shop\/web\/app\/c\.tar: .* mounted read-write$/ },
    { code: 'EIO', blocker: undefined, message: /^I\/O error \(EIO\) writing .*check the node's kernel log$/ },
    { code: 'EBUSY', blocker: undefined, message: /^writing \/store\/shop\/web\/app\/c\.tar failed \(EBUSY\): EBUSY: failed, write$/ },
  ] as const)('$code: blocker $blocker', async ({ code, blocker, message }) => {
    // The final name stands in for the temp file's.
    const error = storeError(await failedWrite(code), '/store/shop/web/app/c.tar');
    expect(error.blocker).toBe(blocker);
    expect(error.message).toMatch(message);
    expect((error.cause as NodeJS.ErrnoException).code).toBe(code);
  });
});
