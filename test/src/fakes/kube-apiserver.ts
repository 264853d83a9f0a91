/**
 * The one fake kube-apiserver of Cryo's tests. No real apiserver runs in CI, so components are
 * tested with the real @kubernetes/client-node against this fake at the HTTP boundary: HTTPS
 * with a generated CA, bearer-token auth, the real paths, status codes, Status error bodies and
 * streaming watches (resume by resourceVersion, 410 Expired after compaction, timeoutSeconds).
 * Tests set up and inspect state directly (put/get/list/remove), see every request made, and
 * inject faults (dropped watches, compaction, error responses) to exercise recovery paths.
 *
 * Deliberate simplifications: no admission (but a hook for a test's own, `admission`), no RBAC
 * (kube-apiserver-rbac.ts checks the recorded requests against a component's roles afterwards), no
 * schema validation and little defaulting (Secret stringData/type, pod and namespace phase); decoding is checked only where the real
 * apiserver refused what the fake took (an Event's eventTime must be a MicroTime: six fractional
 * digits, else 400); namespaces need not exist; pods delete at
 * once (no graceful deletion, but finalizers hold any object); an eviction deletes the pod
 * (no PodDisruptionBudgets: inject their 429); strategic merge patch is a plain
 * merge patch; server-side apply, limit/continue paging and list resourceVersion semantics are
 * not implemented (lists always answer the latest state).
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { apiVersionOf, RESOURCES, type KubeObject, type KubeObjectInput, type ResourceType } from './kube-apiserver-resources.ts';
import { parseFieldSelector, parseLabelSelector, SelectorError } from './kube-apiserver-selectors.ts';
import { ApiError, deletedStatus, methodNotAllowed, notFound, UNAUTHORIZED, unknownPath } from './kube-apiserver-status.ts';
import { ResourceStore, type DeleteOptions, type ObjectFilter, type Subresource, type WatchEventType } from './kube-apiserver-store.ts';
import { servingCertificates } from './kube-apiserver-tls.ts';

export type { KubeObject, KubeObjectInput, ObjectMeta, ResourceType } from './kube-apiserver-resources.ts';
export { apiVersionOf, RESOURCES } from './kube-apiserver-resources.ts';
export type { StatusBody } from './kube-apiserver-status.ts';
export { ApiError } from './kube-apiserver-status.ts';

export interface RecordedRequest {
  method: string;
  /** The URL path, without the query. */
  path: string;
  query: URLSearchParams;
  contentType?: string;
  /** The body parsed as JSON, or the raw text when it is not JSON. */
  body?: unknown;
  /** The answer's status: 200 for a watch (whatever ends it later), 0 while not yet answered. */
  status: number;
}

export interface FailureInjection {
  /** Only requests with this method (any when absent). */
  method?: string;
  /** Only requests whose path starts with this (any when absent). */
  pathPrefix?: string;
  /** Only watch requests (true) or only non-watch requests (false); both when absent. */
  watch?: boolean;
  status: number;
  /** How many matching requests fail; 1 when absent. */
  times?: number;
  message?: string;
  /** The Status reason; the usual one for the code when absent (503 → ServiceUnavailable...). */
  reason?: string;
  /** Sent as Retry-After and details.retryAfterSeconds, as the apiserver does for 429. */
  retryAfterSeconds?: number;
}

/** What FakeKubeApiServer.admission is asked about. */
export interface AdmissionRequest {
  resource: ResourceType;
  namespace: string | undefined;
  object: KubeObject;
}

export interface FakeKubeApiServerOptions {
  /** The bearer token clients must send; random when absent. */
  token?: string;
  /** Resources to serve beyond the built-in table (RESOURCES). */
  resources?: readonly ResourceType[];
}

export interface CloseWatchesOptions {
  /**
   * Destroy the connections instead of ending the streams cleanly. client-node sees a clean end
   * as "reconnect from the last resourceVersion" but a reset as an error, which stops an informer.
   */
  abrupt?: boolean;
}

interface Target {
  resource: ResourceType;
  /** The path's namespace; absent for cluster-scoped resources and all-namespaces paths. */
  namespace: string | undefined;
  name: string | undefined;
  subresource: Subresource | 'eviction';
  /** `/api/v1/pods`: a namespaced resource across all namespaces (list and watch only). */
  allNamespaces: boolean;
}

interface OpenWatch {
  res: ServerResponse;
  resource: ResourceType;
  bookmarks: boolean;
  send: (type: WatchEventType, object: unknown) => void;
  unsubscribe: () => void;
  timer: NodeJS.Timeout | undefined;
}

interface WatchWaiter {
  count: number;
  resolve: () => void;
  reject: (err: Error) => void;
}

interface PendingFailure extends FailureInjection {
  remaining: number;
}

const CONTEXT_NAME = 'fake-kube-apiserver';

export class FakeKubeApiServer {
  readonly url: string;
  readonly caPem: string;
  readonly token: string;
  /** Every request in arrival order; see clearRequests(). */
  readonly requests: RecordedRequest[] = [];
  private readonly server: Server;
  private readonly store: ResourceStore;
  private readonly watches = new Set<OpenWatch>();
  private readonly watchWaiters = new Set<WatchWaiter>();
  private readonly failures: PendingFailure[] = [];
  private stopped: Promise<void> | undefined;
  /**
   * Mutating admission of creates (POST of a new object), as a webhook does it: the body in, the
   * object to create out; throw an ApiError to refuse. Tests set it to plug a webhook in.
   */
  admission: ((request: AdmissionRequest) => KubeObject | Promise<KubeObject>) | undefined;

  private constructor(server: Server, store: ResourceStore, url: string, caPem: string, token: string) {
    this.server = server;
    this.store = store;
    this.url = url;
    this.caPem = caPem;
    this.token = token;
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      this.handle(req, res).catch(() => res.destroy());
    });
  }

  static async start(options: FakeKubeApiServerOptions = {}): Promise<FakeKubeApiServer> {
    const certs = await servingCertificates();
    const server = createServer({ key: certs.keyPem, cert: certs.certPem });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    const { port } = server.address() as AddressInfo;
    const store = new ResourceStore([...RESOURCES, ...(options.resources ?? [])]);
    const token = options.token ?? randomBytes(16).toString('hex');
    return new FakeKubeApiServer(server, store, `https://127.0.0.1:${port}`, certs.caPem, token);
  }

  /** A client-node KubeConfig for this server: its CA, its token, namespace `default`. */
  kubeConfig(): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: CONTEXT_NAME, server: this.url, caData: Buffer.from(this.caPem).toString('base64'), skipTLSVerify: false }],
      users: [{ name: CONTEXT_NAME, token: this.token }],
      contexts: [{ name: CONTEXT_NAME, cluster: CONTEXT_NAME, user: CONTEXT_NAME, namespace: 'default' }],
      currentContext: CONTEXT_NAME,
    });
    return kc;
  }

  /** Writes `<dir>/kubeconfig` (JSON, which is YAML) for spawned processes; returns its path. */
  writeKubeconfigFile(dir: string): string {
    const file = join(dir, 'kubeconfig');
    writeFileSync(file, `${this.kubeConfig().exportConfig()}\n`, { mode: 0o600 });
    return file;
  }

  /** Ends every watch, drops every connection and closes the port. Safe to call twice. */
  stop(): Promise<void> {
    this.stopped ??= new Promise<void>((resolve) => {
      for (const open of [...this.watches]) this.endWatch(open, true);
      for (const waiter of [...this.watchWaiters]) waiter.reject(new Error('the fake kube-apiserver stopped'));
      this.server.close(() => resolve());
      // Keep-alive connections (client-node keeps them) would hold close() open forever.
      this.server.closeAllConnections();
    });
    return this.stopped;
  }

  // --- Test-side state: bypasses HTTP, yet bumps resourceVersions and feeds watches the same way.

  /** Creates or replaces the object (status included, as a controller would set it); returns the stored copy. */
  put<T extends KubeObjectInput>(obj: T): KubeObject {
    return this.store.put(obj);
  }

  get<T = KubeObject>(apiVersion: string, plural: string, namespace: string | undefined, name: string): T | undefined {
    return this.store.get(this.store.require(apiVersion, plural), namespace, name) as T | undefined;
  }

  /** Deletes at once (finalizers ignored); returns the deleted object, or undefined when there was none. */
  remove(apiVersion: string, plural: string, namespace: string | undefined, name: string): KubeObject | undefined {
    return this.store.remove(this.store.require(apiVersion, plural), namespace, name);
  }

  list<T = KubeObject>(apiVersion: string, plural: string, namespace?: string): T[] {
    const filter: ObjectFilter = namespace === undefined ? {} : { namespace };
    return this.store.list(this.store.require(apiVersion, plural), filter) as T[];
  }

  /** The latest resourceVersion, as a list would report it. */
  get resourceVersion(): string {
    return String(this.store.resourceVersion);
  }

  clearRequests(): void {
    this.requests.length = 0;
  }

  // --- Faults.

  /** Ends every open watch from the server side; clients must reconnect. */
  closeWatches(options: CloseWatchesOptions = {}): void {
    for (const open of [...this.watches]) this.endWatch(open, options.abrupt === true);
  }

  /** Forgets the event history, as etcd compaction does: watches from older resourceVersions get 410. */
  compactHistory(): void {
    this.store.compact();
  }

  /** Answers the next matching request(s) with this error, before any other handling but auth. */
  failNext(failure: FailureInjection): void {
    this.failures.push({ ...failure, remaining: failure.times ?? 1 });
  }

  /** Drops the failures failNext injected that have not happened yet (a fault that lasts until the test mends it). */
  clearFailures(): void {
    this.failures.length = 0;
  }

  get watchCount(): number {
    return this.watches.size;
  }

  /** Resolves once at least `count` watches are open (their replay sent), e.g. after a reconnect. */
  waitForWatches(count: number, timeoutMs = 5000): Promise<void> {
    if (this.watches.size >= count) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const settle = (): void => {
        clearTimeout(timer);
        this.watchWaiters.delete(waiter);
      };
      const waiter: WatchWaiter = {
        count,
        resolve: () => {
          settle();
          resolve();
        },
        reject: (err) => {
          settle();
          reject(err);
        },
      };
      const timer = setTimeout(() => {
        waiter.reject(new Error(`timed out after ${timeoutMs} ms waiting for ${count} open watch(es); ${this.watches.size} open`));
      }, timeoutMs);
      this.watchWaiters.add(waiter);
    });
  }

  // --- HTTP.

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.url);
    const method = req.method ?? 'GET';
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    const contentType = req.headers['content-type'];
    const record: RecordedRequest = { method, path: url.pathname, query: url.searchParams, status: 0 };
    if (contentType !== undefined) record.contentType = contentType;
    if (raw !== '') record.body = parseJsonOrText(raw);
    this.requests.push(record);
    try {
      if (req.headers.authorization !== `Bearer ${this.token}`) throw UNAUTHORIZED;
      this.injectFailure(method, url.pathname, isWatch(url.searchParams));
      const target = resolveTarget(this.store, url.pathname);
      let body = raw;
      if (this.admission !== undefined && method === 'POST' && target.name === undefined && !target.allNamespaces) {
        body = JSON.stringify(await this.admission({ resource: target.resource, namespace: target.namespace, object: parseJson(raw) as KubeObject }));
      }
      this.serve(method, url.searchParams, target, body, contentType, record, res);
    } catch (err) {
      this.fail(res, record, err);
    }
  }

  private serve(method: string, query: URLSearchParams, target: Target, raw: string, contentType: string | undefined, record: RecordedRequest, res: ServerResponse): void {
    const { resource, namespace, name, subresource } = target;
    if (method === 'GET' && isWatch(query)) return this.watch(target, query, record, res);
    if (subresource === 'eviction') {
      if (method !== 'POST') throw methodNotAllowed();
      return this.reply(res, record, 201, this.evict(target, raw, query));
    }
    if (name === undefined) {
      if (target.allNamespaces && method !== 'GET') throw methodNotAllowed();
      switch (method) {
        case 'GET':
          return this.reply(res, record, 200, this.listBody(resource, this.store.list(resource, objectFilter(target, query))));
        case 'POST':
          return this.reply(res, record, 201, this.store.create(resource, namespace, parseJson(raw), dryRunRequested(query)));
        case 'DELETE':
          return this.reply(res, record, 200, this.deleteCollection(target, query, raw));
        default:
          throw methodNotAllowed();
      }
    }
    switch (method) {
      case 'GET': {
        const obj = this.store.get(resource, namespace, name);
        if (obj === undefined) throw notFound(resource, name);
        return this.reply(res, record, 200, obj);
      }
      case 'PUT':
        return this.reply(res, record, 200, this.store.update(resource, namespace, name, subresource, parseJson(raw), dryRunRequested(query)));
      case 'PATCH':
        return this.reply(res, record, 200, this.store.patch(resource, namespace, name, subresource, mediaType(contentType), parseJson(raw), dryRunRequested(query)));
      case 'DELETE': {
        if (subresource !== undefined) throw methodNotAllowed();
        const options = parseDeleteOptions(raw);
        const { object, deleted } = this.store.delete(resource, namespace, name, options, dryRunRequested(query, options));
        const body = deleted && resource.deleteReturnsObject !== true ? deletedStatus(resource, name, object.metadata?.uid) : object;
        return this.reply(res, record, 200, body);
      }
      default:
        throw methodNotAllowed();
    }
  }

  /**
   * POST pods/{name}/eviction: a policy/v1 Eviction naming the pod deletes it (its deleteOptions'
   * preconditions and dryRun apply) and answers 201 with a Success Status, as the real apiserver
   * does. PodDisruptionBudgets are not modelled: inject the 429 a blocking budget gives with
   * failNext({ pathPrefix: '.../eviction', status: 429, ... }).
   */
  private evict(target: Target, raw: string, query: URLSearchParams): unknown {
    const { resource, namespace, name } = target;
    const body = parseJson(raw) as { apiVersion?: unknown; kind?: unknown; metadata?: { name?: unknown }; deleteOptions?: DeleteOptions & { dryRun?: unknown } };
    if (typeof body !== 'object' || body === null || body.kind !== 'Eviction' || (body.apiVersion !== 'policy/v1' && body.apiVersion !== 'policy/v1beta1')) {
      throw new ApiError(400, 'the request body must be a policy/v1 Eviction');
    }
    if (body.metadata?.name !== name) throw new ApiError(400, 'name in URL does not match name in Eviction object');
    const options = body.deleteOptions ?? {};
    const dryRun = dryRunRequested(query, options);
    this.store.delete(resource, namespace, name!, options, dryRun);
    return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', code: 201 };
  }

  /** Built-in lists leave out each item's apiVersion/kind; CustomResource lists keep them. */
  private listBody(resource: ResourceType, items: KubeObject[]): unknown {
    return {
      apiVersion: apiVersionOf(resource),
      kind: `${resource.kind}List`,
      metadata: { resourceVersion: this.resourceVersion },
      items: resource.customResource === true ? items : items.map(({ apiVersion: _a, kind: _k, ...rest }) => rest),
    };
  }

  private deleteCollection(target: Target, query: URLSearchParams, raw: string): unknown {
    const options = parseDeleteOptions(raw);
    const dryRun = dryRunRequested(query, options);
    const { resource } = target;
    const deleted = this.store
      .list(resource, objectFilter(target, query))
      .map((obj) => this.store.delete(resource, obj.metadata?.namespace, obj.metadata?.name ?? '', {}, dryRun).object);
    return this.listBody(resource, deleted);
  }

  private watch(target: Target, query: URLSearchParams, record: RecordedRequest, res: ServerResponse): void {
    // Everything that can be refused with a plain error is checked before the 200 goes out.
    const filter = objectFilter(target, query);
    const fromRv = parseResourceVersion(query.get('resourceVersion'));
    const timeoutSeconds = parseTimeoutSeconds(query.get('timeoutSeconds'));
    const initialEvents = query.get('sendInitialEvents') === 'true';
    const { resource } = target;
    record.status = 200;
    res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private' });
    res.flushHeaders();
    const send = (type: WatchEventType, object: unknown): void => {
      if (!res.writableEnded && !res.destroyed) res.write(`${JSON.stringify({ type, object })}\n`);
    };
    let unsubscribe: () => void;
    try {
      unsubscribe = this.store.watch(resource, filter, initialEvents ? undefined : fromRv, send);
    } catch (err) {
      // A too-old resourceVersion is answered inside the stream, as the real apiserver does.
      const status = err instanceof ApiError ? err.toStatus() : new ApiError(500, String(err)).toStatus();
      send('ERROR', status);
      res.end();
      return;
    }
    const open: OpenWatch = { res, resource, bookmarks: query.get('allowWatchBookmarks') === 'true', send, unsubscribe, timer: undefined };
    if (initialEvents && open.bookmarks) send('BOOKMARK', this.bookmark(resource, { 'k8s.io/initial-events-end': 'true' }));
    this.watches.add(open);
    res.on('close', () => this.forgetWatch(open));
    if (timeoutSeconds > 0) {
      open.timer = setTimeout(() => this.endWatch(open, false), timeoutSeconds * 1000);
      open.timer.unref();
    }
    for (const waiter of [...this.watchWaiters]) if (this.watches.size >= waiter.count) waiter.resolve();
  }

  private bookmark(resource: ResourceType, annotations?: Record<string, string>): unknown {
    return {
      apiVersion: apiVersionOf(resource),
      kind: resource.kind,
      metadata: { resourceVersion: this.resourceVersion, ...(annotations === undefined ? {} : { annotations }) },
    };
  }

  private endWatch(open: OpenWatch, abrupt: boolean): void {
    if (!this.forgetWatch(open)) return;
    if (abrupt) {
      open.res.destroy();
      return;
    }
    if (open.bookmarks) open.send('BOOKMARK', this.bookmark(open.resource));
    open.res.end();
  }

  private forgetWatch(open: OpenWatch): boolean {
    if (!this.watches.delete(open)) return false;
    clearTimeout(open.timer);
    open.unsubscribe();
    return true;
  }

  private injectFailure(method: string, path: string, watch: boolean): void {
    const index = this.failures.findIndex(
      (f) =>
        (f.method === undefined || f.method.toUpperCase() === method) &&
        (f.pathPrefix === undefined || path.startsWith(f.pathPrefix)) &&
        (f.watch === undefined || f.watch === watch),
    );
    if (index < 0) return;
    const failure = this.failures[index];
    failure.remaining -= 1;
    if (failure.remaining <= 0) this.failures.splice(index, 1);
    const details = failure.retryAfterSeconds === undefined ? undefined : { retryAfterSeconds: failure.retryAfterSeconds };
    throw new ApiError(failure.status, failure.message ?? `injected failure: HTTP ${failure.status}`, { reason: failure.reason, details });
  }

  private fail(res: ServerResponse, record: RecordedRequest, err: unknown): void {
    if (!(err instanceof ApiError)) console.error('fake kube-apiserver: unexpected error', err);
    const apiError = err instanceof ApiError ? err : new ApiError(500, `fake kube-apiserver bug: ${String(err)}`);
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const retryAfter = apiError.details?.retryAfterSeconds;
    this.reply(res, record, apiError.code, apiError.toStatus(), retryAfter === undefined ? {} : { 'Retry-After': String(retryAfter) });
  }

  private reply(res: ServerResponse, record: RecordedRequest, status: number, body: unknown, headers: Record<string, string> = {}): void {
    record.status = status;
    const text = JSON.stringify(body);
    res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text), ...headers });
    res.end(text);
  }
}

/**
 * Maps a URL path onto a resource: `/api/v1/namespaces/{ns}/{plural}[/{name}[/status]]`,
 * `/apis/{group}/{version}/...` alike, and `/{plural}[/{name}[/status]]` for cluster-scoped
 * resources or (without a name) all namespaces. `namespaces/{name}/status` is the namespace's own.
 */
function resolveTarget(store: ResourceStore, pathname: string): Target {
  let segments: string[];
  try {
    segments = pathname.split('/').filter((s) => s !== '').map(decodeURIComponent);
  } catch {
    throw new ApiError(400, `malformed URL path ${pathname}`);
  }
  let apiVersion: string;
  let rest: string[];
  if (segments[0] === 'api' && segments[1] === 'v1') {
    apiVersion = 'v1';
    rest = segments.slice(2);
  } else if (segments[0] === 'apis' && segments.length >= 3) {
    apiVersion = `${segments[1]}/${segments[2]}`;
    rest = segments.slice(3);
  } else {
    throw unknownPath();
  }
  if (rest[0] === 'namespaces' && rest.length >= 3) {
    const resource = store.lookup(apiVersion, rest[2]);
    if (resource?.namespaced === true) return objectTarget(resource, rest[1], rest.slice(3));
  }
  const resource = rest.length === 0 ? undefined : store.lookup(apiVersion, rest[0]);
  if (resource === undefined) throw unknownPath();
  if (!resource.namespaced) return objectTarget(resource, undefined, rest.slice(1));
  if (rest.length !== 1) throw unknownPath();
  return { resource, namespace: undefined, name: undefined, subresource: undefined, allNamespaces: true };
}

function objectTarget(resource: ResourceType, namespace: string | undefined, tail: string[]): Target {
  const [name, subresource] = tail;
  const served = (subresource === 'status' && resource.statusSubresource === true) || (subresource === 'eviction' && resource.evictionSubresource === true);
  if (tail.length > 2 || (subresource !== undefined && !served)) {
    throw unknownPath();
  }
  return { resource, namespace, name, subresource, allNamespaces: false };
}

function objectFilter(target: Target, query: URLSearchParams): ObjectFilter {
  const selectable = new Set(['metadata.name', 'metadata.namespace', ...(target.resource.selectableFields ?? [])]);
  const filter: ObjectFilter = {};
  try {
    filter.labels = parseLabelSelector(query.get('labelSelector') ?? '');
    filter.fields = parseFieldSelector(query.get('fieldSelector') ?? '', selectable);
  } catch (err) {
    if (err instanceof SelectorError) throw new ApiError(400, err.message);
    throw err;
  }
  if (target.namespace !== undefined) filter.namespace = target.namespace;
  if (target.name !== undefined) filter.name = target.name;
  return filter;
}

function isWatch(query: URLSearchParams): boolean {
  const watch = query.get('watch');
  return watch === 'true' || watch === '1';
}

/** undefined for "" and "0" (start from the current state), else the integer to resume after. */
function parseResourceVersion(value: string | null): number | undefined {
  if (value === null || value === '' || value === '0') return undefined;
  if (!/^\d+$/.test(value)) throw new ApiError(400, `invalid resource version: ${value}`);
  return Number(value);
}

function parseTimeoutSeconds(value: string | null): number {
  if (value === null || value === '') return 0;
  if (!/^\d+$/.test(value)) throw new ApiError(400, `timeoutSeconds: Invalid value: "${value}": must be a non-negative integer`);
  return Number(value);
}

function dryRunRequested(query: URLSearchParams, options: { dryRun?: unknown } = {}): boolean {
  const values: unknown[] = [...query.getAll('dryRun'), ...(Array.isArray(options.dryRun) ? options.dryRun : [])];
  for (const value of values) {
    if (value !== 'All') throw new ApiError(400, `dryRun: Unsupported value: "${String(value)}": supported values: "All"`);
  }
  return values.length > 0;
}

function parseDeleteOptions(raw: string): DeleteOptions & { dryRun?: unknown } {
  if (raw === '') return {};
  const options = parseJson(raw);
  if (typeof options !== 'object' || options === null || Array.isArray(options)) throw new ApiError(400, 'DeleteOptions must be a JSON object');
  return options;
}

function parseJson(raw: string): unknown {
  if (raw === '') throw new ApiError(400, 'the request body is empty');
  try {
    return JSON.parse(raw) as unknown;
  } catch (err) {
    throw new ApiError(400, `the request body is not JSON: ${(err as Error).message}`);
  }
}

function parseJsonOrText(raw: string): unknown {
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    return raw;
  }
}

function mediaType(contentType: string | undefined): string {
  return (contentType ?? '').split(';')[0].trim().toLowerCase();
}
