import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CHECKPOINT_API_VERSION, silentLogger, type Checkpoint } from '@cryo/common';
import { FakeKubeApiServer } from '@cryo/test';
import { CheckpointStatusWriter } from './checkpoint-status.ts';

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
