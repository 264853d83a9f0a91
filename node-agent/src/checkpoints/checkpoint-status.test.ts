import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CHECKPOINT_API_VERSION, silentLogger, type Checkpoint, type CheckpointStatus } from '@cryo/common';
import { FakeKubeApiServer } from '@cryo/test';
import { CheckpointStatusWriter, statusWithConditions } from './checkpoint-status.ts';

let api: FakeKubeApiServer;

beforeEach(async () => {
  api = await FakeKubeApiServer.start();
});

afterEach(async () => {
  await api.stop();
});

const checkpoint: Checkpoint = {
  apiVersion: CHECKPOINT_API_VERSION,
  kind: 'Checkpoint',
  metadata: { name: 'orders-warm', namespace: 'shop', uid: '0d7c7a52-1f0e-4b8e-9f3a-2c1d0e9b8a76' },
  spec: { podName: 'orders-0' },
};

describe('CheckpointStatusWriter.event', () => {
  it('writes an events.k8s.io/v1 Event whose eventTime the apiserver parses (a MicroTime: six fractional digits)', async () => {
    const writer = new CheckpointStatusWriter(api.kubeConfig(), 'node-a', silentLogger());
    await writer.event(checkpoint, { name: 'orders-0', uid: 'pod-uid' }, 'Normal', 'CheckpointStarted', 'checkpointing orders-0');
    const post = api.requests.find((r) => r.method === 'POST' && r.path === '/apis/events.k8s.io/v1/namespaces/shop/events');
    expect(post?.status).toBe(201);
    expect((post!.body as { eventTime: string }).eventTime).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/);
    const events = api.list<{ reason: string; regarding: { name: string }; related: { name: string }; reportingController: string }>('events.k8s.io/v1', 'events', 'shop');
    expect(events).toEqual([
      expect.objectContaining({
        reason: 'CheckpointStarted',
        reportingController: 'cryo.dev/node-agent',
        regarding: expect.objectContaining({ kind: 'Checkpoint', name: 'orders-warm' }),
        related: expect.objectContaining({ kind: 'Pod', name: 'orders-0' }),
      }),
    ]);
  });
});

describe('statusWithConditions: what `kubectl wait --for=condition=…` reads', () => {
  const t0 = new Date('2026-12-03T10:00:00Z');
  const t1 = new Date('2026-12-03T10:00:05Z');
  const ready = (status: CheckpointStatus) => status.conditions?.find((c) => c.type === 'Ready');

  it('is Ready only once stored, with the phase as the reason before, and keeps a condition’s time while its state holds', () => {
    const running = statusWithConditions({ phase: 'Running', message: 'checkpointing' }, undefined, 1, t0);
    expect(running).toMatchObject({ reason: 'Checkpointing', observedGeneration: 1 });
    expect(running.conditions).toEqual([{ type: 'Ready', status: 'False', reason: 'Checkpointing', message: 'checkpointing', observedGeneration: 1, lastTransitionTime: t0 }]);
    expect(ready(statusWithConditions({ phase: 'Running', message: 'still' }, running, 1, t1))?.lastTransitionTime).toBe(t0);
    const stored = statusWithConditions({ phase: 'Succeeded', message: 'checkpointed 1 container' }, running, 1, t1);
    expect(ready(stored)).toMatchObject({ status: 'True', reason: 'Stored', lastTransitionTime: t1 });
    expect(stored.conditions?.map((c) => c.type)).toEqual(['Ready']);
    expect(stored).not.toHaveProperty('retryable');
  });

  it('fails with the one reason in the status, Ready and Failed, and says whether a new Checkpoint may succeed', () => {
    const failed = statusWithConditions({ phase: 'Failed', reason: 'ContainerNotFound', message: 'no container "db"' }, undefined, 2, t0);
    expect(failed).toMatchObject({ reason: 'ContainerNotFound', retryable: false, observedGeneration: 2 });
    expect(failed.conditions).toEqual([
      { type: 'Ready', status: 'False', reason: 'ContainerNotFound', message: 'no container "db"', observedGeneration: 2, lastTransitionTime: t0 },
      { type: 'Failed', status: 'True', reason: 'ContainerNotFound', message: 'no container "db"', observedGeneration: 2, lastTransitionTime: t0 },
    ]);
    expect(statusWithConditions({ phase: 'Failed', reason: 'StoreFailed', message: 'ENOSPC' }, undefined, 1, t0).retryable).toBe(true);
    // A failure written without a reason is a bug, and says so rather than passing for another.
    expect(statusWithConditions({ phase: 'Failed', message: '?' }, undefined, 1, t0)).toMatchObject({ reason: 'InternalError', retryable: true });
  });

  it('turns Ready False once retention removed the data, and a phase’s old reason never leaks into the next', () => {
    const stored = statusWithConditions({ phase: 'Succeeded', message: 'ok' }, undefined, 1, t0);
    const expired = statusWithConditions({ ...stored, phase: 'Expired', message: 'retention removed its data' }, stored, 1, t1);
    expect(expired.reason).toBe('RetentionRemoved');
    expect(ready(expired)).toMatchObject({ status: 'False', reason: 'RetentionRemoved', lastTransitionTime: t1 });
    expect(expired.conditions?.some((c) => c.type === 'Failed')).toBe(false);
  });
});
