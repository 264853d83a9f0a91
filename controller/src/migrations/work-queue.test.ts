import { describe, expect, it } from 'vitest';
import { silentLogger } from '@cryo/common';
import { waitFor } from '@cryo/test';
import { WorkQueue, type WorkResult } from './work-queue.ts';

function queue(worker: (key: string) => Promise<WorkResult>, concurrency = 2) {
  return new WorkQueue({ concurrency, worker, logger: silentLogger(), backoff: { initialMs: 20, maxMs: 40 } });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('WorkQueue', () => {
  it('works on a key by one worker at a time; an add while it runs runs it once more afterwards', async () => {
    const runs: string[] = [];
    let running = 0;
    let most = 0;
    const q = queue(async (key) => {
      running++;
      most = Math.max(most, running);
      runs.push(key);
      await sleep(30);
      running--;
      return undefined;
    });
    q.resume();
    q.add('a');
    q.add('a');
    await sleep(5);
    q.add('a');
    q.add('a');
    await waitFor(() => runs.length === 2 && q.depth === 0);
    await q.idle();
    expect(runs).toEqual(['a', 'a']);
    expect(most).toBe(1);
  });

  it('runs at most `concurrency` keys at once', async () => {
    let running = 0;
    let most = 0;
    const q = queue(async () => {
      running++;
      most = Math.max(most, running);
      await sleep(20);
      running--;
      return undefined;
    }, 2);
    q.resume();
    for (const key of ['a', 'b', 'c', 'd', 'e']) q.add(key);
    await waitFor(() => q.depth === 0);
    await q.idle();
    expect(most).toBe(2);
  });

  it('runs a key again after the delay its worker asks for, and retries one that threw with backoff', async () => {
    const runs: number[] = [];
    let attempts = 0;
    const q = queue(() => {
      runs.push(Date.now());
      attempts++;
      if (attempts === 1) return Promise.resolve({ requeueAfterMs: 50 });
      if (attempts === 2) return Promise.reject(new Error('the apiserver is away'));
      return Promise.resolve(undefined);
    });
    q.resume();
    q.add('a');
    await waitFor(() => attempts === 3, { timeoutMs: 2000 });
    expect(runs[1] - runs[0]).toBeGreaterThanOrEqual(45);
    expect(runs[2] - runs[1]).toBeGreaterThanOrEqual(15);
  });

  it('paused, starts nothing and drops what is queued or delayed; resumed, takes new adds', async () => {
    const runs: string[] = [];
    const q = queue((key) => {
      runs.push(key);
      return Promise.resolve({ requeueAfterMs: 30 });
    });
    q.add('before-resume');
    q.resume();
    q.add('a');
    await waitFor(() => runs.length === 1);
    q.pause();
    q.add('b');
    await sleep(80);
    expect(runs).toEqual(['a']);
    q.resume();
    q.add('c');
    await waitFor(() => runs.includes('c'));
    q.pause();
    await q.idle();
  });
});
