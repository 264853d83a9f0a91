/**
 * The kubelet's checkpoint API, called directly on this node's kubelet (never through the API
 * server's node proxy, which would need nodes/proxy):
 *
 *   POST https://<node ip>:10250/checkpoint/{namespace}/{pod}/{container}?timeout=<s>
 *   200 {"items":["/var/lib/kubelet/checkpoints/checkpoint-<pod>_<ns>-<container>-<time>.tar"]}
 *
 * Every failure becomes a KubeletError whose message names the cause and the fix; a runtime
 * failure also gets CRIU's error lines when the runtime names its dump log in an allowed
 * directory (criu-dump-log.ts). One connection per call (no keep-alive): calls are seconds apart
 * and each holds a dump, so a pooled socket would only go stale between them.
 */
import { readFile } from 'node:fs/promises';
import https from 'node:https';
import type { Logger } from '@cryo/common';
import { criuErrorLinesFor } from './criu-dump-log.ts';

export interface KubeletClientOptions {
  /** `https://<node ip>:10250`. */
  baseUrl: string;
  /** The service-account token, read again on every call: the kubelet rotates projected tokens. */
  tokenFile: string;
  /** PEM bundle of the CA that signed the kubelet's serving certificate; the system CAs when absent. */
  caFile?: string;
  /** Skip verifying the kubelet's certificate (only without caFile). Anyone on the path can then read the token. */
  insecureSkipTlsVerify?: boolean;
  /** Added to the checkpoint timeout for the client's own deadline, so the kubelet gets to answer first (default 15 s). */
  timeoutMarginSeconds?: number;
  /**
   * Absolute directories where the runtime keeps CRIU's dump logs (--criu-log-dirs). A 500 that
   * names a log inside one gets that log's error lines appended; none by default.
   */
  criuLogDirs?: readonly string[];
  logger: Logger;
}

export interface KubeletCheckpointOptions {
  /**
   * Sent as `?timeout=` (whole seconds, ≥ 1); this client waits that long plus the margin. The
   * kubelet never gives the runtime less than its --runtime-request-timeout (2 minutes by default),
   * so a smaller value shortens only this client's wait, not the dump.
   */
  timeoutSeconds: number;
  signal?: AbortSignal;
}

export interface KubeletCheckpointResult {
  /** The archive the runtime wrote, as a path on the node. */
  archivePath: string;
  durationMs: number;
}

export type KubeletErrorKind =
  | 'unauthorized' // 401
  | 'forbidden' // 403
  | 'not-found' // 404
  | 'runtime' // 500
  | 'unexpected' // any other answer, or a 200 without an archive path
  | 'timeout'
  | 'unreachable'
  | 'tls'
  | 'aborted'
  | 'local'; // token or CA file unreadable

export class KubeletError extends Error {
  override name = 'KubeletError';
  readonly kind: KubeletErrorKind;
  /** The kubelet's HTTP status; undefined when there was no answer. */
  readonly status: number | undefined;
  /** The kubelet's answer body as it was (trimmed), '' when there was none. */
  readonly body: string;
  /** Trying again later may help (no answer, a timeout, a runtime failure) as opposed to a setup problem. */
  readonly retriable: boolean;
  constructor(kind: KubeletErrorKind, message: string, options: { status?: number; body?: string; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.kind = kind;
    this.status = options.status;
    this.body = options.body ?? '';
    this.retriable = kind === 'timeout' || kind === 'unreachable' || kind === 'runtime';
  }
}

const RBAC_FIX = "the node agent's service account lacks nodes/checkpoint create: apply manifests/node-agent-rbac.yaml";
const DEFAULT_MARGIN_SECONDS = 15;
/** Enough of an error body for a message; a kubelet answer is one line. */
const MAX_BODY_BYTES = 64 * 1024;

const TLS_TRUST_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
]);
const TLS_OTHER_CODES = new Set(['CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'ERR_TLS_CERT_ALTNAME_INVALID', 'ERR_SSL_WRONG_VERSION_NUMBER', 'EPROTO']);
const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN']);

interface Answer {
  status: number;
  body: string;
}

export class KubeletClient {
  private readonly base: URL;
  private readonly options: KubeletClientOptions;
  private readonly marginMs: number;

  constructor(options: KubeletClientOptions) {
    let base: URL;
    try {
      base = new URL(options.baseUrl);
    } catch {
      throw new Error(`kubelet URL "${options.baseUrl}" is not a URL: give https://<node ip>:10250`);
    }
    if (base.protocol !== 'https:') throw new Error(`kubelet URL "${options.baseUrl}" must be https: the kubelet serves its API over TLS on port 10250`);
    if (options.caFile !== undefined && options.insecureSkipTlsVerify === true) {
      throw new Error('give either a kubelet CA file or insecureSkipTlsVerify, not both: a CA file means the certificate is verified');
    }
    const margin = options.timeoutMarginSeconds ?? DEFAULT_MARGIN_SECONDS;
    if (!(margin >= 0)) throw new Error(`timeoutMarginSeconds must be ≥ 0, got ${margin}`);
    this.base = base;
    this.options = options;
    this.marginMs = margin * 1000;
  }

  /** Asks the kubelet to checkpoint one container; the container keeps running (CRI-O's --leave-running). */
  async checkpoint(namespace: string, pod: string, container: string, { timeoutSeconds, signal }: KubeletCheckpointOptions): Promise<KubeletCheckpointResult> {
    if (!Number.isInteger(timeoutSeconds) || timeoutSeconds < 1) {
      // The kubelet answers a non-integer with 404 and ignores 0 (its CRI default applies).
      throw new Error(`the checkpoint timeout must be a whole number of seconds ≥ 1, got ${timeoutSeconds}`);
    }
    const target = `${namespace}/${pod}/${container}`;
    const url = new URL(`/checkpoint/${[namespace, pod, container].map(encodeURIComponent).join('/')}`, this.base);
    url.searchParams.set('timeout', String(timeoutSeconds));
    const log = this.options.logger.child({ kubelet: this.base.origin, container: target });
    if (signal?.aborted) throw this.aborted(signal);

    const [token, ca] = await Promise.all([this.readToken(), this.readCa()]);
    const deadlineMs = timeoutSeconds * 1000 + this.marginMs;
    const start = performance.now();
    log.debug({ timeoutSeconds }, 'asking the kubelet for a checkpoint');
    const answer = await this.post(url, token, ca, deadlineMs, timeoutSeconds, signal);
    const durationMs = performance.now() - start;
    const archivePath = await this.check(answer, target);
    log.info({ archive: archivePath, durationMs: Math.round(durationMs) }, 'the kubelet checkpointed the container');
    return { archivePath, durationMs };
  }

  private async readToken(): Promise<string> {
    const { tokenFile } = this.options;
    let token: string;
    try {
      token = (await readFile(tokenFile, 'utf8')).trim();
    } catch (error) {
      throw new KubeletError('local', `cannot read the service-account token ${tokenFile} (${(error as NodeJS.ErrnoException).code ?? String(error)}): mount the projected service-account token there`, { cause: error });
    }
    if (token === '') throw new KubeletError('local', `the service-account token file ${tokenFile} is empty: mount the projected service-account token there`);
    return token;
  }

  private async readCa(): Promise<string | undefined> {
    const { caFile } = this.options;
    if (caFile === undefined) return undefined;
    try {
      return await readFile(caFile, 'utf8');
    } catch (error) {
      throw new KubeletError('local', `cannot read the kubelet CA file ${caFile} (${(error as NodeJS.ErrnoException).code ?? String(error)}): mount the CA that signed the kubelet's serving certificate there`, { cause: error });
    }
  }

  private post(url: URL, token: string, ca: string | undefined, deadlineMs: number, timeoutSeconds: number, signal: AbortSignal | undefined): Promise<Answer> {
    const { caFile, insecureSkipTlsVerify } = this.options;
    return new Promise<Answer>((resolve, reject) => {
      const req = https.request(url, {
        method: 'POST',
        agent: false,
        ca,
        rejectUnauthorized: insecureSkipTlsVerify !== true,
        headers: { authorization: `Bearer ${token}`, accept: 'application/json', 'content-length': 0 },
      });
      let settled = false;
      const finish = (error: Error | undefined, answer?: Answer) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        if (error) {
          req.destroy();
          reject(error);
        } else {
          resolve(answer!);
        }
      };
      const timer = setTimeout(() => {
        finish(
          new KubeletError(
            'timeout',
            `the kubelet at ${this.base.origin} did not answer the checkpoint within ${(deadlineMs / 1000).toFixed(1)} s (timeout ${timeoutSeconds} s + margin): ` +
              'the dump may still be running on the node; raise the checkpoint timeout if the container is large, or look at the kubelet and CRI-O logs',
          ),
        );
      }, deadlineMs);
      const onAbort = () => finish(this.aborted(signal!));
      signal?.addEventListener('abort', onAbort, { once: true });
      if (signal?.aborted) onAbort(); // while the token was being read

      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          if (size < MAX_BODY_BYTES) chunks.push(chunk);
          size += chunk.length;
        });
        res.on('end', () => finish(undefined, { status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8').slice(0, MAX_BODY_BYTES).trim() }));
        res.on('error', (error) => finish(this.transportError(error, caFile)));
      });
      req.on('error', (error) => finish(this.transportError(error, caFile)));
      req.end();
    });
  }

  private aborted(signal: AbortSignal): KubeletError {
    const why = signal.reason instanceof Error ? `: ${signal.reason.message}` : '';
    return new KubeletError('aborted', `the checkpoint request to the kubelet at ${this.base.origin} was aborted${why}`, { cause: signal.reason });
  }

  private transportError(error: Error, caFile: string | undefined): KubeletError {
    const code = (error as NodeJS.ErrnoException).code ?? '';
    const origin = this.base.origin;
    // Node's own text for these suggests --use-system-ca, which is not the fix for a kubelet CA.
    if (TLS_TRUST_CODES.has(code)) {
      const trusted = caFile === undefined ? 'the system CAs' : `the CA in ${caFile}`;
      return new KubeletError('tls', `the kubelet's certificate at ${origin} is not signed by ${trusted} (${code}): point the kubelet CA file at the CA that signed the kubelet's serving certificate`, { cause: error });
    }
    if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
      return new KubeletError('tls', `the kubelet's certificate does not name ${this.base.hostname} (${error.message}): call the kubelet at an address its serving certificate covers (the node's InternalIP)`, { cause: error });
    }
    if (TLS_OTHER_CODES.has(code)) {
      return new KubeletError('tls', `TLS with the kubelet at ${origin} failed (${code}: ${error.message})`, { cause: error });
    }
    if (UNREACHABLE_CODES.has(code)) {
      return new KubeletError('unreachable', `cannot reach the kubelet at ${origin} (${code}): check that the kubelet URL is this node's InternalIP and port 10250 and that the kubelet runs`, { cause: error });
    }
    return new KubeletError('unreachable', `the checkpoint request to the kubelet at ${origin} failed: ${error.message}`, { cause: error });
  }

  private async check({ status, body }: Answer, target: string): Promise<string> {
    const said = body === '' ? '' : `: ${body}`;
    switch (status) {
      case 200:
        return archivePathOf(body, target);
      case 401:
        throw new KubeletError('unauthorized', `the kubelet did not accept the token from ${this.options.tokenFile} (401${said}): ${RBAC_FIX}, and check that the kubelet authenticates bearer tokens (authentication.webhook.enabled)`, { status, body });
      case 403:
        throw new KubeletError('forbidden', `the kubelet refused to checkpoint ${target} (403${said}): ${RBAC_FIX}`, { status, body });
      case 404:
        throw new KubeletError('not-found', `the kubelet cannot checkpoint ${target} (404${said}): pod or container unknown to the kubelet, or the ContainerCheckpoint feature gate is off`, { status, body });
      case 500: {
        // containerd's message names CRIU's log but leaves out what CRIU said, which is the cause.
        const criuLines = body === '' ? undefined : await criuErrorLinesFor(body, this.options.criuLogDirs ?? []);
        const criuSaid = criuLines === undefined ? '' : `; CRIU said: ${criuLines.join('; ')}`;
        throw new KubeletError('runtime', `the container runtime failed to checkpoint: ${body || `(no message) for ${target}`}${criuSaid}`, { status, body });
      }
      default:
        throw new KubeletError('unexpected', `unexpected answer ${status} from the kubelet at ${this.base.origin} to the checkpoint of ${target}${said}`, { status, body });
    }
  }
}

function archivePathOf(body: string, target: string): string {
  let items: unknown;
  try {
    items = (JSON.parse(body) as { items?: unknown }).items;
  } catch {
    items = undefined;
  }
  if (!Array.isArray(items) || typeof items[0] !== 'string' || items[0] === '') {
    throw new KubeletError('unexpected', `the kubelet answered the checkpoint of ${target} with 200 but no archive path (expected {"items":["<path>"]}): ${body.slice(0, 200)}`, { status: 200, body });
  }
  return items[0];
}
