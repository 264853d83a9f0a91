/**
 * A runnable example: a service that is slow to warm up and so worth checkpointing once and
 * restoring many times. Run it with `node hook-sdk/examples/warm-service.ts`; without a Cryo
 * agent it logs one line and serves anyway.
 *
 * What it shows:
 * - the HTTP server taken off the network before a checkpoint and put back after (httpServerHook),
 * - a periodic job paused and resumed (ManagedTimers),
 * - a connection pool closed and reopened (ManagedResource; here a stand-in object),
 * - what a restored copy must renew: its instance id and anything random (every copy restored from
 *   one checkpoint starts with the same memory, so the same "random" state), and wall-clock
 *   deadlines such as token expiry (CLOCK_REALTIME jumps over the time spent checkpointed).
 * - after a migration's checkpoint (outcome `superseded`: a copy carries on elsewhere) the helpers
 *   keep it off the network, its pool closed and its job paused, until SIGTERM ends it.
 */
import { createServer } from 'node:http';
import { createCheckpointHooks, httpServerHook, kernelRandomUUID, ManagedResource, ManagedTimers } from '@cryo/hook-sdk';

const port = Number(process.env.PORT ?? 8080);

// The expensive part: minutes for a real JIT-warmed service, a second here.
const started = Date.now();
const table = new Map<number, number>();
for (let i = 0; i < 2_000_000; i++) table.set(i, (i * 2654435761) % 1_000_003);
const warmUpMs = Date.now() - started;

// Copies share OpenSSL's generator state (randomUUID, randomBytes): ids that must differ per copy
// come from the kernel (measured: three copies drew one and the same randomUUID()).
let instanceId = kernelRandomUUID();
let tokenExpiresAt = Date.now() + 15 * 60_000;

const pool = new ManagedResource({
  name: 'db-pool',
  open: () => ({ openedAt: new Date().toISOString(), query: (n: number) => table.get(n) }),
  close: () => {},
});

const timers = new ManagedTimers();
let refreshes = 0;
timers.setInterval(() => refreshes++, 1_000).unref();

const server = createServer((req, res) => {
  const n = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('n') ?? 1);
  void pool.get().then((db) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ n, value: db.query(n), instanceId, warmUpMs, refreshes, tokenValidMs: tokenExpiresAt - Date.now() }));
  });
});

const hooks = createCheckpointHooks();
hooks.register(pool.hook());
hooks.register(timers.hook());
hooks.register(httpServerHook(server));
hooks.register({
  name: 'identity',
  afterRestore: (ctx) => {
    if (ctx.outcome !== 'restored') return;
    instanceId = kernelRandomUUID();
    tokenExpiresAt = Date.now() + 15 * 60_000; // a real app fetches a fresh token here
    console.log(`restored copy #${ctx.restoreCount} from ${ctx.checkpointId}: new instance id ${instanceId}`);
  },
});
hooks.start();

server.listen(port, () => console.log(`warmed up in ${warmUpMs} ms, listening on ${port}`));
process.on('SIGTERM', () => {
  void hooks.stop();
  server.close();
});
