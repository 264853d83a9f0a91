/**
 * An in-process OCI distribution registry (plain HTTP on 127.0.0.1) for fast tests of Cryo's
 * registry client: the calls the client makes, answered as distribution (docker-registry 2.8)
 * answers them, with the state kept in memory where a test can read and tamper with it.
 *
 *   - `GET /v2/`; blobs (`HEAD`/`GET`); upload sessions: `POST uploads/` → 202 with a Location
 *     whose `_state` changes at every step (a client that PATCHes a stale Location gets 400
 *     BLOB_UPLOAD_INVALID), `PATCH` with `Content-Range` that must start at the session's size
 *     (416 otherwise), `GET` of the session (`Range: 0-<last byte>`), `PUT ?digest=` that checks
 *     the sha256 of all the session's bytes (400 DIGEST_INVALID, and the session is gone),
 *     `DELETE`; manifests by tag or digest (`PUT` checks that the blobs it names exist, `GET`,
 *     `HEAD`, `DELETE` by digest); `tags/list` with `n`/`last` pagination and a `Link` header.
 *   - A PATCH cut mid-body keeps the bytes that arrived, as distribution does, so a client must
 *     ask the session's offset before resuming.
 *   - Authentication as a real registry asks for it: `basic` (users and passwords; 401 with
 *     `WWW-Authenticate: Basic`), or `bearer` (401 with `WWW-Authenticate: Bearer realm,service,scope`;
 *     the JWTs of test/src/harness/registry-token-server.ts are verified against its certificate
 *     and their `access` must grant the request's action).
 *
 * Network faults (503s, resets, cut bodies, flipped bytes) come from the fault proxy
 * (test/src/harness/fault-proxy.ts) put in front of it: the same proxy the real-registry tests use.
 */
import { createHash, createPublicKey, randomUUID, verify } from 'node:crypto';
import http from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type FakeRegistryAuth = { basic: Record<string, string> } | { bearer: { realm: string; service: string; certificate: string } };

export interface FakeRegistryOptions {
  auth?: FakeRegistryAuth;
  /** How upload Locations are written: a path (as distribution does by default) or an absolute URL from the Host header. */
  locations?: 'relative' | 'absolute';
  /** The most tags one tags/list page holds, whatever `n` asks (distribution caps it too). */
  maxTagsPerPage?: number;
}

export interface FakeRegistryRequest {
  method: string;
  /** Path and query as sent. */
  path: string;
  authorization: string | undefined;
  contentRange: string | undefined;
  status: number;
}

export interface FakeUploadSession {
  chunks: Buffer[];
  size: number;
  /** The `_state` the latest Location carries. */
  state: number;
}

export interface FakeManifest {
  bytes: Buffer;
  mediaType: string;
}

export interface FakeRepository {
  blobs: Map<string, Buffer>;
  /** By the digest they were stored under (a test may put other bytes there to corrupt one). */
  manifests: Map<string, FakeManifest>;
  tags: Map<string, string>;
  uploads: Map<string, FakeUploadSession>;
}

export interface FakeRegistry {
  /** `127.0.0.1:<port>`, as a repository reference names it. */
  host: string;
  port: number;
  requests: FakeRegistryRequest[];
  /** The repository's state, created empty on first use. */
  repository(name: string): FakeRepository;
  close(): Promise<void>;
}

function sha256Of(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

const DIGEST = /^sha256:[0-9a-f]{64}$/;
const ROUTE = /^\/v2\/(.+)\/(blobs\/uploads\/([^/]*)|blobs\/([^/]+)|manifests\/([^/]+)|tags\/list)$/;

type Action = 'pull' | 'push' | 'delete';

function sendError(res: ServerResponse, status: number, code: string, message: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify({ errors: [{ code, message, detail: null }] }));
}

function readBody(req: IncomingMessage, onChunk: (chunk: Buffer) => void = () => {}): Promise<Buffer> {
  const chunks: Buffer[] = [];
  return new Promise((resolve, reject) => {
    req.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      onChunk(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

interface TokenAccess {
  type: string;
  name: string;
  actions: string[];
}

/** The access a JWT grants, or undefined when its signature is not the token server's or it expired. */
function verifiedAccess(token: string, certificate: string, service: string): TokenAccess[] | undefined {
  const [header, claims, signature] = token.split('.');
  if (signature === undefined) return undefined;
  if (!verify('RSA-SHA256', Buffer.from(`${header}.${claims}`), createPublicKey(certificate), Buffer.from(signature, 'base64url'))) return undefined;
  const parsed = JSON.parse(Buffer.from(claims, 'base64url').toString('utf8')) as { aud?: string; exp?: number; access?: TokenAccess[] };
  if (parsed.aud !== service || (parsed.exp ?? 0) * 1000 < Date.now()) return undefined;
  return parsed.access ?? [];
}

export async function startFakeRegistry(options: FakeRegistryOptions = {}): Promise<FakeRegistry> {
  const repositories = new Map<string, FakeRepository>();
  const requests: FakeRegistryRequest[] = [];
  const repository = (name: string): FakeRepository => {
    let repo = repositories.get(name);
    if (repo === undefined) {
      repo = { blobs: new Map(), manifests: new Map(), tags: new Map(), uploads: new Map() };
      repositories.set(name, repo);
    }
    return repo;
  };

  /** True when the request may go on; otherwise it has been answered with 401. */
  const authorized = (req: IncomingMessage, res: ServerResponse, name: string | undefined, action: Action): boolean => {
    const auth = options.auth;
    if (auth === undefined) return true;
    const [scheme, value] = (req.headers.authorization ?? '').split(' ');
    if ('basic' in auth) {
      const [user, password] = scheme === 'Basic' ? Buffer.from(value ?? '', 'base64').toString('utf8').split(/:(.*)/s) : [];
      if (user !== undefined && auth.basic[user] === password) return true;
      sendError(res, 401, 'UNAUTHORIZED', 'authentication required', { 'www-authenticate': 'Basic realm="fake-registry"' });
      return false;
    }
    const { realm, service, certificate } = auth.bearer;
    const access = scheme === 'Bearer' && value !== undefined ? verifiedAccess(value, certificate, service) : undefined;
    const granted = name === undefined ? access !== undefined : access?.some((a) => a.type === 'repository' && a.name === name && a.actions.includes(action));
    if (granted === true) return true;
    const scope = name === undefined ? '' : `,scope="repository:${name}:${action === 'push' ? 'pull,push' : action}"`;
    const error = access === undefined ? '' : ',error="insufficient_scope"';
    sendError(res, 401, 'UNAUTHORIZED', 'authentication required', { 'www-authenticate': `Bearer realm="${realm}",service="${service}"${scope}${error}` });
    return false;
  };

  const uploadLocation = (req: IncomingMessage, name: string, uuid: string, session: FakeUploadSession): string => {
    const path = `/v2/${name}/blobs/uploads/${uuid}?_state=${session.state}`;
    return options.locations === 'absolute' ? `http://${req.headers.host}${path}` : path;
  };
  const uploadHeaders = (req: IncomingMessage, name: string, uuid: string, session: FakeUploadSession): Record<string, string> => ({
    location: uploadLocation(req, name, uuid, session),
    range: `0-${Math.max(session.size - 1, 0)}`,
    'docker-upload-uuid': uuid,
    'content-length': '0',
  });

  const handleUpload = async (req: IncomingMessage, res: ServerResponse, url: URL, name: string, uuid: string): Promise<void> => {
    const repo = repository(name);
    if (req.method === 'POST' && uuid === '') {
      if (!authorized(req, res, name, 'push')) return;
      await readBody(req);
      const id = randomUUID();
      const session: FakeUploadSession = { chunks: [], size: 0, state: 0 };
      repo.uploads.set(id, session);
      res.writeHead(202, uploadHeaders(req, name, id, session)).end();
      return;
    }
    if (!authorized(req, res, name, 'push')) return;
    const session = repo.uploads.get(uuid);
    if (session === undefined) {
      sendError(res, 404, 'BLOB_UPLOAD_UNKNOWN', 'blob upload unknown to registry');
      return;
    }
    if (req.method === 'DELETE') {
      repo.uploads.delete(uuid);
      res.writeHead(204).end();
      return;
    }
    if (req.method === 'GET') {
      res.writeHead(204, uploadHeaders(req, name, uuid, session)).end();
      return;
    }
    if (url.searchParams.get('_state') !== String(session.state)) {
      await readBody(req);
      sendError(res, 400, 'BLOB_UPLOAD_INVALID', `stale upload state ${url.searchParams.get('_state')}: use the Location of the last answer`);
      return;
    }
    if (req.method === 'PATCH') {
      const range = /^(\d+)-(\d+)$/.exec(req.headers['content-range'] ?? '');
      if (range !== null && Number(range[1]) !== session.size) {
        await readBody(req);
        res.writeHead(416, { range: `0-${Math.max(session.size - 1, 0)}`, 'content-type': 'application/json' }).end(JSON.stringify({ errors: [{ code: 'BLOB_UPLOAD_INVALID', message: `range starts at ${range[1]}, the session holds ${session.size} bytes` }] }));
        return;
      }
      session.state++;
      // Bytes count as they arrive: a PATCH cut mid-body leaves the part that came in the session.
      await readBody(req, (chunk) => {
        session.chunks.push(chunk);
        session.size += chunk.length;
      });
      res.writeHead(202, uploadHeaders(req, name, uuid, session)).end();
      return;
    }
    if (req.method === 'PUT') {
      const body = await readBody(req);
      const expected = url.searchParams.get('digest') ?? '';
      const bytes = Buffer.concat([...session.chunks, body]);
      repo.uploads.delete(uuid);
      const actual = sha256Of(bytes);
      if (actual !== expected) {
        sendError(res, 400, 'DIGEST_INVALID', `provided digest ${expected} did not match uploaded content ${actual}`);
        return;
      }
      repo.blobs.set(actual, bytes);
      res.writeHead(201, { location: `/v2/${name}/blobs/${actual}`, 'docker-content-digest': actual, 'content-length': '0' }).end();
      return;
    }
    sendError(res, 405, 'UNSUPPORTED', `${req.method} of an upload session`);
  };

  const handleManifest = async (req: IncomingMessage, res: ServerResponse, name: string, reference: string): Promise<void> => {
    const repo = repository(name);
    const action: Action = req.method === 'PUT' ? 'push' : req.method === 'DELETE' ? 'delete' : 'pull';
    if (!authorized(req, res, name, action)) return;
    if (req.method === 'PUT') {
      const bytes = await readBody(req);
      const digest = sha256Of(bytes);
      if (DIGEST.test(reference) && reference !== digest) {
        sendError(res, 400, 'DIGEST_INVALID', `manifest digest ${digest} does not match the reference ${reference}`);
        return;
      }
      let parsed: { config?: { digest?: string }; layers?: { digest?: string }[]; manifests?: { digest?: string }[] };
      try {
        parsed = JSON.parse(bytes.toString('utf8')) as typeof parsed;
      } catch {
        sendError(res, 400, 'MANIFEST_INVALID', 'manifest invalid: not JSON');
        return;
      }
      const missing = [parsed.config?.digest, ...(parsed.layers ?? []).map((l) => l.digest)].filter((d): d is string => d !== undefined && !repo.blobs.has(d));
      missing.push(...(parsed.manifests ?? []).map((m) => m.digest).filter((d): d is string => d !== undefined && !repo.manifests.has(d)));
      if (missing.length > 0) {
        sendError(res, 400, 'MANIFEST_BLOB_UNKNOWN', `blob unknown to registry: ${missing.join(', ')}`);
        return;
      }
      repo.manifests.set(digest, { bytes, mediaType: String(req.headers['content-type'] ?? '') });
      if (!DIGEST.test(reference)) repo.tags.set(reference, digest);
      res.writeHead(201, { location: `/v2/${name}/manifests/${digest}`, 'docker-content-digest': digest, 'content-length': '0' }).end();
      return;
    }
    await readBody(req);
    const digest = DIGEST.test(reference) ? reference : repo.tags.get(reference);
    const manifest = digest === undefined ? undefined : repo.manifests.get(digest);
    if (digest === undefined || manifest === undefined) {
      sendError(res, 404, 'MANIFEST_UNKNOWN', `manifest unknown: ${reference}`);
      return;
    }
    if (req.method === 'DELETE') {
      if (!DIGEST.test(reference)) {
        sendError(res, 400, 'UNSUPPORTED', 'delete a manifest by digest');
        return;
      }
      repo.manifests.delete(digest);
      for (const [tag, target] of repo.tags) if (target === digest) repo.tags.delete(tag);
      res.writeHead(202, { 'content-length': '0' }).end();
      return;
    }
    const headers = { 'content-type': manifest.mediaType, 'docker-content-digest': digest, 'content-length': String(manifest.bytes.length) };
    res.writeHead(200, headers).end(req.method === 'HEAD' ? undefined : manifest.bytes);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://fake-registry');
    if (url.pathname === '/v2/' || url.pathname === '/v2') {
      await readBody(req);
      if (authorized(req, res, undefined, 'pull')) res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      return;
    }
    const route = ROUTE.exec(url.pathname);
    if (route === null) {
      await readBody(req);
      sendError(res, 404, 'NOT_FOUND', `no route for ${url.pathname}`);
      return;
    }
    const [, name, , uuid, blob, reference] = route;
    if (uuid !== undefined) return handleUpload(req, res, url, name, uuid);
    if (reference !== undefined) return handleManifest(req, res, name, reference);
    await readBody(req);
    if (!authorized(req, res, name, 'pull')) return;
    const repo = repository(name);
    if (blob !== undefined) {
      const bytes = repo.blobs.get(blob);
      if (bytes === undefined) {
        sendError(res, 404, 'BLOB_UNKNOWN', `blob unknown to registry: ${blob}`);
        return;
      }
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'docker-content-digest': blob, 'content-length': String(bytes.length) }).end(req.method === 'HEAD' ? undefined : bytes);
      return;
    }
    // tags/list
    if (repo.tags.size === 0 && repo.manifests.size === 0) {
      sendError(res, 404, 'NAME_UNKNOWN', `repository name not known to registry: ${name}`);
      return;
    }
    const all = [...repo.tags.keys()].sort();
    const last = url.searchParams.get('last');
    const after = last === null ? all : all.filter((t) => t > last);
    const n = Math.min(Number(url.searchParams.get('n') ?? all.length), options.maxTagsPerPage ?? Infinity);
    const page = after.slice(0, n);
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (page.length < after.length) headers.link = `</v2/${name}/tags/list?n=${n}&last=${encodeURIComponent(page.at(-1)!)}>; rel="next"`;
    res.writeHead(200, headers).end(JSON.stringify({ name, tags: page }));
  };

  const server = http.createServer((req, res) => {
    const record: FakeRegistryRequest = { method: req.method ?? '', path: req.url ?? '', authorization: req.headers.authorization, contentRange: req.headers['content-range'], status: 0 };
    requests.push(record);
    res.on('finish', () => (record.status = res.statusCode));
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) sendError(res, 500, 'UNKNOWN', (err as Error).message);
      else res.destroy();
    });
  });
  server.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    host: `127.0.0.1:${port}`,
    port,
    requests,
    repository,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
