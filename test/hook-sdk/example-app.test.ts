/** The SDK's example app does what its comments promise, against the real hook server. */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { silentLogger } from '@cryo/common';
import { HookServer } from '@cryo/node-agent';
import { waitFor, freePort } from '@cryo/test';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const cleanups: Array<() => Promise<void> | void> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

describe('hook-sdk/examples/warm-service.ts', () => {
  async function startExample() {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'cryo-example-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const pod = { uid: randomUUID(), name: 'warm-0', namespace: 'demo' };
    const server = new HookServer({ hostHooksDir: dir, logger: silentLogger() });
    cleanups.push(() => server.close());
    await server.sync([pod]);
    const port = await freePort();
    const child = spawn(process.execPath, [path.join(root, 'hook-sdk/examples/warm-service.ts')], {
      env: { ...process.env, PORT: String(port), CRYO_HOOK_SOCKET: server.socketPath(pod.uid), CRYO_POD_UID: pod.uid, CRYO_CONTAINER_NAME: 'app' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    cleanups.push(() => {
      if (process.env.SHOW_OUTPUT) console.log(output);
    });
    cleanups.push(() => void child.kill());
    const ask = async () => (await fetch(`http://127.0.0.1:${port}/?n=7`)).json() as Promise<{ value: number; instanceId: string }>;
    const first = await waitFor(() => ask().catch(() => undefined), { what: 'the example to listen', timeoutMs: 20_000, intervalMs: 100 });
    expect(first.value).toBe((7 * 2654435761) % 1_000_003);
    await waitFor(() => server.sessions(pod.uid).length === 1, { what: 'its hook session' });
    return { server, pod, child, ask, first };
  }

  it('goes off the network for a checkpoint and comes back after it', async () => {
    const { server, pod, ask, first } = await startExample();
    const prepared = await server.prepare(pod.uid, { checkpointId: 'demo/warm-1', timeoutMs: 5_000 });
    expect(prepared.status).toBe('ready');
    await expect(ask()).rejects.toThrow(/fetch failed/);
    await server.finish(pod.uid, 'demo/warm-1', 'done');
    const after = await waitFor(() => ask().catch(() => undefined), { what: 'it to listen again', intervalMs: 20 });
    // Resumed, not restored: the same instance.
    expect(after.instanceId).toBe(first.instanceId);
  }, 60_000);

  it('after a migration\'s checkpoint (superseded) stays off the network, and SIGTERM ends it', async () => {
    const { server, pod, child, ask } = await startExample();
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
    expect((await server.prepare(pod.uid, { checkpointId: 'demo/move-1', timeoutMs: 5_000, purpose: 'Migration' })).status).toBe('ready');
    await server.finish(pod.uid, 'demo/move-1', 'superseded');
    await waitFor(() => server.sessions(pod.uid)[0]?.kind === 'resumed', { what: 'it to hear the outcome' });
    await new Promise((resolve) => setTimeout(resolve, 300));
    await expect(ask()).rejects.toThrow(/fetch failed/);
    expect(child.exitCode).toBeNull();
    child.kill('SIGTERM');
    // Its own SIGTERM handler stops the SDK, and nothing else holds the process.
    expect(await exited).toEqual({ code: 0, signal: null });
  }, 60_000);
});
