/**
 * KubeletClient against the fake kubelet (test/src/fakes/kubelet.ts): every failure the kubelet
 * can answer, and the ones it cannot (no answer, no server, the wrong certificate), give a
 * KubeletError naming the fix; in the CRIU lab a real Node container is checkpointed through
 * client → fake kubelet → crun → CRIU into an archive checkpointctl accepts.
 */
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { once } from 'node:events';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it, onTestFailed } from 'vitest';
import { createCertificateAuthority } from '@cryo/common';
import type { Lab, LabContainer, LabPod } from '@cryo/test';
import { captureLogger, FakeKubelet, openLab, podHttp, stubLabContainer, waitFor, writeProjectedVolume, rejectionOf } from '@cryo/test';
import { KubeletClient, KubeletError, type KubeletClientOptions } from './kubelet-client.ts';

const TOKEN = 'node-agent-token-1';
const RBAC_FIX = "the node agent's service account lacks nodes/checkpoint create: apply manifests/node-agent-rbac.yaml";

describe('KubeletClient against the kubelet’s answers', () => {
  let dir: string;
  let tokenDir: string;
  let kubelet: FakeKubelet;
  const client = (options: Partial<KubeletClientOptions> = {}) =>
    new KubeletClient({ baseUrl: kubelet.url, tokenFile: join(tokenDir, 'token'), caFile: join(dir, 'kubelet-ca.crt'), timeoutMarginSeconds: 0.5, logger: captureLogger().logger, ...options });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cryo-kubelet-client-'));
    tokenDir = join(dir, 'serviceaccount');
    await writeProjectedVolume(tokenDir, { token: `${TOKEN}\n` });
    kubelet = await FakeKubelet.start({ checkpointsDir: join(dir, 'checkpoints'), token: TOKEN, forbiddenTokens: ['other-token'] });
    await writeFile(join(dir, 'kubelet-ca.crt'), kubelet.caPem);
    kubelet.addPod({
      namespace: 'shop',
      name: 'orders-0',
      containers: {
        // Its id, stub-app, is what the runtime's error below quotes.
        app: stubLabContainer('running', () => Promise.resolve({ ok: false, durationMs: 3, log: '(00.02) Error (criu/sk-inet.c:191): inet: Connected TCP socket, consider using --tcp-established option.\ncrun: checkpoint failed' }), 'stub-app'),
      },
    });
  });
  beforeEach(() => {
    kubelet.token = TOKEN;
    kubelet.requests.splice(0);
  });
  afterAll(async () => {
    await kubelet.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('POSTs the encoded path with ?timeout= and the bearer token, one connection per call', async () => {
    const connections = kubelet.connections;
    await rejectionOf(client().checkpoint('shop', 'orders-9', 'app', { timeoutSeconds: 45 }), KubeletError);
    await rejectionOf(client().checkpoint('shop', 'we/ird pod', 'app', { timeoutSeconds: 45 }), KubeletError);
    expect(kubelet.requests.map((r) => [r.method, r.path, r.query.get('timeout'), r.token])).toEqual([
      ['POST', '/checkpoint/shop/orders-9/app', '45', TOKEN],
      ['POST', '/checkpoint/shop/we%2Fird%20pod/app', '45', TOKEN],
    ]);
    // The encoded slash reached the kubelet as part of one segment: pod lookup, not a path 404.
    expect(kubelet.requests[1].status).toBe(404);
    expect(kubelet.connections - connections).toBe(2);
  });

  it('401: names the token file and the RBAC fix', async () => {
    kubelet.token = 'a-token-the-agent-does-not-have';
    const error = await rejectionOf(client().checkpoint('shop', 'orders-0', 'app', { timeoutSeconds: 30 }), KubeletError);
    expect(error).toMatchObject({ kind: 'unauthorized', status: 401, body: 'Unauthorized', retriable: false });
    expect(error.message).toContain(join(tokenDir, 'token'));
    expect(error.message).toContain(RBAC_FIX);
  });

  it('403: quotes the kubelet’s Forbidden and names the RBAC fix', async () => {
    await writeProjectedVolume(tokenDir, { token: 'other-token' });
    try {
      const error = await rejectionOf(client().checkpoint('shop', 'orders-0', 'app', { timeoutSeconds: 30 }), KubeletError);
      expect(error).toMatchObject({ kind: 'forbidden', status: 403 });
      expect(error.message).toBe(
        `the kubelet refused to checkpoint shop/orders-0/app (403: Forbidden (user=system:serviceaccount:cryo-system:cryo-node-agent, verb=create, resource=nodes, subresource=checkpoint)): ${RBAC_FIX}`,
      );
    } finally {
      await writeProjectedVolume(tokenDir, { token: TOKEN });
    }
  });

  it('404: unknown pod or container, or the feature gate', async () => {
    for (const [pod, container, said] of [
      ['orders-9', 'app', 'pod does not exist'],
      ['orders-0', 'sidecar', 'container sidecar does not exist'],
    ]) {
      const error = await rejectionOf(client().checkpoint('shop', pod, container, { timeoutSeconds: 30 }), KubeletError);
      expect(error).toMatchObject({ kind: 'not-found', status: 404, body: said });
      expect(error.message).toBe(`the kubelet cannot checkpoint shop/${pod}/${container} (404: ${said}): pod or container unknown to the kubelet, or the ContainerCheckpoint feature gate is off`);
    }
  });

  it('500: passes on the runtime’s message', async () => {
    const error = await rejectionOf(client().checkpoint('shop', 'orders-0', 'app', { timeoutSeconds: 30 }), KubeletError);
    expect(error).toMatchObject({ kind: 'runtime', status: 500, retriable: true });
    expect(error.message).toBe(
      'the container runtime failed to checkpoint: checkpointing of shop/orders-0/app failed (rpc error: code = Unknown desc = failed to checkpoint container stub-app: ' +
        'running "crun checkpoint" failed: checkpoint failed; (00.02) Error (criu/sk-inet.c:191): inet: Connected TCP socket, consider using --tcp-established option.)',
    );
  });

  it("500 from containerd: adds CRIU's error lines from the dump log it names inside --criu-log-dirs", async () => {
    // containerd through runc names the log and leaves CRIU's words out of the message.
    const taskDir = join(dir, 'io.containerd.runtime.v2.task', 'k8s.io');
    const logPath = join(taskDir, 'f24ba3c0ffee', 'criu-dump.log');
    const outsideLogPath = join(dir, 'elsewhere', 'criu-dump.log');
    const log =
      '(00.000100) Version: 4.2 (gitid 0)\n' +
      '(00.123456) Error (criu/sk-inet.c:191): inet: Connected TCP socket, consider using --tcp-established option.\n' +
      '(00.123470) Error (criu/cr-dump.c:2062): Dumping FAILED.\n';
    for (const path of [logPath, outsideLogPath]) {
      await mkdir(dirname(path), { recursive: true });
      await writeFile(path, log);
    }
    const body =
      'checkpointing of shop/orders-0/app failed (rpc error: code = Unknown desc = checkpointing container "f24ba3c0ffee" failed: ' +
      `runc did not terminate successfully: exit status 1: criu failed: type DUMP errno 0 path= ${logPath})`;
    kubelet.failNext({ status: 500, body });
    const error = await rejectionOf(client({ criuLogDirs: ['/nonexistent', taskDir] }).checkpoint('shop', 'orders-0', 'app', { timeoutSeconds: 30 }), KubeletError);
    expect(error).toMatchObject({ kind: 'runtime', status: 500, body, retriable: true });
    expect(error.message).toBe(
      `the container runtime failed to checkpoint: ${body}; CRIU said: ` +
        'Error (criu/sk-inet.c:191): inet: Connected TCP socket, consider using --tcp-established option.; Error (criu/cr-dump.c:2062): Dumping FAILED.',
    );
    // The same answer without the directory allowed, or naming a log outside it: the runtime's words only.
    for (const [criuLogDirs, answer] of [
      [[], body],
      [[taskDir], body.replace(logPath, outsideLogPath)],
    ] as const) {
      kubelet.failNext({ status: 500, body: answer });
      const plain = await rejectionOf(client({ criuLogDirs }).checkpoint('shop', 'orders-0', 'app', { timeoutSeconds: 30 }), KubeletError);
      expect(plain.message).toBe(`the container runtime failed to checkpoint: ${answer}`);
    }
  });

  it('any other answer, and a 200 without an archive path, are unexpected', async () => {
    kubelet.failNext({ status: 502, body: 'Bad Gateway' });
    const gateway = await rejectionOf(client().checkpoint('shop', 'orders-0', 'app', { timeoutSeconds: 30 }), KubeletError);
    expect(gateway).toMatchObject({ kind: 'unexpected', status: 502 });
    expect(gateway.message).toBe(`unexpected answer 502 from the kubelet at ${kubelet.url} to the checkpoint of shop/orders-0/app: Bad Gateway`);
    for (const body of ['{}', '{"items":[]}', 'not json']) {
      kubelet.failNext({ status: 200, body });
      const error = await rejectionOf(client().checkpoint('shop', 'orders-0', 'app', { timeoutSeconds: 30 }), KubeletError);
      expect(error).toMatchObject({ kind: 'unexpected', status: 200 });
      expect(error.message).toContain('expected {"items":["<path>"]}');
    }
  });

  it('returns the archive path of a 200 with the duration', async () => {
    kubelet.failNext({ status: 200, body: '{"items":["/var/lib/kubelet/checkpoints/checkpoint-orders-0_shop-app-2026-01-01T00:00:00Z.tar"]}', delayMs: 100 });
    const result = await client().checkpoint('shop', 'orders-0', 'app', { timeoutSeconds: 30 });
    expect(result.archivePath).toBe('/var/lib/kubelet/checkpoints/checkpoint-orders-0_shop-app-2026-01-01T00:00:00Z.tar');
    expect(result.durationMs).toBeGreaterThanOrEqual(95);
  });

  it('gives up after timeout + margin when the kubelet does not answer', async () => {
    kubelet.failNext({ hang: true });
    const started = performance.now();
    const error = await rejectionOf(client({ timeoutMarginSeconds: 0.3 }).checkpoint('shop', 'orders-0', 'app', { timeoutSeconds: 1 }), KubeletError);
    const elapsed = performance.now() - started;
    expect(error).toMatchObject({ kind: 'timeout', status: undefined, retriable: true });
    expect(error.message).toMatch(/^the kubelet at https:\/\/127\.0\.0\.1:\d+ did not answer the checkpoint within 1\.3 s \(timeout 1 s \+ margin\): the dump may still be running/);
    expect(elapsed).toBeGreaterThanOrEqual(1290);
    expect(elapsed).toBeLessThan(2500);
    expect(kubelet.requests.at(-1)!.query.get('timeout')).toBe('1');
  });

  it('stops when the signal aborts, before or during the call', async () => {
    const early = new AbortController();
    early.abort(new Error('shutting down'));
    const before = await rejectionOf(client().checkpoint('shop', 'orders-0', 'app', { timeoutSeconds: 30, signal: early.signal }), KubeletError);
    expect(before).toMatchObject({ kind: 'aborted', message: `the checkpoint request to the kubelet at ${kubelet.url} was aborted: shutting down` });
    expect(kubelet.requests).toEqual([]);
    kubelet.failNext({ hang: true });
    const late = new AbortController();
    setTimeout(() => late.abort(), 100);
    const error = await rejectionOf(client().checkpoint('shop', 'orders-0', 'app', { timeoutSeconds: 30, signal: late.signal }), KubeletError);
    expect(error.kind).toBe('aborted');
  });

  it('reads the token file again on every call (the kubelet rotates projected tokens)', async () => {
    const c = client();
    await rejectionOf(c.checkpoint('shop', 'orders-9', 'app', { timeoutSeconds: 30 }), KubeletError);
    await writeProjectedVolume(tokenDir, { token: 'node-agent-token-2\n' });
    kubelet.token = 'node-agent-token-2';
    try {
      // 404 (pod unknown), not 401: the rotated token passed authentication.
      expect((await rejectionOf(c.checkpoint('shop', 'orders-9', 'app', { timeoutSeconds: 30 }), KubeletError)).status).toBe(404);
      expect(kubelet.requests.map((r) => [r.token, r.status])).toEqual([
        [TOKEN, 404],
        ['node-agent-token-2', 404],
      ]);
    } finally {
      await writeProjectedVolume(tokenDir, { token: TOKEN });
    }
  });

  it('fails TLS against a CA that did not sign the kubelet’s certificate, naming the CA file', async () => {
    const stranger = await createCertificateAuthority({ commonName: 'someone-else' });
    await writeFile(join(dir, 'wrong-ca.crt'), stranger.cert);
    const error = await rejectionOf(client({ caFile: join(dir, 'wrong-ca.crt') }).checkpoint('shop', 'orders-0', 'app', { timeoutSeconds: 30 }), KubeletError);
    expect(error.kind).toBe('tls');
    expect(error.message).toBe(
      `the kubelet's certificate at ${kubelet.url} is not signed by the CA in ${join(dir, 'wrong-ca.crt')} (UNABLE_TO_VERIFY_LEAF_SIGNATURE): ` +
        "point the kubelet CA file at the CA that signed the kubelet's serving certificate",
    );
    expect(kubelet.requests).toEqual([]);
  });

  it('without a CA file trusts only the system CAs, unless told to skip verification', async () => {
    const error = await rejectionOf(client({ caFile: undefined }).checkpoint('shop', 'orders-0', 'app', { timeoutSeconds: 30 }), KubeletError);
    expect(error.kind).toBe('tls');
    expect(error.message).toContain('is not signed by the system CAs');
    const insecure = await rejectionOf(client({ caFile: undefined, insecureSkipTlsVerify: true }).checkpoint('shop', 'orders-9', 'app', { timeoutSeconds: 30 }), KubeletError);
    expect(insecure.status).toBe(404);
  });

  it('names the kubelet URL when nothing listens there', async () => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const error = await rejectionOf(client({ baseUrl: `https://127.0.0.1:${port}` }).checkpoint('shop', 'orders-0', 'app', { timeoutSeconds: 30 }), KubeletError);
    expect(error).toMatchObject({ kind: 'unreachable', retriable: true });
    expect(error.message).toBe(`cannot reach the kubelet at https://127.0.0.1:${port} (ECONNREFUSED): check that the kubelet URL is this node's InternalIP and port 10250 and that the kubelet runs`);
  });

  it('names a missing token or CA file before calling', async () => {
    const noToken = await rejectionOf(client({ tokenFile: join(dir, 'absent') }).checkpoint('shop', 'orders-0', 'app', { timeoutSeconds: 30 }), KubeletError);
    expect(noToken.message).toBe(`cannot read the service-account token ${join(dir, 'absent')} (ENOENT): mount the projected service-account token there`);
    await writeFile(join(dir, 'empty-token'), '\n');
    expect((await rejectionOf(client({ tokenFile: join(dir, 'empty-token') }).checkpoint('shop', 'orders-0', 'app', { timeoutSeconds: 30 }), KubeletError)).message).toContain('is empty');
    const noCa = await rejectionOf(client({ caFile: join(dir, 'absent.crt') }).checkpoint('shop', 'orders-0', 'app', { timeoutSeconds: 30 }), KubeletError);
    expect(noCa).toMatchObject({ kind: 'local' });
    expect(noCa.message).toContain(`cannot read the kubelet CA file ${join(dir, 'absent.crt')} (ENOENT)`);
    expect(kubelet.requests).toEqual([]);
  });

  it('refuses a bad configuration and a timeout the kubelet cannot parse', async () => {
    expect(() => client({ baseUrl: 'http://127.0.0.1:10250' })).toThrow('must be https');
    expect(() => client({ baseUrl: 'kubelet' })).toThrow('is not a URL');
    expect(() => client({ insecureSkipTlsVerify: true })).toThrow('not both');
    for (const timeoutSeconds of [0, 1.5, -3, Number.NaN]) {
      await expect(client().checkpoint('shop', 'orders-0', 'app', { timeoutSeconds })).rejects.toThrow('whole number of seconds');
    }
  });
});

const opened = await openLab();
const skip = 'skip' in opened ? opened.skip : undefined;

describe.skipIf(skip !== undefined)(`KubeletClient → fake kubelet → CRIU${skip === undefined ? '' : ` (skipped: ${skip})`}`, () => {
  const lab = opened as Lab;
  let dir: string;
  let pod: LabPod;
  let app: LabContainer;
  let kubelet: FakeKubelet;
  let client: KubeletClient;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cryo-kubelet-client-lab-'));
    pod = await lab.createPod('kubelet-client-a');
    app = await lab.runContainer({
      id: 'kubelet-client-app',
      pod,
      argv: [lab.nodeBinary, join(lab.settings.repoRoot, 'test/lab/fixtures/counter-server.ts')],
      mounts: [{ source: dir, destination: '/run/cryo' }],
    });
    kubelet = await FakeKubelet.start({ checkpointsDir: join(dir, 'checkpoints'), token: TOKEN, pods: [{ namespace: 'shop', name: 'orders-0', containers: { app } }] });
    await writeFile(join(dir, 'token'), TOKEN);
    await writeFile(join(dir, 'ca.crt'), kubelet.caPem);
    client = new KubeletClient({ baseUrl: kubelet.url, tokenFile: join(dir, 'token'), caFile: join(dir, 'ca.crt'), logger: captureLogger().logger });
    await waitFor(() => podHttp(pod.ip, 8080, 'GET', '/state').catch(() => undefined), { timeoutMs: 15_000, what: 'the counter server' });
  });
  afterAll(async () => {
    await kubelet?.close();
    await lab.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('checkpoints a running Node container into an archive checkpointctl accepts, and the container keeps running', async () => {
    onTestFailed(async () => console.log(`--- ${app.id} output:\n${await app.output()}`));
    await podHttp(pod.ip, 8080, 'POST', '/counter?value=7');
    const result = await client.checkpoint('shop', 'orders-0', 'app', { timeoutSeconds: 60 });
    console.log(`kubelet checkpoint through the client: ${result.durationMs.toFixed(0)} ms, ${result.archivePath}`);
    expect(result.archivePath).toMatch(new RegExp(`^${kubelet.checkpointsDir}/checkpoint-orders-0_shop-app-\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ\\.tar$`));
    const info = await stat(result.archivePath);
    expect(info.mode & 0o777).toBe(0o600);
    expect(info.size).toBeGreaterThan(1024 * 1024);
    expect(result.durationMs).toBeGreaterThan(0);

    const show = await lab.exec(['checkpointctl', 'show', lab.hostPath(result.archivePath)]);
    expect(show.code, show.stderr).toBe(0);
    expect(show.stdout).toMatch(/\| app +\| localhost\/cryo-lab-rootfs:1 .*\| crun +\| .*\| CRI-O +\|/);

    expect(await app.state()).toBe('running');
    expect((await podHttp(pod.ip, 8080, 'GET', '/state')).json()).toMatchObject({ counter: 7 });
  });

  it('gives the runtime’s reason when CRIU cannot dump the container', async () => {
    const accepted: net.Socket[] = [];
    const held = net.createServer((socket) => accepted.push(socket));
    held.listen(0, lab.hostAddress);
    await once(held, 'listening');
    try {
      const port = (held.address() as net.AddressInfo).port;
      expect((await podHttp(pod.ip, 8080, 'POST', `/connect?host=${lab.hostAddress}&port=${port}`)).json()).toMatchObject({ connected: true });
      const error = await rejectionOf(client.checkpoint('shop', 'orders-0', 'app', { timeoutSeconds: 60 }), KubeletError);
      expect(error).toMatchObject({ kind: 'runtime', status: 500 });
      expect(error.message).toMatch(/^the container runtime failed to checkpoint: checkpointing of shop\/orders-0\/app failed \(.*Connected TCP socket/);
      expect(await app.state()).toBe('running');
    } finally {
      await podHttp(pod.ip, 8080, 'POST', '/disconnect');
      for (const socket of accepted) socket.destroy();
      held.close();
    }
  });
});
