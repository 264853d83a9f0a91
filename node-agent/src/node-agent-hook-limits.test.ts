/**
 * The agent as assembled from its flags applies --hook-max-connections-per-pod to the hook sockets
 * of its pods and counts what a limit refused at /metrics.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { annotations, silentLogger } from '@cryo/common';
import { FakeKubeApiServer, waitFor } from '@cryo/test';
import { readNodeAgentConfig } from './config.ts';
import { startNodeAgent, type RunningNodeAgent } from './node-agent.ts';
import { connectRaw, connectSocket } from './hooks/raw-websocket-client.ts';

let api: FakeKubeApiServer;
let dir: string;
let agent: RunningNodeAgent | undefined;

beforeEach(async () => {
  api = await FakeKubeApiServer.start();
  dir = await mkdtemp(path.join(os.tmpdir(), 'cryo-agent-limits-'));
});

afterEach(async () => {
  await agent?.stop();
  agent = undefined;
  await api.stop();
  await rm(dir, { recursive: true, force: true });
});

it('caps the connections of each pod at --hook-max-connections-per-pod and counts the refused ones at /metrics', async () => {
  const uid = randomUUID();
  api.put({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'app-0', namespace: 'shop', uid, annotations: { [annotations.HOOKS]: annotations.HOOKS_ENABLED } },
    spec: { nodeName: 'node-a', containers: [{ name: 'app', image: 'app:1' }] },
    status: { phase: 'Running' },
  });
  const config = readNodeAgentConfig(['--node-name', 'node-a', '--host-hooks-dir', dir, '--port', '0', '--hook-max-connections-per-pod', '1'], {});
  agent = await startNodeAgent(config, { kubeConfig: api.kubeConfig(), logger: silentLogger(), host: '127.0.0.1' });
  const socketPath = await waitFor(() => agent!.hooks.socketPath(uid), { what: 'the pod socket' });

  const first = await connectRaw(socketPath);
  const second = await connectSocket(socketPath);
  await new Promise((resolve) => second.once('close', resolve));
  const metrics = await (await fetch(`http://127.0.0.1:${agent.port}/metrics`)).text();
  expect(metrics).toMatch(/cryo_hook_limits_exceeded_total\{limit="connections-per-pod"\} 1/);
  first.socket.destroy();
});
