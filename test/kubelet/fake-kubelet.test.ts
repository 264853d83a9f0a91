/**
 * The kubelet stand-in against the kubelet's contract: its status codes and bodies (no lab
 * needed), and in the CRIU lab a real dump of a running Node container written as CRI-O's
 * archive, which checkpointctl accepts as a CRI-O checkpoint.
 */
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import type { Lab, LabContainer, LabPod } from '@cryo/test';
import { DEFAULT_LAB_IMAGE, FakeKubelet, httpsRequest, openLab, podHttp, runCommand, stubLabContainer, waitFor } from '@cryo/test';

const TOKEN = 'node-agent-token';

describe('the fake kubelet’s checkpoint API', () => {
  let dir: string;
  let kubelet: FakeKubelet;
  const call = (method: string, path: string, token: string | null = TOKEN) =>
    httpsRequest({ port: kubelet.port, ca: kubelet.caPem, servername: 'localhost', agent: false }, method, path, undefined, token === null ? {} : { authorization: `Bearer ${token}` });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cryo-fake-kubelet-test-'));
    kubelet = await FakeKubelet.start({ checkpointsDir: join(dir, 'checkpoints'), token: TOKEN, forbiddenTokens: ['other-sa-token'] });
    kubelet.addPod({ namespace: 'shop', name: 'orders-0', containers: { app: stubLabContainer('running'), stopped: stubLabContainer('stopped') } });
  });
  afterAll(async () => {
    await kubelet.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('answers 401 Unauthorized without a token or with an unknown one, before looking at path or method', async () => {
    for (const [method, path, token] of [
      ['POST', '/checkpoint/shop/orders-0/app', null],
      ['POST', '/checkpoint/shop/orders-0/app', 'stale-token'],
      ['GET', '/nowhere', null],
    ] as const) {
      const res = await call(method, path, token);
      expect([res.status, res.text, res.headers['content-type']]).toEqual([401, 'Unauthorized', 'text/plain; charset=utf-8']);
    }
  });

  it('answers 403 naming the user and the nodes/checkpoint subresource to a token without the permission', async () => {
    const res = await call('POST', '/checkpoint/shop/orders-0/app', 'other-sa-token');
    expect(res.status).toBe(403);
    expect(res.text).toBe('Forbidden (user=system:serviceaccount:cryo-system:cryo-node-agent, verb=create, resource=nodes, subresource=checkpoint)');
  });

  it('answers 404 for other paths, unknown pods and containers and an unparsable timeout, and 405 for other methods', async () => {
    const cases: [string, string, number, string][] = [
      ['POST', '/checkpoint/shop/orders-0', 404, '404: Page Not Found'],
      ['POST', '/checkpoint/shop/orders-0/app/extra', 404, '404: Page Not Found'],
      ['GET', '/checkpoint/shop/orders-0/app', 405, '405: Method Not Allowed'],
      ['PUT', '/checkpoint/shop/orders-0/app', 405, '405: Method Not Allowed'],
      ['POST', '/checkpoint/shop/orders-9/app', 404, 'pod does not exist'],
      ['POST', '/checkpoint/elsewhere/orders-0/app', 404, 'pod does not exist'],
      ['POST', '/checkpoint/shop/orders-0/sidecar', 404, 'container sidecar does not exist'],
      ['POST', '/checkpoint/shop/orders-0/app?timeout=ten', 404, 'cannot parse value of timeout parameter'],
      ['POST', '/checkpoint/shop/orders-0/app?timeout=5&timeout=1.5', 404, 'cannot parse value of timeout parameter'],
    ];
    for (const [method, path, status, text] of cases) {
      const res = await call(method, path);
      expect({ method, path, status: res.status, text: res.text }).toEqual({ method, path, status, text });
    }
  });

  it('answers 500 as the kubelet words it for a negative timeout and a container that is not running', async () => {
    const negative = await call('POST', '/checkpoint/shop/orders-0/app?timeout=-1');
    expect([negative.status, negative.text]).toEqual([500, 'checkpointing of shop/orders-0/app failed (CheckpointContainer requires the timeout value to be > 0)']);
    const stopped = await call('POST', '/checkpoint/shop/orders-0/stopped');
    expect([stopped.status, stopped.text]).toEqual([500, 'checkpointing of shop/orders-0/stopped failed (container stopped not found)']);
  });

  it('answers 500 with the runtime’s message when the dump fails, and leaves no archive', async () => {
    kubelet.addPod({
      namespace: 'shop',
      name: 'broken-0',
      containers: { app: stubLabContainer('running', () => Promise.resolve({ ok: false, durationMs: 5, log: '(00.01) Error (criu/sk-inet.c:191): inet: Connected TCP socket, consider using --tcp-established option.\ncrun: checkpoint failed' })) },
    });
    const res = await call('POST', '/checkpoint/shop/broken-0/app?timeout=30');
    expect(res.status).toBe(500);
    expect(res.text).toBe(
      'checkpointing of shop/broken-0/app failed (rpc error: code = Unknown desc = failed to checkpoint container stub: running "crun checkpoint" failed: ' +
        'checkpoint failed; (00.01) Error (criu/sk-inet.c:191): inet: Connected TCP socket, consider using --tcp-established option.)',
    );
    expect(await readdir(kubelet.checkpointsDir)).toEqual([]);
  });

  it('answers with the CRI deadline error when the dump outlasts max(timeout, the CRI default)', async () => {
    const slow = await FakeKubelet.start({ checkpointsDir: join(dir, 'slow'), token: TOKEN, criTimeoutSeconds: 1 });
    try {
      slow.addPod({ namespace: 'shop', name: 'slow-0', containers: { app: stubLabContainer('running', () => new Promise((resolve) => setTimeout(() => resolve({ ok: false, durationMs: 1500, log: '' }), 1500))) } });
      const started = performance.now();
      const res = await httpsRequest({ port: slow.port, ca: slow.caPem, servername: 'localhost', agent: false }, 'POST', '/checkpoint/shop/slow-0/app?timeout=1', undefined, { authorization: `Bearer ${TOKEN}` });
      expect([res.status, res.text]).toEqual([500, 'checkpointing of shop/slow-0/app failed (rpc error: code = DeadlineExceeded desc = context deadline exceeded)']);
      expect(performance.now() - started).toBeGreaterThanOrEqual(990);
    } finally {
      await slow.close();
    }
  });

  it('injects faults: a status and body for the next N requests, a delay, and no answer at all', async () => {
    kubelet.failNext({ status: 503, body: 'kubelet is restarting', times: 2 });
    expect((await call('POST', '/checkpoint/shop/orders-0/app')).status).toBe(503);
    expect((await call('POST', '/checkpoint/shop/orders-0/app')).text).toBe('kubelet is restarting');
    expect((await call('POST', '/checkpoint/shop/orders-9/app')).status).toBe(404);

    kubelet.failNext({ delayMs: 300 });
    const started = performance.now();
    expect((await call('POST', '/checkpoint/shop/orders-9/app')).text).toBe('pod does not exist');
    expect(performance.now() - started).toBeGreaterThanOrEqual(290);

    kubelet.failNext({ hang: true });
    const before = kubelet.requests.length;
    await expect(
      new Promise((resolve, reject) => {
        httpsRequest({ port: kubelet.port, ca: kubelet.caPem, servername: 'localhost', agent: false }, 'POST', '/checkpoint/shop/orders-0/app', undefined, { authorization: `Bearer ${TOKEN}` }).then(resolve, reject);
        setTimeout(() => reject(new Error('no answer')), 500);
      }),
    ).rejects.toThrow('no answer');
    expect(kubelet.requests[before]).toMatchObject({ method: 'POST', path: '/checkpoint/shop/orders-0/app', status: 0 });
  });

  it('records every request: method, raw path, query, whether and which token came, and the status', async () => {
    const before = kubelet.requests.length;
    await call('POST', '/checkpoint/shop/orders%2D9/app?timeout=7');
    await call('POST', '/checkpoint/shop/orders-0/app', null);
    const [first, second] = kubelet.requests.slice(before);
    expect(first).toMatchObject({ method: 'POST', path: '/checkpoint/shop/orders%2D9/app', authorization: true, token: TOKEN, status: 404 });
    expect(first.query.get('timeout')).toBe('7');
    expect(second).toMatchObject({ authorization: false, token: undefined, status: 401 });
  });
});

const opened = await openLab();
const skip = 'skip' in opened ? opened.skip : undefined;

describe.skipIf(skip !== undefined)(`the fake kubelet dumping a lab container with CRIU${skip === undefined ? '' : ` (skipped: ${skip})`}`, () => {
  const lab = opened as Lab;
  let dir: string;
  let pod: LabPod;
  let app: LabContainer;
  let kubelet: FakeKubelet;
  let archive: string;
  const post = (path: string) => httpsRequest({ port: kubelet.port, ca: kubelet.caPem, servername: 'localhost', agent: false }, 'POST', path, undefined, { authorization: `Bearer ${TOKEN}` });
  const showOutputOnFailure = () => onTestFailed(async () => console.log(`--- ${app.id} output:\n${await app.output()}`));

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cryo-fake-kubelet-lab-'));
    pod = await lab.createPod('fake-kubelet-a');
    app = await lab.runContainer({
      id: 'fake-kubelet-app',
      pod,
      argv: [lab.nodeBinary, join(lab.settings.repoRoot, 'test/lab/fixtures/counter-server.ts')],
      mounts: [{ source: dir, destination: '/run/cryo' }],
    });
    kubelet = await FakeKubelet.start({ checkpointsDir: join(dir, 'checkpoints'), token: TOKEN, pods: [{ namespace: 'shop', name: 'orders-0', uid: '3f1e7c52-1111-4a4a-9c9c-0123456789ab', containers: { app } }] });
    await waitFor(() => podHttp(pod.ip, 8080, 'GET', '/state').catch(() => undefined), { timeoutMs: 15_000, what: 'the counter server' });
  });
  afterEach(() => kubelet.requests.splice(0));
  afterAll(async () => {
    await kubelet?.close();
    await lab.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('dumps the container with CRIU, answers the archive path the kubelet would, and the container keeps running', async () => {
    showOutputOnFailure();
    await podHttp(pod.ip, 8080, 'POST', '/counter?value=41');
    const before = new Date(Math.floor(Date.now() / 1000) * 1000);
    const res = await post('/checkpoint/shop/orders-0/app?timeout=60');
    expect(res.status, res.text).toBe(200);
    expect(res.headers['content-type']).toBe('application/json');
    archive = res.json<{ items: string[] }>().items[0];
    const name = /^checkpoint-orders-0_shop-app-(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)\.tar$/.exec(archive.slice(kubelet.checkpointsDir.length + 1));
    expect(archive.startsWith(`${kubelet.checkpointsDir}/`) && name !== null, archive).toBe(true);
    expect(new Date(name![1]).getTime()).toBeGreaterThanOrEqual(before.getTime());
    // Only the archive: the partial file it was written as is gone.
    expect(await readdir(kubelet.checkpointsDir)).toEqual([archive.slice(kubelet.checkpointsDir.length + 1)]);
    expect((await stat(archive)).mode & 0o777).toBe(0o600);
    expect(await app.state()).toBe('running');
    expect((await podHttp(pod.ip, 8080, 'POST', '/counter?value=42')).json()).toMatchObject({ counter: 42 });
  });

  it('writes CRI-O’s layout: checkpoint/ with the images, config.dump, spec.dump, bind.mounts, rootfs-diff.tar, stats-dump, dump.log, the log', async () => {
    const listing = await runCommand(['tar', '--list', '--file', archive]);
    const entries = listing.stdout.trim().split('\n');
    const top = [...new Set(entries.map((entry) => entry.replace(/\/.*$/, '/')))];
    expect(top.sort()).toEqual(['bind.mounts', 'checkpoint/', 'config.dump', 'dump.log', 'io.kubernetes.cri-o.LogPath', 'rootfs-diff.tar', 'spec.dump', 'stats-dump'].sort());
    for (const image of ['inventory.img', 'pstree.img', 'core-1.img', 'pages-1.img', 'descriptors.json']) expect(entries).toContain(`checkpoint/${image}`);

    const extract = async (file: string) => (await runCommand(['tar', '--extract', '--to-stdout', '--file', archive, file])).stdout;
    const config = JSON.parse(await extract('config.dump'));
    expect(config).toMatchObject({
      name: 'k8s_app_orders-0_shop_3f1e7c52-1111-4a4a-9c9c-0123456789ab_0',
      rootfsImage: DEFAULT_LAB_IMAGE,
      rootfsImageName: DEFAULT_LAB_IMAGE,
      runtime: 'crun',
      restoredTime: '0001-01-01T00:00:00Z',
      restored: false,
    });
    expect(config.id).toMatch(/^[0-9a-f]{64}$/);
    expect(config.rootfsImageRef).toMatch(/^[0-9a-f]{64}$/);
    expect(new Date(config.createdTime).getTime()).toBeLessThan(new Date(config.checkpointedTime).getTime());
    expect(Object.keys(config)).toEqual(['id', 'name', 'rootfsImage', 'rootfsImageRef', 'rootfsImageName', 'runtime', 'createdTime', 'checkpointedTime', 'restoredTime', 'restored']);

    const spec = JSON.parse(await extract('spec.dump'));
    expect(spec.process.args).toEqual([lab.nodeBinary, join(lab.settings.repoRoot, 'test/lab/fixtures/counter-server.ts')]);
    expect(spec.annotations).toMatchObject({
      'io.container.manager': 'cri-o',
      'io.kubernetes.pod.name': 'orders-0',
      'io.kubernetes.pod.namespace': 'shop',
      'io.kubernetes.pod.uid': '3f1e7c52-1111-4a4a-9c9c-0123456789ab',
      'io.kubernetes.container.name': 'app',
      'io.kubernetes.cri-o.IP.0': pod.ip,
    });
    expect(spec.annotations['io.kubernetes.container.hash']).toMatch(/^[0-9a-f]{8}$/);
    expect(JSON.parse(spec.annotations['io.kubernetes.cri-o.Annotations'])).toMatchObject({ 'io.kubernetes.container.hash': spec.annotations['io.kubernetes.container.hash'] });
    expect(JSON.parse(spec.annotations['io.kubernetes.cri-o.Metadata'])).toEqual({ name: 'app', attempt: 0 });

    const binds = JSON.parse(await extract('bind.mounts'));
    expect(binds).toContainEqual({ source: lab.hostPath(dir), destination: '/run/cryo', file_type: 'directory', permissions: 0o700 });
    expect(binds.map((b: { destination: string }) => b.destination)).toContain(lab.settings.repoRoot);
    expect(await extract('stats-dump')).not.toBe('');
    expect(await extract('dump.log')).toMatch(/Dumping finished successfully/);
    expect(await extract('io.kubernetes.cri-o.LogPath')).toMatch(/counter-server listening/);
    expect((await runCommand(['tar', '--list', '--file', '-'], { input: await extract('rootfs-diff.tar') })).code).toBe(0);
  });

  it('is accepted by checkpointctl show and inspect as a CRI-O checkpoint of the container', async () => {
    const show = await lab.exec(['checkpointctl', 'show', lab.hostPath(archive)]);
    console.log(`checkpointctl show:\n${show.stdout}${show.stderr}`);
    expect(show.code, show.stderr).toBe(0);
    const row = show.stdout.split('\n').find((line) => line.includes('CRI-O'));
    expect(row).toBeDefined();
    for (const cell of ['app', DEFAULT_LAB_IMAGE, 'crun', pod.ip]) expect(row).toContain(cell);

    const inspect = await lab.exec(['checkpointctl', 'inspect', '--all', lab.hostPath(archive)]);
    expect(inspect.code, inspect.stderr).toBe(0);
    for (const text of ['Engine: CRI-O', 'Pod name: orders-0', 'Kubernetes namespace: shop', 'CRIU dump statistics', 'Destination: /run/cryo', '0.0.0.0:8080']) {
      expect(inspect.stdout).toContain(text);
    }
    const json = await lab.exec(['checkpointctl', 'inspect', '--format=json', lab.hostPath(archive)]);
    expect(JSON.parse(json.stdout)).toEqual([expect.objectContaining({ container_name: 'app', engine: 'CRI-O', image: DEFAULT_LAB_IMAGE, runtime: 'crun' })]);
  });

  it('answers 500 with CRIU’s reason when the real dump fails, and writes no archive', async () => {
    const ring = await lab.runContainer({ id: 'fake-kubelet-io-uring', pod, argv: [lab.nodeBinary, '-e', 'setInterval(() => {}, 1000)'], allowIoUring: true });
    try {
      kubelet.addPod({ namespace: 'shop', name: 'ring-0', containers: { app: ring } });
      await waitFor(async () => (await readFile(`/proc/${ring.pid}/maps`, 'utf8')).includes('io_uring'), { what: 'an io_uring mapping' });
      const res = await post('/checkpoint/shop/ring-0/app?timeout=60');
      expect(res.status).toBe(500);
      expect(res.text).toMatch(/^checkpointing of shop\/ring-0\/app failed \(rpc error: code = Unknown desc = failed to checkpoint container fake-kubelet-io-uring: running "crun checkpoint" failed: .*io_uring/);
      expect((await readdir(kubelet.checkpointsDir)).filter((f) => f.includes('ring-0'))).toEqual([]);
      expect(await ring.state()).toBe('running');
    } finally {
      await ring.remove();
    }
  });
});
