import { mkdtemp, rm, stat, symlink, unlink, writeFile, mkdir, readdir } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { captureLogger, waitFor } from '@cryo/test';
import { CheckpointHooks, silentHookLogger, type HookContext } from '@cryo/hook-sdk';
import { Metrics } from '@cryo/common';
import { HookServer } from './hook-server.ts';
import { HookMetrics } from './hook-metrics.ts';
import type { HookPod } from './hook-pod.ts';

let dir: string;
let server: HookServer;
let metrics: Metrics;
const clients: CheckpointHooks[] = [];
const podA: HookPod = { uid: randomUUID(), name: 'app-0', namespace: 'shop' };
const podB: HookPod = { uid: randomUUID(), name: 'app-copy', namespace: 'shop' };

function client(options: ConstructorParameters<typeof CheckpointHooks>[0] = {}): CheckpointHooks {
  const hooks = new CheckpointHooks({ socketPath: server.socketPath(podA.uid)!, podUid: podA.uid, container: 'app', logger: silentHookLogger, ...options });
  clients.push(hooks);
  return hooks;
}

function connected(hooks: CheckpointHooks): Promise<string> {
  return new Promise((resolve) => hooks.once('connected', (kind) => resolve(kind)));
}

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'cryo-hooks-'));
  metrics = new Metrics({ defaultMetrics: false });
  server = new HookServer({ hostHooksDir: dir, logger: captureLogger().logger, metrics: new HookMetrics(metrics) });
  await server.sync([podA, podB]);
});

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.stop()));
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

describe('hook sockets', () => {
  it('serves one socket per pod with explicit permissions', async () => {
    const socket = await stat(path.join(dir, podA.uid, 'agent.sock'));
    expect(socket.isSocket()).toBe(true);
    expect(socket.mode & 0o777).toBe(0o666);
    expect((await stat(path.join(dir, podA.uid))).mode & 0o777).toBe(0o755);
  });

  it('removes the directories of pods that are gone and replaces stale socket files', async () => {
    await server.close();
    const gone = randomUUID();
    await mkdir(path.join(dir, gone));
    await writeFile(path.join(dir, gone, 'agent.sock'), '');
    await mkdir(path.join(dir, 'not-a-pod'));
    // A socket file left by an agent that crashed: listen() would fail with EADDRINUSE without the cleanup.
    await unlink(path.join(dir, podA.uid, 'agent.sock')).catch(() => {});
    await writeFile(path.join(dir, podA.uid, 'agent.sock'), '');
    server = new HookServer({ hostHooksDir: dir, logger: captureLogger().logger });
    await server.sync([podA]);
    expect((await readdir(dir)).sort()).toEqual([podA.uid, 'not-a-pod'].sort());
    expect((await stat(path.join(dir, podA.uid, 'agent.sock'))).isSocket()).toBe(true);
  });

  it('removes a pod socket and its directory when the pod goes', async () => {
    const hooks = client().start();
    await connected(hooks);
    await server.removePod(podA.uid);
    await expect(stat(path.join(dir, podA.uid))).rejects.toThrow(/ENOENT/);
    await waitFor(() => hooks.state === 'connecting', { what: 'the client to notice' });
  });
});

describe('handshake', () => {
  it('welcomes a new process and names its pod', async () => {
    const hooks = client();
    const answer = new Promise((resolve) => hooks.once('connected', (_kind, message) => resolve(message)));
    hooks.start();
    expect(await answer).toMatchObject({ type: 'welcome', protocol: 1, podUid: podA.uid, podName: 'app-0', namespace: 'shop', sessionId: hooks.sessionId });
    expect(server.sessions(podA.uid)).toMatchObject([{ sessionId: hooks.sessionId, container: 'app', pid: process.pid, kind: 'welcome' }]);
  });

  it('refuses an unsupported protocol version with the versions it speaks', async () => {
    await server.close();
    server = new HookServer({ hostHooksDir: dir, logger: captureLogger().logger, protocols: [2] });
    await server.sync([podA]);
    const hooks = client();
    const refused = new Promise((resolve) => hooks.once('protocol-error', resolve));
    hooks.start();
    expect(await refused).toMatchObject({ code: 'unsupported-version', supportedProtocols: [2], message: expect.stringMatching(/speaks hook protocol 2; the client sent 1/) });
  });
});

function rawClient(socketPath: string): Promise<{ ws: WebSocket; messages: Record<string, unknown>[]; closed: Promise<number> }> {
  const ws = new WebSocket('ws+unix://' + socketPath + ':/v1/hooks');
  const messages: Record<string, unknown>[] = [];
  ws.on('message', (data) => messages.push(JSON.parse((data as Buffer).toString("utf8")) as Record<string, unknown>));
  const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve({ ws, messages, closed }));
    ws.once('error', reject);
  });
}

describe('bad input', () => {
  it.each([
    ['not JSON', 'hello there', 4002, 'bad-message', /not JSON/],
    ['not an object', '[1,2]', 4002, 'bad-message', /JSON object/],
    ['no type', '{"protocol":1}', 4002, 'bad-message', /string "type"/],
    ['a message before hello', '{"type":"ready","id":"p-1"}', 4003, 'hello-required', /first message must be hello/],
    ['a malformed hello', '{"type":"hello","protocol":1,"sessionId":"short"}', 4002, 'bad-message', /sessionId must be 16–128/],
  ])('answers %s with an error naming it, then closes', async (_what, text, closeCode, code, message) => {
    const raw = await rawClient(server.socketPath(podA.uid)!);
    raw.ws.send(text);
    expect(await raw.closed).toBe(closeCode);
    expect(raw.messages).toEqual([{ type: 'error', code, message: expect.stringMatching(message) }]);
  });

  it('refuses an answer to a prepare that was never sent on this connection, and stays open', async () => {
    const raw = await rawClient(server.socketPath(podA.uid)!);
    raw.ws.send(JSON.stringify({ type: 'hello', protocol: 1, sessionId: 'a'.repeat(32), pid: 7, container: 'app', podUid: podA.uid, restoreCount: 0, pendingCheckpoint: null }));
    await waitFor(() => raw.messages.length === 1, { what: 'welcome' });
    raw.ws.send(JSON.stringify({ type: 'ready', id: 'p-999', checkpointId: 'shop/other' }));
    raw.ws.send(JSON.stringify({ type: 'something-new', detail: 1 }));
    raw.ws.send(JSON.stringify({ type: 'ping', id: 'x' }));
    await waitFor(() => raw.messages.length === 3, { what: 'two answers' });
    expect(raw.messages.slice(1)).toEqual([
      { type: 'error', code: 'unknown-request', id: 'p-999', message: expect.stringMatching(/no prepare "p-999"/) },
      { type: 'pong', id: 'x' },
    ]);
    expect(raw.ws.readyState).toBe(WebSocket.OPEN);
    raw.ws.close();
  });

  it('answers plain HTTP on the socket with 404', async () => {
    const http = await import('node:http');
    const status = await new Promise<number>((resolve, reject) => {
      http.get({ socketPath: server.socketPath(podA.uid)!, path: '/' }, (res) => resolve(res.statusCode ?? 0)).on('error', reject);
    });
    expect(status).toBe(404);
  });
});

describe('a checkpoint', () => {
  it('runs pre hooks in reverse order, waits for the disconnect, and resumes with done', async () => {
    const calls: string[] = [];
    const contexts: HookContext[] = [];
    const hooks = client();
    for (const name of ['first', 'second']) {
      hooks.register({
        name,
        beforeCheckpoint: (ctx) => void (calls.push(`before ${name}`), contexts.push(ctx)),
        afterRestore: (ctx) => void (calls.push(`after ${name}`), contexts.push(ctx)),
      });
    }
    hooks.start();
    await connected(hooks);
    const result = await server.prepare(podA.uid, { checkpointId: 'shop/ckpt-1', reason: 'node maintenance', timeoutMs: 2_000 });
    expect(result).toMatchObject({ status: 'ready', sessions: [{ sessionId: hooks.sessionId, container: 'app' }] });
    expect(calls).toEqual(['before second', 'before first']);
    expect(contexts[0]).toMatchObject({ checkpointId: 'shop/ckpt-1', reason: 'node maintenance', restoreCount: 0, outcome: null });
    // Nothing may be connected, or able to connect, while CRIU dumps.
    expect(server.sessions(podA.uid)).toEqual([]);
    await expect(stat(path.join(dir, podA.uid, 'agent.sock'))).rejects.toThrow(/ENOENT/);
    await new Promise((resolve) => setTimeout(resolve, 120));
    expect(server.sessions(podA.uid)).toEqual([]);

    const resumed = new Promise((resolve) => hooks.once('connected', (_kind, message) => resolve(message)));
    await server.finish(podA.uid, 'shop/ckpt-1', 'done');
    expect(await resumed).toMatchObject({ type: 'resumed', checkpointId: 'shop/ckpt-1', outcome: 'done' });
    await waitFor(() => calls.length === 4, { what: 'post hooks' });
    expect(calls.slice(2)).toEqual(['after first', 'after second']);
    expect(contexts[3]).toMatchObject({ checkpointId: 'shop/ckpt-1', outcome: 'resumed', restoreCount: 0 });
  });

  it('aborts when a hook throws, runs every hook, and the post hooks see aborted', async () => {
    const calls: string[] = [];
    const hooks = client();
    hooks.register({ name: 'pool', beforeCheckpoint: () => void calls.push('before pool'), afterRestore: (c) => void calls.push(`after pool ${c.outcome}`) });
    hooks.register({ name: 'broken', beforeCheckpoint: () => { throw new Error('socket would not close'); } });
    hooks.start();
    await connected(hooks);
    const result = await server.prepare(podA.uid, { checkpointId: 'shop/ckpt-2', timeoutMs: 2_000 });
    expect(result.status).toBe('failed');
    expect(result.status === 'failed' && result.reasons.join()).toMatch(/failed its pre-checkpoint hooks: broken: socket would not close/);
    await waitFor(() => calls.length === 2, { what: 'post hooks' });
    expect(calls).toEqual(['before pool', 'after pool aborted']);
    await server.finish(podA.uid, 'shop/ckpt-2', 'aborted');
    expect(server.sessions(podA.uid)).toHaveLength(1); // it never disconnected
  });

  it('aborts when a hook outlives its own timeout', async () => {
    const hooks = client();
    hooks.register({ name: 'slow', timeoutMs: 50, beforeCheckpoint: () => new Promise((resolve) => setTimeout(resolve, 1_000)) });
    hooks.start();
    await connected(hooks);
    const result = await server.prepare(podA.uid, { checkpointId: 'shop/ckpt-3', timeoutMs: 2_000 });
    expect(result.status === 'failed' && result.reasons.join()).toMatch(/slow: hook "slow" timed out after 50 ms \(timed out\)/);
  });

  it('aborts when a process does not answer within the deadline', async () => {
    const raw = await rawClient(server.socketPath(podA.uid)!);
    raw.ws.send(JSON.stringify({ type: 'hello', protocol: 1, sessionId: 'b'.repeat(32), pid: 9, container: 'app', podUid: podA.uid, restoreCount: 0, pendingCheckpoint: null }));
    await waitFor(() => raw.messages.length === 1, { what: 'welcome' });
    const result = await server.prepare(podA.uid, { checkpointId: 'shop/ckpt-4', timeoutMs: 100 });
    expect(result.status === 'failed' && result.reasons).toEqual(['not every process was ready and disconnected within 100 ms']);
    expect(raw.messages[1]).toMatchObject({ type: 'prepare', checkpointId: 'shop/ckpt-4', timeoutMs: expect.any(Number), deadline: expect.any(String) });
    raw.ws.close();
  });

  it('waits for a connection still in its HTTP upgrade: it would be a socket CRIU refuses', async () => {
    const net = await import('node:net');
    const raw = net.connect({ path: server.socketPath(podA.uid)! });
    await new Promise((resolve) => raw.once('connect', resolve));
    const started = performance.now();
    const prepared = server.prepare(podA.uid, { checkpointId: 'shop/ckpt-10', timeoutMs: 2_000 });
    setTimeout(() => raw.destroy(), 150);
    expect((await prepared).status).toBe('ready');
    expect(performance.now() - started).toBeGreaterThanOrEqual(140);
    await server.finish(podA.uid, 'shop/ckpt-10', 'done');
  });

  it('only addresses the containers being checkpointed', async () => {
    const app = client({ container: 'app' }).start();
    const sidecar = client({ container: 'sidecar' }).start();
    await Promise.all([connected(app), connected(sidecar)]);
    const result = await server.prepare(podA.uid, { checkpointId: 'shop/ckpt-5', timeoutMs: 2_000, containers: ['app'] });
    expect(result).toMatchObject({ status: 'ready', sessions: [{ container: 'app' }] });
    expect(server.sessions(podA.uid)).toMatchObject([{ container: 'sidecar' }]);
    await server.finish(podA.uid, 'shop/ckpt-5', 'done');
  });

  it('refuses a second checkpoint of the same pod while one runs', async () => {
    await server.prepare(podA.uid, { checkpointId: 'shop/ckpt-6', timeoutMs: 1_000 });
    await expect(server.prepare(podA.uid, { checkpointId: 'shop/ckpt-7', timeoutMs: 1_000 })).rejects.toThrow(/ckpt-6 .* still in progress/);
    await expect(server.prepare(randomUUID(), { checkpointId: 'shop/x', timeoutMs: 1_000 })).rejects.toThrow(/has no hook socket on this node/);
  });
});

/** A hand-written client: hello (features as given), then nothing unless the test sends it. */
async function rawHello(socketPath: string, fields: Record<string, unknown>) {
  const raw = await rawClient(socketPath);
  raw.ws.send(JSON.stringify({ type: 'hello', protocol: 1, pid: 11, container: 'app', podUid: podA.uid, restoreCount: 0, pendingCheckpoint: null, ...fields }));
  await waitFor(() => raw.messages.length >= 1, { what: 'the answer to hello' });
  return raw;
}

describe('a checkpoint for a migration (superseded)', () => {
  it('ends superseded: the SDK runs its post hooks with it', async () => {
    const contexts: HookContext[] = [];
    const hooks = client();
    hooks.register({ name: 'server', beforeCheckpoint: () => {}, afterRestore: (ctx) => void contexts.push(ctx) });
    hooks.start();
    await connected(hooks);
    expect(server.sessions(podA.uid)).toMatchObject([{ features: ['superseded'] }]);
    const result = await server.prepare(podA.uid, { checkpointId: 'shop/move-1', reason: 'migration', timeoutMs: 2_000, purpose: 'Migration' });
    expect(result).toMatchObject({ status: 'ready', sessions: [{ sessionId: hooks.sessionId }] });
    const answer = new Promise((resolve) => hooks.once('connected', (_kind, message) => resolve(message)));
    await server.finish(podA.uid, 'shop/move-1', 'superseded');
    expect(await answer).toMatchObject({ type: 'resumed', checkpointId: 'shop/move-1', outcome: 'superseded' });
    await waitFor(() => contexts.length === 1, { what: 'the post hook' });
    expect(contexts[0]).toMatchObject({ checkpointId: 'shop/move-1', reason: 'migration', outcome: 'superseded', restoreCount: 0 });
    expect(hooks.superseded).toBe(true);
  });

  it('tells a process that asks about its pending checkpoint superseded, each time it asks', async () => {
    await server.prepare(podA.uid, { checkpointId: 'shop/move-2', timeoutMs: 1_000, purpose: 'Migration' });
    await server.finish(podA.uid, 'shop/move-2', 'superseded');
    for (const sessionId of ['c'.repeat(32), 'c'.repeat(32)]) {
      const raw = await rawHello(server.socketPath(podA.uid)!, { sessionId, features: ['superseded'], pendingCheckpoint: 'shop/move-2' });
      expect(raw.messages[0]).toMatchObject({ type: 'resumed', checkpointId: 'shop/move-2', outcome: 'superseded', podUid: podA.uid });
      raw.ws.close();
      await raw.closed;
    }
  });

  it('refuses, before asking anyone, when a process would misread superseded; a snapshot still asks it', async () => {
    const aware = await rawHello(server.socketPath(podA.uid)!, { sessionId: 'd'.repeat(32), features: ['superseded'] });
    const unaware = await rawHello(server.socketPath(podA.uid)!, { sessionId: 'e'.repeat(32), pid: 12, client: { name: 'old-sdk', version: '0.0.9' } });
    expect(server.sessions(podA.uid).map((s) => s.features).sort()).toEqual([[], ['superseded']]);
    const result = await server.prepare(podA.uid, { checkpointId: 'shop/move-3', timeoutMs: 2_000, purpose: 'Migration' });
    expect(result.status).toBe('failed');
    expect(result.status === 'failed' && result.reasons).toEqual([
      `process 12 (container "app", session ${'e'.repeat(32)}) cannot be told that a migration superseded it: its hook client (old-sdk 0.0.9) lists no "superseded" feature and would take the outcome for resumed; update the app's hook SDK`,
    ]);
    // Nobody was asked to prepare: both stay connected, untouched.
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect([aware.messages.length, unaware.messages.length]).toEqual([1, 1]);
    expect(server.sessions(podA.uid)).toHaveLength(2);
    await server.finish(podA.uid, 'shop/move-3', 'aborted');

    // Any other checkpoint asks it as before.
    const snapshot = server.prepare(podA.uid, { checkpointId: 'shop/snap-1', timeoutMs: 150, purpose: 'Snapshot' });
    await waitFor(() => unaware.messages.length === 2, { what: 'the prepare' });
    expect(unaware.messages[1]).toMatchObject({ type: 'prepare', checkpointId: 'shop/snap-1' });
    expect((await snapshot).status).toBe('failed'); // nobody answers here
    aware.ws.close();
    unaware.ws.close();
  });

  it('does not mind processes it does not address', async () => {
    const sidecar = await rawHello(server.socketPath(podA.uid)!, { sessionId: 'f'.repeat(32), container: 'sidecar' });
    const app = client({ container: 'app' }).start();
    await connected(app);
    const result = await server.prepare(podA.uid, { checkpointId: 'shop/move-4', timeoutMs: 2_000, containers: ['app'], purpose: 'Migration' });
    expect(result).toMatchObject({ status: 'ready', sessions: [{ container: 'app' }] });
    expect(sidecar.messages).toHaveLength(1);
    await server.finish(podA.uid, 'shop/move-4', 'superseded');
    sidecar.ws.close();
  });

  it.each([
    ['not an array', 'superseded', /hello.features must be an array of strings/],
    ['an array with a number', ['superseded', 2], /hello.features must be an array of strings/],
  ])('refuses hello.features that is %s', async (_what, features, message) => {
    const raw = await rawClient(server.socketPath(podA.uid)!);
    raw.ws.send(JSON.stringify({ type: 'hello', protocol: 1, sessionId: 'g'.repeat(32), features }));
    expect(await raw.closed).toBe(4002);
    expect(raw.messages).toEqual([{ type: 'error', code: 'bad-message', message: expect.stringMatching(message) }]);
  });

  it('keeps 32 feature names, drops ones too long to be one, and ignores the ones it does not know', async () => {
    const names = ['x'.repeat(65), 'superseded', ...Array.from({ length: 40 }, (_, i) => `later-${i}`)];
    const raw = await rawHello(server.socketPath(podA.uid)!, { sessionId: 'h'.repeat(32), features: names });
    expect(raw.messages[0]).toMatchObject({ type: 'welcome' });
    const [session] = server.sessions(podA.uid);
    expect(session.features).toHaveLength(32);
    expect(session.features[0]).toBe('superseded');
    raw.ws.close();
  });
});

describe('a restored copy', () => {
  it('is told it was restored when its session connects from another pod', async () => {
    // The copy keeps the original's memory: same session id, same remembered pod. A symlink
    // stands in for the new pod's mount of its own directory at the same path.
    const link = path.join(dir, 'current');
    await symlink(path.join(dir, podA.uid), link);
    const restoredContexts: HookContext[] = [];
    const hooks = client({ socketPath: path.join(link, 'agent.sock') });
    hooks.register({ name: 'rng', beforeCheckpoint: () => {}, afterRestore: (ctx) => void restoredContexts.push(ctx) });
    hooks.start();
    await connected(hooks);
    const prepared = await server.prepare(podA.uid, { checkpointId: 'shop/ckpt-8', timeoutMs: 2_000 });
    expect(prepared.status).toBe('ready');
    await unlink(link);
    await symlink(path.join(dir, podB.uid), link);
    const answer = new Promise((resolve) => hooks.once('connected', (_kind, message) => resolve(message)));
    expect(await answer).toMatchObject({ type: 'restored', checkpointId: 'shop/ckpt-8', restoreCount: 1, previousPodUid: podA.uid, podUid: podB.uid, podName: 'app-copy' });
    await waitFor(() => restoredContexts.length === 1, { what: 'post hook' });
    expect(restoredContexts[0]).toMatchObject({ outcome: 'restored', restoreCount: 1, checkpointId: 'shop/ckpt-8' });
    expect(hooks.restores).toBe(1);
    await server.finish(podA.uid, 'shop/ckpt-8', 'done');
  });
});

describe('metrics', () => {
  it('counts handshakes and times prepares', async () => {
    const hooks = client().start();
    await connected(hooks);
    await server.prepare(podA.uid, { checkpointId: 'shop/ckpt-9', timeoutMs: 2_000 });
    await server.finish(podA.uid, 'shop/ckpt-9', 'done');
    await waitFor(() => hooks.state === 'connected', { what: 'reconnect' });
    const text = (await metrics.render()).body;
    expect(text).toMatch(/cryo_hook_connections_total\{kind="welcome"\} 1/);
    expect(text).toMatch(/cryo_hook_connections_total\{kind="resumed"\} 1/);
    expect(text).toMatch(/cryo_hook_prepare_duration_seconds_count\{result="ready"\} 1/);
    expect(text).toMatch(/cryo_hook_sessions 1/);
  });
});
