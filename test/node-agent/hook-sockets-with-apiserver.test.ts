/**
 * The node agent's hook sockets follow the pods of its node as the API reports them: a watch with
 * the `spec.nodeName` field selector against the shared fake kube-apiserver, through the real
 * @kubernetes/client-node.
 */
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { annotations, silentLogger } from '@cryo/common';
import { CheckpointHooks, silentHookLogger } from '@cryo/hook-sdk';
import { readNodeAgentConfig, startNodeAgent, type RunningNodeAgent } from '@cryo/node-agent';
import { FakeKubeApiServer, waitFor } from '@cryo/test';

let api: FakeKubeApiServer;
let dir: string;
let agent: RunningNodeAgent | undefined;

function pod(name: string, nodeName: string, hooks: boolean, uid = randomUUID()) {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'shop', uid, annotations: hooks ? { [annotations.HOOKS]: annotations.HOOKS_ENABLED } : {} },
    spec: { nodeName, containers: [{ name: 'app', image: 'app:1' }] },
    status: { phase: 'Running' },
  };
}

const podDirs = async () => (await readdir(dir)).sort();

beforeEach(async () => {
  api = await FakeKubeApiServer.start();
  dir = await mkdtemp(path.join(os.tmpdir(), 'cryo-agent-hooks-'));
});

afterEach(async () => {
  await agent?.stop();
  agent = undefined;
  await api.stop();
  await rm(dir, { recursive: true, force: true });
});

async function start(): Promise<RunningNodeAgent> {
  const config = readNodeAgentConfig(['--node-name', 'node-a', '--host-hooks-dir', dir, '--port', '0'], {});
  agent = await startNodeAgent(config, { kubeConfig: api.kubeConfig(), logger: silentLogger(), host: '127.0.0.1' });
  return agent;
}

describe('hook sockets from the pod watch', () => {
  it('opens sockets for hook-enabled pods on its node only, and removes leftovers at start', async () => {
    const mine = pod('app-0', 'node-a', true);
    api.put(mine);
    api.put(pod('plain', 'node-a', false));
    api.put(pod('elsewhere', 'node-b', true));
    const leftover = randomUUID();
    await mkdir(path.join(dir, leftover));
    await start();
    expect(await podDirs()).toEqual([mine.metadata.uid]);
    const podsWatch = api.requests.find((r) => r.path === '/api/v1/pods' && r.query.get('watch') === 'true');
    expect(podsWatch?.query.get('fieldSelector')).toBe('spec.nodeName=node-a');
  });

  it('follows pods as they come, change and go', async () => {
    const running = await start();
    const later = pod('app-1', 'node-a', true);
    api.put(later);
    await waitFor(async () => (await podDirs()).includes(later.metadata.uid), { what: 'the new pod socket' });

    const hooks = new CheckpointHooks({ socketPath: running.hooks.socketPath(later.metadata.uid)!, podUid: later.metadata.uid, logger: silentHookLogger });
    hooks.start();
    await waitFor(() => running.hooks.sessions(later.metadata.uid).length === 1, { what: 'a session' });

    // Turning hooks off, or the pod finishing, removes the socket and ends the sessions.
    api.put({ ...later, metadata: { ...later.metadata, annotations: {} } });
    await waitFor(async () => (await podDirs()).length === 0, { what: 'the socket to go' });
    await waitFor(() => hooks.state === 'connecting', { what: 'the client to be cut off' });
    await hooks.stop();

    const finishing = pod('job-0', 'node-a', true);
    api.put(finishing);
    await waitFor(async () => (await podDirs()).includes(finishing.metadata.uid), { what: 'the job socket' });
    api.put({ ...finishing, status: { phase: 'Succeeded' } });
    await waitFor(async () => (await podDirs()).length === 0, { what: 'the job socket to go' });

    const deleted = pod('app-2', 'node-a', true);
    api.put(deleted);
    await waitFor(async () => (await podDirs()).includes(deleted.metadata.uid), { what: 'the socket' });
    api.remove('v1', 'pods', 'shop', 'app-2');
    await waitFor(async () => (await podDirs()).length === 0, { what: 'the socket of the deleted pod to go' });
  });

  it('serves health, readiness and the hook metrics', async () => {
    const running = await start();
    const get = async (p: string) => {
      const res = await fetch(`http://127.0.0.1:${running.port}${p}`);
      return { status: res.status, body: await res.text() };
    };
    expect(await get('/healthz')).toEqual({ status: 200, body: 'ok\n' });
    expect(await get('/readyz')).toEqual({ status: 200, body: 'ready\n' });
    expect((await get('/metrics')).body).toMatch(/cryo_hook_sessions 0/);
    expect((await get('/nope')).status).toBe(404);
  });

  it('refuses to start without a node name, saying where it comes from', () => {
    expect(() => readNodeAgentConfig([], {})).toThrow(/--node-name \(NODE_NAME\) is required: set it from the downward API field spec.nodeName/);
    expect(() => readNodeAgentConfig(['--node-name', 'n', '--hook-socket-mode', '999'], {})).toThrow(/octal file mode/);
  });
});
