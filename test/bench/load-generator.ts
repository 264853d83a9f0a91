/**
 * HTTPS keep-alive load for the benchmarks (undici Pool). Two shapes:
 * - closed loop: `connections` clients each send the next request when the last answer arrives,
 *   which finds the server's saturation throughput;
 * - open loop: requests start at a fixed rate whatever the answers do, and latency counts from the
 *   scheduled start, so a stall shows up in the tail instead of hiding (no coordinated omission).
 */
import { Pool } from 'undici';
import { quantile } from './quantiles.ts';

export interface LoadTarget {
  port: number;
  ca: string;
  servername: string;
  path: string;
  body: string;
}

export interface LoadResult {
  requests: number;
  errors: number;
  seconds: number;
  throughput: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

function pool(target: LoadTarget, connections: number): Pool {
  return new Pool(`https://127.0.0.1:${target.port}`, {
    connections,
    pipelining: 1,
    keepAliveTimeout: 60_000,
    connect: { ca: target.ca, servername: target.servername },
  });
}

async function send(client: Pool, target: LoadTarget): Promise<boolean> {
  const res = await client.request({
    path: target.path,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: target.body,
  });
  const text = await res.body.text();
  return res.statusCode === 200 && text.includes('"allowed":true');
}

function summarize(latencies: number[], errors: number, seconds: number): LoadResult {
  latencies.sort((a, b) => a - b);
  const at = (q: number) => quantile(latencies, q);
  return {
    requests: latencies.length,
    errors,
    seconds,
    throughput: latencies.length / seconds,
    p50Ms: at(0.5),
    p99Ms: at(0.99),
    maxMs: latencies[latencies.length - 1] ?? NaN,
  };
}

export async function closedLoop(target: LoadTarget, options: { connections: number; warmupSeconds: number; seconds: number }): Promise<LoadResult> {
  const client = pool(target, options.connections);
  const latencies: number[] = [];
  let errors = 0;
  let recording = false;
  const warmupEnd = performance.now() + options.warmupSeconds * 1000;
  const end = warmupEnd + options.seconds * 1000;
  const worker = async () => {
    for (;;) {
      const started = performance.now();
      if (started >= end) return;
      if (!recording && started >= warmupEnd) recording = true;
      const ok = await send(client, target).catch(() => false);
      if (started >= warmupEnd) {
        if (ok) latencies.push(performance.now() - started);
        else errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: options.connections }, worker));
  await client.close();
  return summarize(latencies, errors, options.seconds);
}

export async function openLoop(
  target: LoadTarget,
  options: { rate: number; seconds: number; warmupSeconds: number; connections: number; onTick?: (elapsedSeconds: number) => void },
): Promise<LoadResult> {
  const client = pool(target, options.connections);
  const latencies: number[] = [];
  let errors = 0;
  const inFlight = new Set<Promise<void>>();
  const start = performance.now();
  const warmupEnd = start + options.warmupSeconds * 1000;
  const total = Math.round(options.rate * (options.warmupSeconds + options.seconds));
  const intervalMs = 1000 / options.rate;
  let lastTick = 0;
  for (let i = 0; i < total; i++) {
    const scheduled = start + i * intervalMs;
    const wait = scheduled - performance.now();
    if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
    // Sent early (timer granularity): count from the send. Sent late: from the schedule.
    const origin = Math.min(scheduled, performance.now());
    const p = send(client, target)
      .catch(() => false)
      .then((ok) => {
        if (scheduled < warmupEnd) return;
        if (ok) latencies.push(performance.now() - origin);
        else errors++;
      });
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p));
    const elapsed = Math.floor((scheduled - start) / 1000);
    if (options.onTick && elapsed !== lastTick) {
      lastTick = elapsed;
      options.onTick(elapsed);
    }
  }
  await Promise.all(inFlight);
  await client.close();
  return summarize(latencies, errors, options.seconds);
}
