/**
 * The cross-language conformance suite of the hook protocol (docs/hook-protocol.md): every client
 * runs the same scenarios against the node agent's real hook server over real unix sockets.
 */
import { mkdtemp, rm, symlink, unlink } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { HookServer, type FinishOutcome, type HookServerOptions, type HookPod } from '@cryo/node-agent';
import { silentLogger } from '@cryo/common';
import { ConformanceProcess } from './conformance-process.ts';
import { conformanceClients } from './conformance-clients.ts';

const podA: HookPod = { uid: randomUUID(), name: 'warm-jvm-0', namespace: 'shop' };
const podB: HookPod = { uid: randomUUID(), name: 'warm-jvm-copy', namespace: 'shop' };

/** Whether something listens on 127.0.0.1:port. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });
}

describe.each(conformanceClients)('hook protocol conformance: $name', (client) => {
  let argv: string[];
  let dir: string;
  let link: string;
  let server: HookServer;
  const apps: ConformanceProcess[] = [];

  beforeAll(async () => {
    argv = await client.prepare();
  }, 120_000);

  async function startServer(options: Partial<HookServerOptions> = {}): Promise<void> {
    server = new HookServer({ hostHooksDir: dir, logger: silentLogger(), ...options });
    await server.sync([podA, podB]);
  }

  beforeEach(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'cryo-conformance-'));
    // The app's socket path goes through a link, so a test can "restore" it into pod B by moving the link.
    link = path.join(dir, 'mounted');
    await symlink(path.join(dir, podA.uid), link);
    await startServer();
  });

  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => app.exit()));
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  function app(): ConformanceProcess {
    const process = new ConformanceProcess(argv, {
      CRYO_HOOK_SOCKET: path.join(link, 'agent.sock'),
      CRYO_POD_UID: podA.uid,
      CRYO_CONTAINER_NAME: 'app',
    });
    apps.push(process);
    return process;
  }

  async function connectedApp(hooks: Record<string, unknown>[] = []): Promise<ConformanceProcess> {
    const p = app();
    for (const hook of hooks) await p.command({ cmd: 'register', ...hook });
    await p.command({ cmd: 'start' });
    await p.waitFor((events) => events.some((e) => e.event === 'connected'), 'the handshake');
    return p;
  }

  it('says hello with its identity and is welcomed into its pod', async () => {
    const p = await connectedApp();
    expect(p.of('connected')[0]).toMatchObject({ kind: 'welcome', message: { type: 'welcome', protocol: 1, podUid: podA.uid, podName: 'warm-jvm-0', namespace: 'shop' } });
    const [session] = server.sessions(podA.uid);
    expect(session).toMatchObject({ container: 'app', kind: 'welcome', sessionId: expect.stringMatching(/^[A-Za-z0-9._:-]{16,128}$/) });
    // It understands the outcome a migration ends with, so the agent may migrate it.
    expect(session.features).toContain('superseded');
    expect(session.pid).toBeGreaterThan(0);
    expect(session.client).not.toBe('');
  });

  it('runs pre hooks in reverse order, answers ready, disconnects, and resumes after the checkpoint', async () => {
    const p = await connectedApp([{ name: 'a' }, { name: 'b' }, { name: 'c' }]);
    const result = await server.prepare(podA.uid, { checkpointId: 'shop/ckpt-1', reason: 'node maintenance', timeoutMs: 5_000 });
    expect(result).toMatchObject({ status: 'ready', sessions: [{ container: 'app' }] });
    expect(p.hookCalls()).toEqual(['before c', 'before b', 'before a']);
    expect(p.of('hook')[0].context).toMatchObject({ checkpointId: 'shop/ckpt-1', reason: 'node maintenance', restoreCount: 0, outcome: null });
    expect(Date.parse(String((p.of('hook')[0].context as { deadline: string }).deadline))).toBeGreaterThan(Date.now());
    expect(p.of('answered')).toMatchObject([{ type: 'ready', message: { type: 'ready', checkpointId: 'shop/ckpt-1', hookDurationMs: expect.any(Number) } }]);
    await p.waitFor((events) => events.some((e) => e.event === 'disconnected'), 'its own disconnect');
    expect(p.of('disconnected')[0]).toMatchObject({ code: 1000, reason: 'checkpoint' });

    await server.finish(podA.uid, 'shop/ckpt-1', 'done');
    await p.waitFor((events) => events.filter((e) => e.event === 'hook').length === 6, 'the post hooks');
    expect(p.of('connected')[1]).toMatchObject({ kind: 'resumed', message: { checkpointId: 'shop/ckpt-1', outcome: 'done' } });
    expect(p.hookCalls().slice(3)).toEqual(['after a', 'after b', 'after c']);
    expect(p.of('hook')[3].context).toMatchObject({ checkpointId: 'shop/ckpt-1', outcome: 'resumed', restoreCount: 0 });
  });

  it('a migration: is told superseded, runs its post hooks with it, and keeps its listener closed', async () => {
    const p = await connectedApp([{ name: 'a' }]);
    await p.command({ cmd: 'listen', name: 'http' });
    await p.command({ cmd: 'register', name: 'z' });
    const port = Number(p.of('listener')[0].port);
    expect(await accepts(port)).toBe(true);
    const result = await server.prepare(podA.uid, { checkpointId: 'shop/move-1', reason: 'migration', timeoutMs: 5_000, purpose: 'Migration' });
    expect(result).toMatchObject({ status: 'ready', sessions: [{ container: 'app' }] });
    expect(p.of('listener').map((e) => e.listening)).toEqual([true, false]);

    await server.finish(podA.uid, 'shop/move-1', 'superseded');
    // Post hooks run in registration order: once z started, the listener's hook is over.
    await p.waitFor((events) => events.some((e) => e.event === 'hook' && e.phase === 'after' && e.name === 'z'), 'the post hooks');
    expect(p.of('connected')[1]).toMatchObject({ kind: 'resumed', message: { type: 'resumed', checkpointId: 'shop/move-1', outcome: 'superseded' } });
    expect(p.hookCalls()).toEqual(['before z', 'before a', 'after a', 'after z']);
    expect(p.of('hook').slice(2).map((e) => e.context)).toEqual([
      expect.objectContaining({ checkpointId: 'shop/move-1', reason: 'migration', outcome: 'superseded', restoreCount: 0 }),
      expect.objectContaining({ outcome: 'superseded' }),
    ]);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(p.of('listener').map((e) => e.listening)).toEqual([true, false]);
    expect(await accepts(port)).toBe(false);
    // Still connected: waiting, quietly, to be stopped.
    expect(server.sessions(podA.uid)).toMatchObject([{ kind: 'resumed' }]);
  });

  it('takes an outcome it does not know (a later agent\'s) for superseded, never for resumed', async () => {
    const p = await connectedApp([{ name: 'a' }]);
    await p.command({ cmd: 'listen', name: 'http' });
    await p.command({ cmd: 'register', name: 'z' });
    await server.prepare(podA.uid, { checkpointId: 'shop/later-1', timeoutMs: 5_000 });
    await server.finish(podA.uid, 'shop/later-1', 'handed-over' as FinishOutcome);
    await p.waitFor((events) => events.some((e) => e.event === 'hook' && e.phase === 'after' && e.name === 'z'), 'the post hooks');
    expect(p.of('connected')[1]).toMatchObject({ kind: 'resumed', message: { outcome: 'handed-over' } });
    expect(p.of('hook').slice(2).map((e) => (e.context as { outcome: string }).outcome)).toEqual(['superseded', 'superseded']);
    expect(p.of('listener').map((e) => e.listening)).toEqual([true, false]);
  });

  it('a snapshot: its listener listens again on the same port', async () => {
    const p = await connectedApp();
    await p.command({ cmd: 'listen', name: 'http' });
    await p.command({ cmd: 'register', name: 'z' });
    const port = Number(p.of('listener')[0].port);
    await server.prepare(podA.uid, { checkpointId: 'shop/snap-1', timeoutMs: 5_000, purpose: 'Snapshot' });
    await server.finish(podA.uid, 'shop/snap-1', 'done');
    await p.waitFor((events) => events.some((e) => e.event === 'hook' && e.phase === 'after' && e.name === 'z'), 'the post hooks');
    expect(p.of('listener')).toMatchObject([{ listening: true, port }, { listening: false, port }, { listening: true, port }]);
    expect(await accepts(port)).toBe(true);
  });

  it('orders by priority first: higher runs later before and earlier after', async () => {
    const p = await connectedApp([{ name: 'x', priority: 5 }, { name: 'y' }, { name: 'z' }]);
    await server.prepare(podA.uid, { checkpointId: 'shop/ckpt-2', timeoutMs: 5_000 });
    await server.finish(podA.uid, 'shop/ckpt-2', 'done');
    await p.waitFor((events) => events.filter((e) => e.event === 'hook').length === 6, 'all hooks');
    expect(p.hookCalls()).toEqual(['before z', 'before y', 'before x', 'after x', 'after y', 'after z']);
  });

  it('runs every hook when one throws, reports failed, stays connected, and runs post hooks with aborted', async () => {
    const p = await connectedApp([{ name: 'pool' }, { name: 'broken', before: 'throw' }, { name: 'timers' }]);
    const result = await server.prepare(podA.uid, { checkpointId: 'shop/ckpt-3', timeoutMs: 5_000 });
    expect(result.status).toBe('failed');
    expect(result.status === 'failed' && result.reasons.join()).toMatch(/broken: broken failed/);
    await p.waitFor((events) => events.filter((e) => e.event === 'hook').length === 6, 'the post hooks');
    expect(p.hookCalls()).toEqual(['before timers', 'before broken', 'before pool', 'after pool', 'after broken', 'after timers']);
    expect(p.of('hook').slice(3).map((e) => (e.context as { outcome: string }).outcome)).toEqual(['aborted', 'aborted', 'aborted']);
    await p.waitFor((events) => events.some((e) => e.event === 'answered'), 'the failed answer');
    expect(p.of('answered')[0]).toMatchObject({ type: 'failed', message: { errors: [{ hook: 'broken', message: 'broken failed', timedOut: false }] } });
    expect(p.of('disconnected')).toEqual([]);
    await server.finish(podA.uid, 'shop/ckpt-3', 'aborted');
  });

  it('gives up on a hook after its own timeout and says it timed out', async () => {
    const p = await connectedApp([{ name: 'stuck', before: 'hang', timeoutMs: 200 }]);
    const result = await server.prepare(podA.uid, { checkpointId: 'shop/ckpt-4', timeoutMs: 5_000 });
    expect(result.status === 'failed' && result.reasons.join()).toMatch(/stuck: .*\(timed out\)/);
    await p.waitFor((events) => events.some((e) => e.event === 'answered'), 'the failed answer');
    expect(p.of('answered')[0]).toMatchObject({ type: 'failed', message: { errors: [{ hook: 'stuck', timedOut: true }] } });
    await p.waitFor((events) => events.some((e) => e.event === 'hook' && e.phase === 'after'), 'the post hook');
  });

  it('learns aborted when the checkpoint failed after it disconnected', async () => {
    const p = await connectedApp([{ name: 'a' }]);
    await server.prepare(podA.uid, { checkpointId: 'shop/ckpt-5', timeoutMs: 5_000 });
    await server.finish(podA.uid, 'shop/ckpt-5', 'aborted');
    await p.waitFor((events) => events.some((e) => e.event === 'hook' && e.phase === 'after'), 'the post hook');
    expect(p.of('connected')[1]).toMatchObject({ kind: 'resumed', message: { outcome: 'aborted' } });
    expect(p.of('hook')[1].context).toMatchObject({ outcome: 'aborted' });
  });

  it('is told it was restored when it connects from another pod, and counts restores', async () => {
    const p = await connectedApp([{ name: 'rng' }]);
    await server.prepare(podA.uid, { checkpointId: 'shop/ckpt-6', timeoutMs: 5_000 });
    await unlink(link);
    await symlink(path.join(dir, podB.uid), link);
    await p.waitFor((events) => events.some((e) => e.event === 'hook' && e.phase === 'after'), 'the post hook');
    expect(p.of('connected')[1]).toMatchObject({
      kind: 'restored',
      message: { type: 'restored', checkpointId: 'shop/ckpt-6', restoreCount: 1, podUid: podB.uid, previousPodUid: podA.uid },
    });
    expect(p.of('hook')[1].context).toMatchObject({ outcome: 'restored', restoreCount: 1, checkpointId: 'shop/ckpt-6' });

    // Checkpointed again in pod B and restored into pod A: a copy of a copy.
    await server.finish(podA.uid, 'shop/ckpt-6', 'done');
    await server.prepare(podB.uid, { checkpointId: 'shop/ckpt-7', timeoutMs: 5_000 });
    await unlink(link);
    await symlink(path.join(dir, podA.uid), link);
    await p.waitFor((events) => events.filter((e) => e.event === 'hook' && e.phase === 'after').length === 2, 'the second post hook');
    expect(p.of('connected')[2]).toMatchObject({ kind: 'restored', message: { restoreCount: 2, previousPodUid: podB.uid } });
    await server.finish(podB.uid, 'shop/ckpt-7', 'done');
  });

  it('reports an unsupported protocol version as a protocol error', async () => {
    await server.close();
    await startServer({ protocols: [2] });
    const p = app();
    await p.command({ cmd: 'start' });
    await p.waitFor((events) => events.some((e) => e.event === 'protocol-error'), 'the version error');
    expect(p.of('protocol-error')[0]).toMatchObject({ code: 'unsupported-version', message: expect.stringMatching(/protocol 2/) });
  });

  it('answers heartbeats and ignores message types it does not know', async () => {
    await server.close();
    // Short enough for several rounds, long enough for a loaded 2-core machine to answer in time.
    await startServer({ heartbeatIntervalMs: 200 });
    const p = await connectedApp([{ name: 'a' }]);
    expect(server.notify(podA.uid, { type: 'from-the-future', payload: { x: 1 } })).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    expect(p.of('disconnected'), p.stderr.join('\n')).toEqual([]);
    expect(server.sessions(podA.uid)).toHaveLength(1);
    const result = await server.prepare(podA.uid, { checkpointId: 'shop/ckpt-8', timeoutMs: 5_000 });
    expect(result.status).toBe('ready');
    await server.finish(podA.uid, 'shop/ckpt-8', 'done');
  });

  it('is checkpointed again right after the outcome: the post hooks finish first, then the pre hooks run', async () => {
    const p = await connectedApp([{ name: 'slow-reopen', after: { sleepMs: 300 } }]);
    await server.prepare(podA.uid, { checkpointId: 'shop/ckpt-10', timeoutMs: 5_000 });
    await server.finish(podA.uid, 'shop/ckpt-10', 'done');
    await p.waitFor((events) => events.filter((e) => e.event === 'connected').length === 2, 'the reconnect');
    const again = await server.prepare(podA.uid, { checkpointId: 'shop/ckpt-11', timeoutMs: 5_000 });
    expect(again.status, again.status === 'failed' ? again.reasons.join() : '').toBe('ready');
    expect(p.hookCalls()).toEqual(['before slow-reopen', 'after slow-reopen', 'before slow-reopen']);
    await server.finish(podA.uid, 'shop/ckpt-11', 'done');
  });

  it('runs only the hooks still registered', async () => {
    const p = await connectedApp([{ name: 'a' }, { name: 'b' }]);
    await p.command({ cmd: 'unregister', name: 'a' });
    await server.prepare(podA.uid, { checkpointId: 'shop/ckpt-9', timeoutMs: 5_000 });
    await server.finish(podA.uid, 'shop/ckpt-9', 'done');
    await p.waitFor((events) => events.filter((e) => e.event === 'hook').length === 2, 'the hooks');
    expect(p.hookCalls()).toEqual(['before b', 'after b']);
  });

  it('waits quietly without an agent and connects when one appears', async () => {
    await server.close();
    await rm(path.join(dir, podA.uid), { recursive: true, force: true });
    const p = app();
    await p.command({ cmd: 'start' });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(p.of('connected')).toEqual([]);
    await startServer();
    await p.waitFor((events) => events.some((e) => e.event === 'connected'), 'a late connection', 15_000);
    expect(await p.exit()).toBe(0);
  });
});
