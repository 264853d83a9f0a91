import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createHealthServer } from './health-server.ts';
import { Metrics } from './metrics.ts';

describe('createHealthServer: the probes and metrics every Cryo process serves', () => {
  let close: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await close?.();
    close = undefined;
  });

  async function serve(metrics: Metrics, notReadyReason: () => string | undefined) {
    const server = createHealthServer({ metrics, notReadyReason });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    close = () => new Promise((resolve) => server.close(() => resolve()));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return async (path: string) => {
      const res = await fetch(`${base}${path}`);
      return { status: res.status, type: res.headers.get('content-type'), body: await res.text() };
    };
  }

  it('answers /healthz always, /readyz by the reason it is given, and 404 naming the paths otherwise', async () => {
    let reason: string | undefined = 'pod watch not synced yet';
    const get = await serve(new Metrics({ defaultMetrics: false }), () => reason);
    expect(await get('/healthz')).toMatchObject({ status: 200, body: 'ok\n' });
    expect(await get('/readyz')).toMatchObject({ status: 503, body: 'not ready: pod watch not synced yet\n' });
    reason = undefined;
    expect(await get('/readyz?verbose')).toMatchObject({ status: 200, body: 'ready\n' });
    expect(await get('/mutate')).toMatchObject({ status: 404, body: 'not found: /healthz, /readyz, /metrics\n' });
  });

  it('serves the registry it is given as Prometheus text, and 500 saying why when it cannot render it', async () => {
    const metrics = new Metrics({ defaultMetrics: false });
    metrics.counter('probe_test_total', 'a counter of the test').inc(3);
    const get = await serve(metrics, () => undefined);
    const served = await get('/metrics');
    expect(served.status).toBe(200);
    expect(served.type).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(served.body).toMatch(/^cryo_probe_test_total 3$/m);
    metrics.render = () => Promise.reject(new Error('a collector threw'));
    expect(await get('/metrics')).toMatchObject({ status: 500, body: 'could not render the metrics: a collector threw\n' });
  });
});
