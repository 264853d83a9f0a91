/**
 * The fast-start demo's app (and the Podman end-to-end test's): a service that is slow to warm up
 * — WARM_UP_SECONDS (default 10) of building a cache, as a JIT-warmed service or one that loads a
 * model would — and then answers from that cache. It listens from the start (503 while warming),
 * so "first warm answer" is what a client sees, not when the port opens.
 *
 * It uses the hook SDK as the README shows: the HTTP server is taken off the network before a
 * checkpoint and put back after (httpServerHook), its ticker is paused and resumed (ManagedTimers),
 * and a restored copy takes a new instance id. Without a Cryo agent (no socket) it logs one line
 * and serves anyway.
 *
 *   GET  /lookup?key=N   200 {key, value, instanceId, ...} from the warm cache; 503 while warming
 *   GET  /state          everything the tests check: warm, ticks, value, instanceId, lastOutcome, ...
 *   POST /value?v=N      sets a value kept only in memory
 *
 * Env: PORT (8080), WARM_UP_SECONDS (10), and the SDK's CRYO_HOOK_SOCKET, CRYO_POD_UID, CRYO_CONTAINER_NAME.
 */
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import { createServer } from 'node:http';
import { createCheckpointHooks, httpServerHook, ManagedTimers, type RestoreOutcome } from '@cryo/hook-sdk';

const port = Number(process.env.PORT ?? 8080);
const warmUpSeconds = Number(process.env.WARM_UP_SECONDS ?? 10);
const startedAt = Date.now();

// The expensive part: entries that each cost a chain of hashes, built in slices of ~20 ms so that
// the server can say "warming" meanwhile. Time-boxed, so its length does not depend on the CPU.
const cache = new Map<number, string>();
let warm = false;
let warmUpMs = 0;
const HASHES_PER_ENTRY = 64;
const MAX_ENTRIES = 400_000; // ~50 MB of strings at most

function entry(key: number): string {
  let digest = `entry-${key}`;
  for (let i = 0; i < HASHES_PER_ENTRY; i++) digest = createHash('sha256').update(digest).digest('hex');
  return digest;
}

function warmUpSlice(): void {
  const sliceEnd = performance.now() + 20;
  while (performance.now() < sliceEnd && cache.size < MAX_ENTRIES) cache.set(cache.size, entry(cache.size));
  if (Date.now() - startedAt < warmUpSeconds * 1000 && cache.size < MAX_ENTRIES) {
    setImmediate(warmUpSlice);
    return;
  }
  if (cache.size === 0) cache.set(0, entry(0));
  warm = true;
  warmUpMs = Date.now() - startedAt;
  console.log(`warm after ${warmUpMs} ms: ${cache.size} cache entries`);
}
setImmediate(warmUpSlice);

/**
 * A v4 UUID from the kernel's pool. Not crypto.randomUUID(), even with disableEntropyCache:
 * OpenSSL's DRBG state is part of the checkpointed memory and a copy (pid 1 in its container, like
 * the original) gives it no reason to reseed, so every copy restored from one checkpoint draws the
 * same "random" bytes (seen here: three copies, one id). The kernel's pool is not in the checkpoint.
 */
function kernelUuid(): string {
  const bytes = Buffer.alloc(16);
  const fd = openSync('/dev/urandom', 'r');
  try {
    readSync(fd, bytes, 0, 16, null);
  } finally {
    closeSync(fd);
  }
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

// Every copy restored from one checkpoint starts with the same memory, so the same id: renewed below.
let instanceId = kernelUuid();
let value = 0;
let ticks = 0;
let requests = 0;
let lastOutcome: RestoreOutcome | null = null;
let restoreCount = 0;
const events: string[] = [];

const timers = new ManagedTimers();
timers.setInterval(() => ticks++, 100);

const server = createServer((req, res) => {
  requests++;
  const url = new URL(req.url ?? '/', 'http://app');
  const reply = (status: number, body: unknown) => res.writeHead(status, { 'content-type': 'application/json', connection: 'close' }).end(JSON.stringify(body));
  if (url.pathname === '/lookup') {
    if (!warm) return reply(503, { warming: true, entries: cache.size, elapsedMs: Date.now() - startedAt });
    const key = Number(url.searchParams.get('key') ?? 1);
    return reply(200, { key, value: cache.get(Math.abs(key) % cache.size), entries: cache.size, instanceId, restoreCount });
  }
  if (url.pathname === '/state') {
    return reply(200, { warm, warmUpMs, entries: cache.size, ticks, value, requests, instanceId, lastOutcome, restoreCount, events, pid: process.pid });
  }
  if (req.method === 'POST' && url.pathname === '/value') {
    value = Number(url.searchParams.get('v'));
    return reply(200, { value });
  }
  return reply(404, { error: 'not found' });
});

const hooks = createCheckpointHooks();
hooks.register({
  name: 'identity',
  beforeCheckpoint: (ctx) => void events.push(`before ${ctx.checkpointId}`),
  afterRestore: (ctx) => {
    lastOutcome = ctx.outcome;
    events.push(`after ${ctx.checkpointId} ${ctx.outcome} ${ctx.restoreCount}`);
    if (ctx.outcome !== 'restored') return;
    restoreCount = ctx.restoreCount;
    instanceId = kernelUuid();
    console.log(`restored copy #${ctx.restoreCount} of ${ctx.checkpointId}: instance ${instanceId}`);
  },
});
hooks.register(timers.hook());
hooks.register(httpServerHook(server, { drainTimeoutMs: 1_000 }));
hooks.start();

// 0.0.0.0: a restored copy's socket comes back at the recorded address, in another pod's network.
server.listen(port, '0.0.0.0', () => console.log(`listening on ${port}, warming up for ${warmUpSeconds} s`));
process.on('SIGTERM', () => {
  void hooks.stop();
  server.close();
  process.exit(0);
});
