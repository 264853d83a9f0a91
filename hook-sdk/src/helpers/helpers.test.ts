import { Agent, createServer, request, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { readlinkSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { httpServerHook } from './http-server-hook.ts';
import { ManagedTimers } from './managed-timers.ts';
import { ManagedResource } from './managed-resource.ts';
import { closeSocket } from './close-socket.ts';
import type { HookContext } from '../hook-registry.ts';

const before: HookContext = { checkpointId: 'ns/c', reason: '', deadline: null, restoreCount: 0, outcome: null };
const after: HookContext = { ...before, outcome: 'restored', restoreCount: 1 };
/** A migration's checkpoint: a copy carries on elsewhere, this process stays quiet until stopped. */
const superseded: HookContext = { ...before, outcome: 'superseded' };
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// A fresh agent each time, so a refused connection is not hidden behind a pooled one.
function get(port: number, keepAlive = false): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ port, host: '127.0.0.1', path: '/', agent: new Agent({ keepAlive }) }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('httpServerHook', () => {
  let server: Server;
  afterEach(() => new Promise<void>((resolve) => (server.listening ? server.close(() => resolve()) : resolve())));

  it('stops listening, closes keep-alive connections, and listens on the same port again', async () => {
    server = createServer({ keepAliveTimeout: 60_000 }, (_req, res) => res.end('hi'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    expect(await get(port, true)).toBe('hi');
    let connections = 0;
    server.on('connection', () => connections++);
    const hook = httpServerHook(server);
    await hook.beforeCheckpoint!(before);
    expect(server.listening).toBe(false);
    await expect(get(port)).rejects.toThrow(/ECONNREFUSED/);
    server.getConnections((_err, count) => expect(count).toBe(0));
    await hook.afterRestore!(after);
    expect((server.address() as AddressInfo).port).toBe(port);
    expect(await get(port)).toBe('hi');
    expect(connections).toBe(1);
  });

  it('takes an https server too, and leaves a server that is not listening alone', async () => {
    server = createHttpsServer();
    const hook = httpServerHook(server);
    await hook.beforeCheckpoint!(before);
    await hook.afterRestore!(after);
    expect(server.listening).toBe(false);
  });

  it('stays closed after a superseded outcome, and listens again only if a later checkpoint ends otherwise', async () => {
    server = createServer((_req, res) => res.end('hi'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const hook = httpServerHook(server);
    await hook.beforeCheckpoint!(before);
    await hook.afterRestore!(superseded);
    expect(server.listening).toBe(false);
    await expect(get(port)).rejects.toThrow(/ECONNREFUSED/);
    // Checkpointed again (say, a migration tried anew) and this time a copy: it serves where it did.
    await hook.beforeCheckpoint!(before);
    await hook.afterRestore!(superseded);
    expect(server.listening).toBe(false);
    await hook.beforeCheckpoint!(before);
    await hook.afterRestore!(after);
    expect((server.address() as AddressInfo).port).toBe(port);
    expect(await get(port)).toBe('hi');
  });

  it('lets an in-flight request finish before closing', async () => {
    server = createServer((_req, res) => void setTimeout(() => res.end('slow'), 100));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const inFlight = get(port, true);
    await sleep(20);
    const started = performance.now();
    await httpServerHook(server).beforeCheckpoint!(before);
    expect(await inFlight).toBe('slow');
    // Done when the response is, not when the keep-alive connection would have timed out.
    expect(performance.now() - started).toBeLessThan(1_000);
  });
});

describe('ManagedTimers', () => {
  it('pauses intervals and timeouts and resumes them with the time they had left', async () => {
    const timers = new ManagedTimers();
    let ticks = 0;
    let fired = false;
    const interval = timers.setInterval(() => ticks++, 20);
    timers.setTimeout(() => (fired = true), 80);
    await sleep(50);
    const hook = timers.hook();
    await hook.beforeCheckpoint!(before);
    const ticksAtPause = ticks;
    expect(ticksAtPause).toBeGreaterThanOrEqual(1);
    await sleep(120);
    expect(ticks).toBe(ticksAtPause);
    expect(fired).toBe(false);
    await hook.afterRestore!(after);
    await sleep(60);
    expect(fired).toBe(true);
    expect(ticks).toBeGreaterThan(ticksAtPause);
    interval.clear();
    const stopped = ticks;
    await sleep(50);
    expect(ticks).toBe(stopped);
  });
});

describe('ManagedTimers after a superseded outcome', () => {
  it('stays paused: what the timers start is the copy\'s work now', async () => {
    const timers = new ManagedTimers();
    let ticks = 0;
    const interval = timers.setInterval(() => ticks++, 10);
    const hook = timers.hook();
    await hook.beforeCheckpoint!(before);
    await hook.afterRestore!(superseded);
    await sleep(60);
    expect(ticks).toBe(0);
    expect(timers.isPaused).toBe(true);
    // A later checkpoint that ends otherwise resumes them.
    await hook.beforeCheckpoint!(before);
    await hook.afterRestore!(after);
    await sleep(60);
    expect(ticks).toBeGreaterThan(0);
    interval.clear();
  });
});

describe('ManagedResource', () => {
  it('closes the resource before a checkpoint, opens a new one after, and makes users wait meanwhile', async () => {
    const log: string[] = [];
    let opened = 0;
    const resource = new ManagedResource({
      name: 'pool',
      open: (context) => {
        opened++;
        log.push(`open ${context?.outcome ?? 'start'}`);
        return { id: opened };
      },
      close: (pool) => void log.push(`close ${pool.id}`),
    });
    expect(await resource.get()).toEqual({ id: 1 });
    const hook = resource.hook();
    await hook.beforeCheckpoint!(before);
    let waited: { id: number } | undefined;
    const waiting = resource.get().then((pool) => (waited = pool));
    await sleep(10);
    expect(waited).toBeUndefined();
    await hook.afterRestore!(after);
    await waiting;
    expect(waited).toEqual({ id: 2 });
    expect(log).toEqual(['open start', 'close 1', 'open restored']);
  });

  it('stays closed after a superseded outcome: get() keeps waiting, nothing is opened or closed twice', async () => {
    const log: string[] = [];
    let opened = 0;
    const resource = new ManagedResource({
      name: 'pool',
      open: (context) => {
        opened++;
        log.push(`open ${context?.outcome ?? 'start'}`);
        return { id: opened };
      },
      close: (pool) => void log.push(`close ${pool.id}`),
    });
    await resource.get();
    const hook = resource.hook();
    await hook.beforeCheckpoint!(before);
    await hook.afterRestore!(superseded);
    let got: { id: number } | undefined;
    const waiting = resource.get().then((pool) => (got = pool));
    await sleep(30);
    expect(got).toBeUndefined();
    // Checkpointed again while closed: nothing to close (and nothing to wait for), then a copy opens it.
    await hook.beforeCheckpoint!(before);
    await hook.afterRestore!(superseded);
    expect(got).toBeUndefined();
    await hook.beforeCheckpoint!(before);
    await hook.afterRestore!(after);
    await waiting;
    expect(got).toEqual({ id: 2 });
    expect(log).toEqual(['open start', 'close 1', 'open restored']);
  });
});

describe('closeSocket', () => {
  // What CRIU sees: the socket behind the descriptor, until the process lets go of it.
  const socketBehind = (fd: number) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      return null;
    }
  };
  const fdOf = (socket: net.Socket) => (socket as unknown as { _handle: { fd: number } })._handle.fd;
  let peer: net.Server;
  const peerSockets: net.Socket[] = [];
  afterEach(() => new Promise<void>((resolve) => {
    for (const s of peerSockets.splice(0)) s.destroy();
    peer.close(() => resolve());
  }));

  async function connectTo(onPeer: (s: net.Socket) => void): Promise<net.Socket> {
    peer = net.createServer({ allowHalfOpen: true }, (s) => {
      peerSockets.push(s);
      onPeer(s);
    });
    await new Promise<void>((resolve) => peer.listen(0, '127.0.0.1', resolve));
    const socket = net.connect((peer.address() as AddressInfo).port, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    return socket;
  }

  it('resolves only once the descriptor is gone, waiting for a peer that closes late', async () => {
    // The peer answers our FIN 150 ms late: until then our side sits in FIN_WAIT2, which CRIU refuses.
    const socket = await connectTo((s) => s.on('end', () => setTimeout(() => s.end(), 150)).resume());
    const fd = fdOf(socket);
    const inode = socketBehind(fd);
    expect(inode).toMatch(/^socket:/);
    const started = performance.now();
    await closeSocket(socket);
    expect(performance.now() - started).toBeGreaterThanOrEqual(140);
    expect(socket.closed).toBe(true);
    expect(socketBehind(fd)).not.toBe(inode);
  });

  it('shows why end() is not enough: its callback comes while the descriptor is still open', async () => {
    const socket = await connectTo((s) => s.on('end', () => setTimeout(() => s.end(), 150)).resume());
    const inode = socketBehind(fdOf(socket));
    const fd = fdOf(socket);
    await new Promise<void>((resolve) => socket.end(resolve));
    expect(socketBehind(fd)).toBe(inode);
    await closeSocket(socket);
    expect(socketBehind(fd)).not.toBe(inode);
  });

  it('cuts the connection when the peer never closes its side, after graceMs', async () => {
    const socket = await connectTo((s) => s.resume());
    const started = performance.now();
    await closeSocket(socket, { graceMs: 100 });
    expect(performance.now() - started).toBeGreaterThanOrEqual(90);
    expect(socket.destroyed).toBe(true);
  });

  it('closes a socket whose unread data the app stopped reading, and one still connecting', async () => {
    const chatty = await connectTo((s) => s.on('end', () => s.end()).write('x'.repeat(256 * 1024)));
    chatty.pause();
    await closeSocket(chatty, { graceMs: 5_000 });
    expect(chatty.closed).toBe(true);
    const connecting = net.connect((peer.address() as AddressInfo).port, '127.0.0.1');
    await closeSocket(connecting);
    expect(connecting.closed).toBe(true);
    // Already closed: nothing to wait for.
    await closeSocket(connecting);
  });
});

describe('kernel randomness', () => {
  it('gives RFC 4122 v4 UUIDs and the bytes asked for', async () => {
    const { kernelRandomBytes, kernelRandomUUID } = await import('./kernel-random.ts');
    expect(kernelRandomBytes(100)).toHaveLength(100);
    const ids = new Set(Array.from({ length: 50 }, () => kernelRandomUUID()));
    expect(ids.size).toBe(50);
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });
});
