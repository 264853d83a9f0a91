/**
 * Progress while a Checkpoint's archive is stored: the whole node agent against the shared fakes
 * (agent-on-fakes.ts), with its directory store and with the in-process fake registry as its
 * default store (a zstd layer, as by default), and an archive of several MiB, so that its store
 * crosses quarters (the interval of 10 s is StoreProgressThrottle's, tested on its own clock).
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHECKPOINT_PHASE_REASONS, type Checkpoint } from '@cryo/common';
import { buildCheckpointArchive, startFakeRegistry, waitFor, type FakeRegistry, type KubeObject } from '@cryo/test';
import { startAgentOnFakes, type AgentOnFakes } from './agent-on-fakes.ts';

describe.each(['directory', 'registry'] as const)('storing a checkpoint archive to the %s store', (kind) => {
  let fakes: AgentOnFakes;
  let registry: FakeRegistry | undefined;

  beforeAll(async () => {
    if (kind === 'registry') registry = await startFakeRegistry();
    // --registry-repository makes the registry the default store, ahead of --directory.
    fakes = await startAgentOnFakes('cryo-agent-store-progress-', registry === undefined ? [] : ['--registry-repository', `${registry.host}/checkpoints`, '--registry-insecure']);
  });

  afterAll(async () => {
    await fakes?.stop();
    await registry?.close();
  });

  it('says how far it got in Events with the Running phase\'s reason and in the status message meanwhile, then succeeds', async () => {
    const archive = await buildCheckpointArchive({ dir: fakes.checkpointsDir, pod: fakes.pod, containerName: 'app', fileName: 'big.tar', contents: { 'checkpoint/pages-1.img': randomBytes(8 * 1024 * 1024) } });
    const requestsBefore = fakes.api.requests.length;
    const done = await fakes.checkpointAnswering('big', archive.path);
    expect(done.status?.phase, done.status?.message).toBe('Succeeded');
    expect(done.status?.storage?.type).toBe(kind);

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
