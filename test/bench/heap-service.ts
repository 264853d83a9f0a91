/**
 * The app migration-bench.ts migrates: compression-bench.ts's in-memory shop index
 * (heap-cache-app.ts, built until its RSS reaches TARGET_RSS_MIB) behind an HTTP server on PORT,
 * with the hook SDK as the docs say to use it: the server is closed before a checkpoint and opened
 * again in a restored copy (a superseded original stays closed). GET / answers the index's size
 * and this process's RSS; the pod is Ready once it answers.
 */
import { createServer } from 'node:http';
import { createCheckpointHooks, httpServerHook } from '@cryo/hook-sdk';
import { heapSummary } from './heap-cache-app.ts';

const server = createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'application/json', connection: 'close' });
  res.end(JSON.stringify({ ...heapSummary(), rssBytes: process.memoryUsage.rss() }));
});
const hooks = createCheckpointHooks();
hooks.register(httpServerHook(server, { drainTimeoutMs: 1_000 }));
hooks.start();
server.listen(Number(process.env.PORT ?? 8080), '0.0.0.0');
