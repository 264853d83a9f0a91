/**
 * Progress while a Checkpoint's archive is stored: the whole node agent against the shared fakes
 * (agent-on-fakes.ts) with a directory store, and an archive of several MiB, so that its store
 * crosses quarters (the interval of 10 s is StoreProgressThrottle's, tested on its own clock).
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHECKPOINT_PHASE_REASONS, type Checkpoint } from '@cryo/common';
import { buildCheckpointArchive, waitFor, type KubeObject } from '@cryo/test';
import { startAgentOnFakes, type AgentOnFakes } from './agent-on-fakes.ts';

describe('storing a checkpoint archive', () => {
  let fakes: AgentOnFakes;

  beforeAll(async () => {
    fakes = await startAgentOnFakes('cryo-agent-store-progress-');
  });

  afterAll(async () => {
    await fakes?.stop();
  });

  it('says how far it got in Events with the Running phase\'s reason and in the status message meanwhile, then succeeds', async () => {
    const archive = await buildCheckpointArchive({ dir: fakes.checkpointsDir, pod: fakes.pod, containerName: 'app', fileName: 'big.tar', contents: { 'checkpoint/pages-1.img': randomBytes(8 * 1024 * 1024) } });
    const requestsBefore = fakes.api.requests.length;
    const done = await fakes.checkpointAnswering('big', archive.path);
    expect(done.status?.phase, done.status?.message).toBe('Succeeded');

    const progress = /^container "app": stored \d+\.\d MiB of \d+\.\d MiB \((\d+) %\) at \d+(\.\d)? [KMG]?i?B\/s$/;
    const events = () => fakes.api.list<KubeObject & { type: string; reason: string; note: string; regarding: { name: string } }>('events.k8s.io/v1', 'events', 'shop')
      .filter((event) => event.regarding.name === 'big' && event.reason === CHECKPOINT_PHASE_REASONS.Running);
    await waitFor(() => events().length >= 3, { timeoutMs: 10_000, intervalMs: 20, what: 'the progress Events' });
    const percents = events().map((event) => {
      expect(event.type).toBe('Normal');
      expect(event.note).toMatch(progress);
      return Number(progress.exec(event.note)![1]);
    });
    // One each quarter (and none at the end: the final status says it).
    expect(percents.sort((a, b) => a - b).map((p) => Math.floor(p / 25))).toEqual([1, 2, 3]);

    // The same words in the status while it was Running, each a write of its own.
    const written = fakes.api.requests.slice(requestsBefore)
      .filter((r) => r.method === 'PUT' && r.path.endsWith('/checkpoints/big/status') && r.status === 200)
      .map((r) => (r.body as Checkpoint).status!);
    const storing = written.filter((status) => status.phase === 'Running' && status.message?.startsWith('storing '));
    expect(storing.map((status) => status.message!.slice('storing '.length))).toEqual(expect.arrayContaining([expect.stringMatching(progress)]));
    expect(storing).toHaveLength(3);
    expect(storing[0].conditions).toEqual([expect.objectContaining({ type: 'Ready', status: 'False', reason: CHECKPOINT_PHASE_REASONS.Running, message: storing[0].message })]);
    expect(written.at(-1)?.phase).toBe('Succeeded');
  });
});
