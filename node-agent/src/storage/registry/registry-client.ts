/**
 * The OCI distribution API calls the registry store makes, for one repository: blob existence,
 * upload sessions (start, chunk, status, finish, cancel), manifests (put, get, delete) and the
 * tag list. Each call authorizes itself (RegistryAuth) and, except the chunk upload whose
 * retries need the session's state (blob-upload.ts), retries network errors, 5xx and 429 with
 * capped exponential backoff. Every failure becomes a StoreError naming the registry, the
 * repository, what was done and the HTTP status.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Backoff, type Logger } from '@cryo/common';
import { OCI_INDEX, OCI_MANIFEST, sha256Digest } from '../checkpoint-image/checkpoint-image.ts';
import { blockerOfHttpStatus, StoreError, type StoreBlocker } from '../checkpoint-store.ts';
import { parseAuthChallenge } from './auth-challenge.ts';
import type { BodyWriter, HttpResponse, HttpTransport } from './http-transport.ts';
import { NetworkError } from './http-transport.ts';
import type { RegistryAuth, RepositoryAction } from './registry-auth.ts';
import { repositoryScope } from './registry-auth.ts';

export interface RetryPolicy {
  /** Attempts in all, the first included. */
  attempts: number;
  initialMs: number;
  maxMs: number;
}

export interface RegistryClientOptions {
  registry: string;
  name: string;
  /** Plain http instead of https. */
  insecure: boolean;
  transport: HttpTransport;
  auth: RegistryAuth;
  retry: RetryPolicy;
  logger?: Logger;
}

/** A registry's answer that is not what the call expects. */
export class RegistryHttpError extends Error {
  override name = 'RegistryHttpError';
  readonly status: number;
  /** The OCI error code (`BLOB_UNKNOWN`, `UNAUTHORIZED`, ...), '' when the body had none. */
  readonly code: string;
  readonly retryAfterMs: number | undefined;
  constructor(status: number, code: string, detail: string, retryAfterMs?: number) {
    super(`HTTP ${status}${code === '' ? '' : ` ${code}`}${detail === '' ? '' : `: ${detail}`}`);
    this.status = status;
    this.code = code;
    this.retryAfterMs = retryAfterMs;
  }
}

/** What a failure needs someone to change (credentials, space, the request or the TLS set-up), if anything. */
function blockerOf(err: unknown): StoreBlocker | undefined {
  if (err instanceof NetworkError) return err.tls ? 'rejected' : undefined;
  if (err instanceof RegistryHttpError) return blockerOfHttpStatus(err.status);
  return undefined;
}

export function isRetriable(err: unknown): boolean {
  if (err instanceof StoreError) return err.retriable;
  if (err instanceof NetworkError) return !err.tls;
  // 507 Insufficient Storage: a full registry does not empty itself within a retry's backoff.
  if (err instanceof RegistryHttpError) return (err.status >= 500 && err.status !== 507) || err.status === 429 || err.status === 408;
  return false;
}

const MANIFEST_ACCEPT = [OCI_MANIFEST, OCI_INDEX, 'application/vnd.docker.distribution.manifest.v2+json'].join(', ');

interface SendOptions {
  method: string;
  url: URL;
  actions: readonly RepositoryAction[];
  headers?: Record<string, string>;
  body?: Buffer | BodyWriter;
  signal?: AbortSignal;
  maxResponseBytes?: number;
}

function errorOf(res: HttpResponse): RegistryHttpError {
  let code = '';
  let detail: string;
  try {
    const parsed = JSON.parse(res.body.toString('utf8')) as { errors?: { code?: string; message?: string }[] };
    const first = parsed.errors?.[0];
    code = first?.code ?? '';
    detail = parsed.errors?.map((e) => e.message ?? '').filter(Boolean).join('; ') ?? '';
  } catch {
    detail = res.body.toString('utf8', 0, 200).trim();
  }
  const after = Number(res.headers['retry-after']);
  return new RegistryHttpError(res.status, code, detail, Number.isFinite(after) && after >= 0 ? after * 1000 : undefined);
}

export class RegistryClient {
  readonly registry: string;
  readonly name: string;
  readonly base: URL;
  private readonly transport: HttpTransport;
  private readonly auth: RegistryAuth;
  private readonly retry: RetryPolicy;
  private readonly logger: Logger | undefined;

  constructor(options: RegistryClientOptions) {
    this.registry = options.registry;
    this.name = options.name;
    this.base = new URL(`${options.insecure ? 'http' : 'https'}://${options.registry}/`);
    this.transport = options.transport;
    this.auth = options.auth;
    this.retry = options.retry;
    this.logger = options.logger;
  }

  /** `registry 127.0.0.1:5000, repository checkpoints/app`: what every error message names. */
  where(): string {
    return `registry ${this.registry}, repository ${this.name}`;
  }

  url(path: string): URL {
    return new URL(`/v2/${this.name}/${path}`, this.base);
  }

  /** A Location header as a URL: relative ones resolve against the registry; nothing may downgrade https. */
  resolveLocation(location: string | undefined, what: string): URL {
    if (location === undefined || location === '') throw new StoreError(`${what}: ${this.where()}: the registry answered without a Location header`, { retriable: true });
    const url = new URL(location, this.base);
    if (url.protocol !== this.base.protocol && url.protocol !== 'https:') {
      throw new StoreError(`${what}: ${this.where()}: the registry sent the upload to ${url.origin}, a plain-http location for an https registry`, { retriable: false, blocker: 'rejected' });
    }
    return url;
  }

  /** One request, authorized; a 401 is answered once with the credentials or token it asks for. */
  async send(options: SendOptions): Promise<HttpResponse> {
    const scope = repositoryScope(this.name, options.actions);
    // Credentials go to the registry only, never to another host a Location points at.
    const sameOrigin = options.url.origin === this.base.origin;
    for (let round = 0; ; round++) {
      const authorization = sameOrigin ? await this.auth.header(scope, options.signal) : undefined;
      const res = await this.transport.request({
        method: options.method,
        url: options.url,
        headers: { ...options.headers, ...(authorization === undefined ? {} : { authorization }) },
        body: options.body,
        signal: options.signal,
        maxResponseBytes: options.maxResponseBytes,
      });
      if (res.status !== 401 || round > 0 || !sameOrigin) return res;
      const challenge = parseAuthChallenge(res.headers['www-authenticate']);
      if (!(await this.auth.accept(challenge, scope, options.signal))) return res;
    }
  }

  /** Throws the registry's error unless the status is one of `ok`. */
  expect(res: HttpResponse, ...ok: number[]): HttpResponse {
    if (ok.includes(res.status)) return res;
    throw errorOf(res);
  }

  /**
   * Runs `attempt` until it succeeds, fails for good, or the attempts are spent; then throws a
   * StoreError that says what failed where, and how often it was tried.
   */
  async retrying<T>(what: string, signal: AbortSignal | undefined, attempt: (n: number) => Promise<T>): Promise<T> {
    const backoff = new Backoff({ initialMs: this.retry.initialMs, maxMs: this.retry.maxMs });
    for (let n = 1; ; n++) {
      try {
        return await attempt(n);
      } catch (err) {
        if (signal?.aborted) throw this.aborted(what, signal);
        const retriable = isRetriable(err);
        if (!retriable || n >= this.retry.attempts) throw this.failure(what, err, n);
        const suggested = err instanceof RegistryHttpError ? err.retryAfterMs : undefined;
        const delay = Math.min(Math.max(backoff.next(), suggested ?? 0), this.retry.maxMs);
        this.logger?.warn({ registry: this.registry, repository: this.name, attempt: n, delayMs: delay, err: (err as Error).message }, `${what} failed; retrying`);
        try {
          await sleep(delay, undefined, { signal });
        } catch {
          throw this.aborted(what, signal!);
        }
      }
    }
  }

  aborted(what: string, signal: AbortSignal): StoreError {
    return new StoreError(`${what}: ${this.where()}: aborted`, { retriable: true, cause: signal.reason });
  }

  failure(what: string, err: unknown, attempts: number): StoreError {
    if (err instanceof StoreError) return err;
    const retriable = isRetriable(err);
    const tries = retriable && attempts > 1 ? ` (gave up after ${attempts} attempts)` : '';
    let reason = (err as Error).message;
    if (err instanceof RegistryHttpError && err.status === 401) reason = `${reason}: ${this.auth.describeRefusal()}`;
    if (err instanceof RegistryHttpError && err.status === 403) reason = `${reason}: the push secret's user may not do this in this repository`;
    if (err instanceof RegistryHttpError && err.status === 413) {
      reason = `${reason}: the registry, or a proxy in front of it, limits the size of a request body; set the node agent's --registry-chunk-size below that limit`;
    }
    if (err instanceof RegistryHttpError && err.status === 405 && what.startsWith('delete')) {
      reason = `${reason}: the registry does not allow deletes (distribution: storage.delete.enabled: true)`;
    }
    return new StoreError(`${what}: ${this.where()}: ${reason}${tries}`, { retriable, blocker: blockerOf(err), cause: err });
  }

  async blobExists(digest: string, signal?: AbortSignal): Promise<boolean> {
    return this.retrying(`check blob ${digest}`, signal, async () => {
      const res = await this.send({ method: 'HEAD', url: this.url(`blobs/${digest}`), actions: ['pull', 'push'], signal });
      if (res.status === 404) return false;
      this.expect(res, 200);
      return true;
    });
  }

  async startUpload(signal?: AbortSignal): Promise<URL> {
    return this.retrying('start a blob upload', signal, async () => {
      const res = this.expect(await this.send({ method: 'POST', url: this.url('blobs/uploads/'), actions: ['pull', 'push'], headers: { 'content-length': '0' }, signal }), 202);
      return this.resolveLocation(res.headers.location, 'start a blob upload');
    });
  }

  /** Sends bytes [from, toExclusive) of the blob; no retries here (the caller resumes from the registry's offset). */
  async patchUpload(location: URL, from: number, toExclusive: number, body: BodyWriter, signal?: AbortSignal): Promise<URL> {
    const res = await this.send({
      method: 'PATCH',
      url: location,
      actions: ['pull', 'push'],
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(toExclusive - from), 'content-range': `${from}-${toExclusive - 1}` },
      body,
      signal,
    });
    this.expect(res, 202, 204);
    return this.resolveLocation(res.headers.location, 'upload a chunk');
  }

  /**
   * How many bytes of the session the registry holds, and the session's next location;
   * undefined when the registry no longer knows the session.
   */
  async uploadOffset(location: URL, signal?: AbortSignal): Promise<{ offset: number; location: URL } | undefined> {
    const res = await this.send({ method: 'GET', url: location, actions: ['pull', 'push'], signal });
    if (res.status === 404) return undefined;
    this.expect(res, 204, 202);
    // `Range: 0-<last byte>`; distribution writes 0-0 for an empty session as well.
    const range = /^0-(\d+)$/.exec(String(res.headers.range ?? ''));
    const last = range ? Number(range[1]) : -1;
    return { offset: last <= 0 ? 0 : last + 1, location: this.resolveLocation(res.headers.location ?? location.href, 'query an upload') };
  }

  /** Completes the session as blob `digest` (with a last piece of body, or none). */
  async finishUpload(location: URL, digest: string, signal?: AbortSignal, body?: Buffer): Promise<void> {
    const url = new URL(location.href);
    url.searchParams.set('digest', digest);
    const headers = { 'content-type': 'application/octet-stream', 'content-length': String(body?.length ?? 0) };
    const res = await this.send({ method: 'PUT', url, actions: ['pull', 'push'], headers, body: body ?? Buffer.alloc(0), signal });
    this.expect(res, 201, 204);
  }

  /** Frees a session that will not be finished; best effort (the registry expires it anyway). */
  async cancelUpload(location: URL): Promise<void> {
    await this.send({ method: 'DELETE', url: location, actions: ['pull', 'push'], signal: AbortSignal.timeout(5_000) }).catch(() => undefined);
  }

  /** Uploads a small blob in one request (POST, then PUT with the body), unless the registry has it. */
  async putSmallBlob(bytes: Buffer, digest: string, signal?: AbortSignal): Promise<void> {
    if (await this.blobExists(digest, signal)) return;
    await this.retrying(`upload blob ${digest}`, signal, async () => {
      const res = this.expect(await this.send({ method: 'POST', url: this.url('blobs/uploads/'), actions: ['pull', 'push'], headers: { 'content-length': '0' }, signal }), 202);
      await this.finishUpload(this.resolveLocation(res.headers.location, 'upload a blob'), digest, signal, bytes);
    });
  }

  /** PUTs a manifest; returns the digest the registry says it stored it under (Docker-Content-Digest), if it says. */
  async putManifest(reference: string, bytes: Buffer, mediaType: string, signal?: AbortSignal): Promise<string | undefined> {
    return this.retrying(`push manifest ${reference}`, signal, async () => {
      const res = await this.send({ method: 'PUT', url: this.url(`manifests/${reference}`), actions: ['pull', 'push'], headers: { 'content-type': mediaType, 'content-length': String(bytes.length) }, body: bytes, signal });
      this.expect(res, 201, 200);
      const digest = res.headers['docker-content-digest'];
      return typeof digest === 'string' && digest !== '' ? digest : undefined;
    });
  }

  async getManifest(reference: string, signal?: AbortSignal): Promise<{ bytes: Buffer; mediaType: string; digest: string | undefined } | undefined> {
    return this.retrying(`read manifest ${reference}`, signal, async () => {
      const res = await this.send({ method: 'GET', url: this.url(`manifests/${reference}`), actions: ['pull'], headers: { accept: MANIFEST_ACCEPT }, signal });
      if (res.status === 404) return undefined;
      this.expect(res, 200);
      const header = res.headers['docker-content-digest'];
      const digest = typeof header === 'string' && header !== '' ? header : undefined;
      this.verifyManifest(reference, res.body, digest);
      return { bytes: res.body, mediaType: String(res.headers['content-type'] ?? ''), digest };
    });
  }

  /**
   * Refuses a manifest whose bytes are not the digest asked for (or, read by tag, the one the
   * registry names): damaged in storage or on the way, or cut at the response limit. Its
   * digest is what retention deletes by, so a wrong one must not be used.
   */
  private verifyManifest(reference: string, bytes: Buffer, named: string | undefined): void {
    const byDigest = reference.startsWith('sha256:');
    const expected = byDigest ? reference : named?.startsWith('sha256:') === true ? named : undefined;
    if (expected === undefined) return;
    const actual = sha256Digest(bytes);
    if (actual === expected) return;
    const source = byDigest ? 'the digest it was read by' : 'the Docker-Content-Digest the registry sent with it';
    throw new StoreError(
      `read manifest ${reference}: ${this.where()}: the ${bytes.length} bytes received hash to ${actual}, not to ${expected} (${source}); the manifest was refused: it is damaged in the registry's storage or was changed on the way (a proxy), so check the registry and read it again`,
      { retriable: true },
    );
  }

  /** Every tag of the repository (following the Link pagination); none when the repository does not exist. */
  async listTags(signal?: AbortSignal): Promise<string[]> {
    const tags: string[] = [];
    let url: URL | undefined = this.url('tags/list?n=1000');
    while (url !== undefined) {
      const page: URL = url;
      const res = await this.retrying('list tags', signal, async () => {
        const answer = await this.send({ method: 'GET', url: page, actions: ['pull'], signal });
        if (answer.status === 404) return undefined;
        return this.expect(answer, 200);
      });
      if (res === undefined) return tags;
      let listed: { tags?: unknown };
      try {
        listed = JSON.parse(res.body.toString('utf8')) as { tags?: unknown };
      } catch (err) {
        throw new StoreError(`list tags: ${this.where()}: the registry answered with something that is not JSON`, { retriable: true, cause: err });
      }
      if (Array.isArray(listed.tags)) tags.push(...listed.tags.filter((t): t is string => typeof t === 'string'));
      const next = /<([^>]+)>\s*;\s*rel="?next"?/.exec(String(res.headers.link ?? ''));
      url = next ? new URL(next[1], this.base) : undefined;
    }
    return tags;
  }

  /** Deletes a manifest by digest (and with it every tag pointing at it). */
  async deleteManifest(digest: string, signal?: AbortSignal): Promise<'deleted' | 'absent'> {
    return this.retrying(`delete manifest ${digest}`, signal, async () => {
      const res = await this.send({ method: 'DELETE', url: this.url(`manifests/${digest}`), actions: ['delete'], signal });
      if (res.status === 404) return 'absent';
      this.expect(res, 202, 200, 204);
      return 'deleted';
    });
  }
}
