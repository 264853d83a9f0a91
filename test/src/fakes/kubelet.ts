/**
 * A stand-in for the kubelet's checkpoint API that really checkpoints: lab containers (crun +
 * CRIU, test/src/harness/lab) play the pods' containers, and a request dumps one with
 * `crun checkpoint --leave-running` as CRI-O does, then writes CRI-O's archive where the kubelet
 * says it is. Served over HTTPS on 127.0.0.1 with a certificate from a CA of its own (`caPem`).
 *
 * What it answers, as kubelet 1.30+ (pkg/kubelet/server/server.go) with go-restful does:
 *   - 401 `Unauthorized` without a bearer token or with an unknown one (before anything else);
 *     403 `Forbidden (user=…, verb=create, resource=nodes, subresource=checkpoint)` for a token
 *     that authenticates but may not create nodes/checkpoint (`forbiddenTokens`);
 *   - 404 `404: Page Not Found` for other paths, 405 `405: Method Not Allowed` for other methods;
 *   - 404 `pod does not exist`, `container <name> does not exist`, `cannot parse value of timeout parameter`;
 *   - 500 `checkpointing of <ns>/<pod>/<container> failed (<error>)`: a negative timeout, a
 *     container that is not running, the dump failing (CRIU's errors and crun's message), or the
 *     CRI deadline passing (max(timeout, the CRI default of 2 minutes), as the kubelet computes it);
 *   - 200 `{"items":["<checkpointsDir>/checkpoint-<pod>_<ns>-<container>-<RFC 3339>.tar"]}`.
 *
 * Tests inject faults (`failNext`: a status and body, a delay, or no answer at all) and read
 * every request back (`requests`).
 */
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createCertificateAuthority, issueServingCertificate } from '@cryo/common';
import type { LabContainer } from '../harness/lab/lab-container.ts';
import { kubeletArchiveName, writeCrioCheckpointArchive } from './crio-checkpoint-archive.ts';

export interface FakeKubeletPod {
  namespace: string;
  name: string;
  /** metadata.uid; random when absent. */
  uid?: string;
  /** The pod's containers by name, each played by a lab container. */
  containers: Record<string, LabContainer>;
  /** The image of each container (config.dump rootfsImageName); DEFAULT_LAB_IMAGE when absent. */
  images?: Record<string, string>;
}

/**
 * A container the fake kubelet can answer for without the lab: its state is fixed and its
 * checkpoint is what the test says (by default it cannot dump). For the kubelet's paths and
 * errors; the real dumps use lab containers.
 */
export function stubLabContainer(state: string, checkpoint?: LabContainer['checkpoint'], id = 'stub'): LabContainer {
  return {
    id,
    state: () => Promise.resolve(state),
    checkpoint: checkpoint ?? (() => Promise.reject(new Error('the stub cannot dump'))),
  } as Partial<LabContainer> as LabContainer;
}

export interface FakeKubeletOptions {
  /** Where archives go: the kubelet's `<root dir>/checkpoints` (created). */
  checkpointsDir: string;
  /** The bearer token allowed to checkpoint. */
  token: string;
  /** Tokens that authenticate but lack nodes/checkpoint create (403). */
  forbiddenTokens?: string[];
  pods?: FakeKubeletPod[];
  /** The kubelet's --runtime-request-timeout, the least CRI deadline a checkpoint gets (default 120 s). */
  criTimeoutSeconds?: number;
}

export interface FakeKubeletFault {
  /** Answer this status (and `body`) instead of handling the request. */
  status?: number;
  body?: string;
  /** Wait this long first (then answer `status`, or handle the request normally without one). */
  delayMs?: number;
  /** Never answer (until the client gives up or the fake closes). */
  hang?: boolean;
  /** How many requests this fault takes (default 1). */
  times?: number;
}

export interface FakeKubeletRequest {
  method: string;
  /** The raw URL path (still percent-encoded), without the query. */
  path: string;
  query: URLSearchParams;
  /** Whether an Authorization header came at all. */
  authorization: boolean;
  /** The bearer token sent, if any. */
  token?: string;
  /** The status answered; 0 while unanswered (or never, for a hang). */
  status: number;
}

/** What lab containers are "started from" in config.dump: the lab's Debian root. */
export const DEFAULT_LAB_IMAGE = 'localhost/cryo-lab-rootfs:1';
/** The kubelet's default --runtime-request-timeout. */
const CRI_DEFAULT_TIMEOUT_SECONDS = 120;

class HttpAnswer {
  readonly status: number;
  readonly body: string;
  readonly contentType: string;
  constructor(status: number, body: string, contentType = 'text/plain; charset=utf-8') {
    this.status = status;
    this.body = body;
    this.contentType = contentType;
  }
}

export class FakeKubelet {
  readonly url: string;
  readonly port: number;
  /** PEM of the CA that signed the serving certificate (for 127.0.0.1 and localhost). */
  readonly caPem: string;
  /** The token allowed to checkpoint; set it to rotate. */
  token: string;
  readonly forbiddenTokens: Set<string>;
  readonly checkpointsDir: string;
  readonly requests: FakeKubeletRequest[] = [];
  /** TLS connections accepted so far (a client without keep-alive makes one per request). */
  connections = 0;
  private readonly server: Server;
  private readonly pods = new Map<string, { pod: FakeKubeletPod; uid: string }>();
  private readonly faults: { fault: FakeKubeletFault; left: number }[] = [];
  private readonly criTimeoutSeconds: number;
  private readonly background = new Set<Promise<unknown>>();
  private readonly timers = new Set<NodeJS.Timeout>();

  private constructor(server: Server, caPem: string, options: FakeKubeletOptions) {
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
    this.url = `https://127.0.0.1:${this.port}`;
    this.caPem = caPem;
    this.token = options.token;
    this.forbiddenTokens = new Set(options.forbiddenTokens ?? []);
    this.checkpointsDir = options.checkpointsDir;
    this.criTimeoutSeconds = options.criTimeoutSeconds ?? CRI_DEFAULT_TIMEOUT_SECONDS;
    for (const pod of options.pods ?? []) this.addPod(pod);
    server.on('secureConnection', () => this.connections++);
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      this.handle(req, res).catch((error: unknown) => {
        // A bug of the fake, not kubelet behaviour: say so loudly.
        if (!res.headersSent) this.answer(res, undefined, new HttpAnswer(500, `fake kubelet failed: ${(error as Error).stack ?? String(error)}`));
      });
    });
  }

  static async start(options: FakeKubeletOptions): Promise<FakeKubelet> {
    await mkdir(options.checkpointsDir, { recursive: true });
    const ca = await createCertificateAuthority({ commonName: 'cryo-fake-kubelet-ca', validitySeconds: 86400 });
    const serving = await issueServingCertificate(ca, { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], validitySeconds: 86400 });
    const server = createServer({ cert: serving.cert, key: serving.key });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return new FakeKubelet(server, ca.cert, options);
  }

  addPod(pod: FakeKubeletPod): void {
    this.pods.set(`${pod.namespace}/${pod.name}`, { pod, uid: pod.uid ?? randomUUID() });
  }

  removePod(namespace: string, name: string): void {
    this.pods.delete(`${namespace}/${name}`);
  }

  /** The uid the fake gives the pod (spec.dump io.kubernetes.pod.uid). */
  podUid(namespace: string, name: string): string | undefined {
    return this.pods.get(`${namespace}/${name}`)?.uid;
  }

  /** Queues a fault for the next requests, whatever they are. */
  failNext(fault: FakeKubeletFault): void {
    this.faults.push({ fault, left: fault.times ?? 1 });
  }

  /** Stops serving; hanging requests are cut, dumps still running are awaited. */
  async close(): Promise<void> {
    for (const timer of this.timers) clearTimeout(timer);
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await Promise.allSettled([...this.background]);
  }

  private takeFault(): FakeKubeletFault | undefined {
    const next = this.faults[0];
    if (next === undefined) return undefined;
    if (--next.left <= 0) this.faults.shift();
    return next.fault;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        resolve();
      }, ms);
      this.timers.add(timer);
    });
  }

  private answer(res: ServerResponse, record: FakeKubeletRequest | undefined, answer: HttpAnswer): void {
    if (record) record.status = answer.status;
    if (res.destroyed) return;
    res.writeHead(answer.status, { 'content-type': answer.contentType, 'content-length': Buffer.byteLength(answer.body) });
    res.end(answer.body);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'https://kubelet');
    const authorization = req.headers.authorization;
    const token = /^Bearer (.+)$/i.exec(authorization ?? '')?.[1];
    const record: FakeKubeletRequest = { method: req.method ?? '', path: url.pathname, query: url.searchParams, authorization: authorization !== undefined, token, status: 0 };
    this.requests.push(record);
    req.resume(); // the kubelet ignores a body

    const fault = this.takeFault();
    if (fault?.hang) return;
    if (fault?.delayMs) await this.sleep(fault.delayMs);
    if (fault?.status !== undefined) return this.answer(res, record, new HttpAnswer(fault.status, fault.body ?? ''));
    this.answer(res, record, await this.route(req.method ?? '', url, token));
  }

  private async route(method: string, url: URL, token: string | undefined): Promise<HttpAnswer> {
    // The kubelet's auth filter is a go-restful container filter: it runs before routing, so an
    // unauthenticated caller learns nothing about paths or methods.
    if (token === undefined || (token !== this.token && !this.forbiddenTokens.has(token))) return new HttpAnswer(401, 'Unauthorized');
    if (token !== this.token) {
      const verb = method === 'POST' ? 'create' : method.toLowerCase();
      return new HttpAnswer(403, `Forbidden (user=system:serviceaccount:cryo-system:cryo-node-agent, verb=${verb}, resource=nodes, subresource=checkpoint)`);
    }
    const segments = url.pathname.split('/').slice(1);
    if (segments.length !== 4 || segments[0] !== 'checkpoint' || segments.slice(1).some((s) => s === '')) return new HttpAnswer(404, '404: Page Not Found');
    if (method !== 'POST') return new HttpAnswer(405, '405: Method Not Allowed');
    const [namespace, podName, containerName] = segments.slice(1).map(decodeURIComponent);

    const entry = this.pods.get(`${namespace}/${podName}`);
    if (entry === undefined) return new HttpAnswer(404, 'pod does not exist');
    const lab = entry.pod.containers[containerName];
    if (lab === undefined) return new HttpAnswer(404, `container ${containerName} does not exist`);
    const timeouts = url.searchParams.getAll('timeout');
    let timeoutSeconds = 0;
    if (timeouts.length > 0) {
      // Go's strconv.ParseInt of the last value.
      const raw = timeouts[timeouts.length - 1];
      if (!/^[+-]?\d+$/.test(raw)) return new HttpAnswer(404, 'cannot parse value of timeout parameter');
      timeoutSeconds = Number(raw);
    }
    const failed = (why: string) => new HttpAnswer(500, `checkpointing of ${namespace}/${podName}/${containerName} failed (${why})`);
    if (timeoutSeconds < 0) return failed('CheckpointContainer requires the timeout value to be > 0');
    // The kubelet only finds running containers of the pod.
    if ((await lab.state()) !== 'running') return failed(`container ${containerName} not found`);

    const at = new Date();
    const archivePath = join(this.checkpointsDir, kubeletArchiveName(namespace, podName, containerName, at));
    const dump = this.dump({ namespace, pod: podName, podUid: entry.uid, container: containerName, lab, image: entry.pod.images?.[containerName] ?? DEFAULT_LAB_IMAGE }, archivePath, at);
    // The CRI deadline: the runtime keeps dumping after it (as CRI-O does), only the answer changes.
    const deadlineMs = Math.max(timeoutSeconds, this.criTimeoutSeconds) * 1000;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'deadline'>((resolve) => (timer = setTimeout(() => resolve('deadline'), deadlineMs)));
    const outcome = await Promise.race([dump, deadline]).finally(() => clearTimeout(timer));
    if (outcome === 'deadline') return failed('rpc error: code = DeadlineExceeded desc = context deadline exceeded');
    if (outcome !== undefined) return failed(`rpc error: code = Unknown desc = failed to checkpoint container ${lab.id}: ${outcome}`);
    return new HttpAnswer(200, JSON.stringify({ items: [archivePath] }), 'application/json');
  }

  /** Dumps and archives; resolves to undefined, or to the runtime's error message. */
  private dump(c: Parameters<typeof writeCrioCheckpointArchive>[0], archivePath: string, at: Date): Promise<string | undefined> {
    const run = async (): Promise<string | undefined> => {
      const workDir = await mkdtemp(join(tmpdir(), 'cryo-fake-kubelet-'));
      try {
        const result = await c.lab.checkpoint({ imageDir: join(workDir, 'checkpoint'), leaveRunning: true });
        if (!result.ok) return `running "crun checkpoint" failed: ${runtimeMessage(result.log)}`;
        await writeCrioCheckpointArchive(c, workDir, archivePath, at);
        return undefined;
      } finally {
        await rm(workDir, { recursive: true, force: true });
      }
    };
    const promise = run();
    this.background.add(promise);
    void promise.catch(() => {}).finally(() => this.background.delete(promise));
    return promise;
  }
}

/** CRIU's error lines and crun's message from a failed checkpoint's log, as one line each. */
function runtimeMessage(log: string): string {
  const lines = log.split('\n');
  const errors = lines.filter((line) => line.includes('Error (') && !line.includes('RLIMIT_NOFILE'));
  const crun = lines.filter((line) => line.startsWith('crun: '));
  return [...crun.map((line) => line.slice('crun: '.length)), ...errors.map((line) => line.trim())].join('; ') || log.trim().split('\n').slice(-3).join('; ');
}
