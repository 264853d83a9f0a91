/**
 * HTTP(S) requests to one registry over keep-alive connections, with node:http(s) (no
 * dependency): a request body is either a small buffer or a stream made afresh for each attempt
 * (a chunk of the archive file), and a response body is read into memory only up to a bound,
 * since registries answer with small JSON documents (manifests, errors, tag lists).
 */
import http from 'node:http';
import https from 'node:https';
import type { IncomingHttpHeaders } from 'node:http';

export interface HttpRequest {
  method: string;
  url: URL;
  headers?: Record<string, string>;
  /** A buffer, or a writer that writes exactly `headers['content-length']` bytes (called afresh for each request). */
  body?: Buffer | BodyWriter;
  signal?: AbortSignal;
  /** Response bodies beyond this are cut off (default 4 MiB: a manifest may be that large). */
  maxResponseBytes?: number;
}

/**
 * Where a streamed body goes: `write` resolves once the chunk has been handed to the kernel, so
 * the writer may then reuse its buffer. A writer that keeps a few buffers in flight this way
 * bounds the memory of an upload exactly, whatever the garbage collector does.
 */
export interface BodySink {
  write(chunk: Buffer): Promise<void>;
}

export type BodyWriter = (sink: BodySink) => Promise<void>;

export interface HttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export interface HttpTransportOptions {
  /** PEM CA bundle trusted besides the system's roots. */
  ca?: string | Buffer;
  /** Socket inactivity limit (the registry may take a while to verify a large blob at the final PUT). */
  timeoutMs?: number;
  maxSockets?: number;
}

// OpenSSL's verification failures as Node reports them, and its handshake errors.
const TLS_CODES = /^(?:ERR_TLS_|ERR_SSL_|EPROTO$|CERT_|UNABLE_TO_|SELF_SIGNED_|DEPTH_ZERO_|HOSTNAME_MISMATCH)/;

/** A network-level failure: connection refused or reset, timeout, TLS error. */
export class NetworkError extends Error {
  override name = 'NetworkError';
  readonly code: string | undefined;
  /**
   * The TLS handshake failed (an untrusted or mismatched certificate, or no TLS at all on the
   * other end): trying again will not help, a configuration change will.
   */
  readonly tls: boolean;
  constructor(message: string, cause: unknown) {
    const code = (cause as NodeJS.ErrnoException | undefined)?.code;
    const tls = code !== undefined && TLS_CODES.test(code);
    const hint = !tls
      ? ''
      : code === 'EPROTO' || code?.startsWith('ERR_SSL_')
        ? ' (is it a plain-http registry? then set insecure)'
        : ' (if the registry\'s certificate comes from a private CA, give that CA as caBundle)';
    super(`${message.replace(/\s+$/, '')}${hint}`, { cause });
    this.code = code;
    this.tls = tls;
  }
}

const DEFAULT_MAX_RESPONSE = 4 * 1024 * 1024;

function abortReason(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new Error(`aborted: ${String(signal.reason)}`);
}

/** A socket error's message without OpenSSL's source locations or Node's advice on system CAs. */
function readable(err: unknown): string {
  const message = String((err as Error).message).split('\n')[0];
  const openssl = /SSL routines:[^:]*:([^:]+)/.exec(message);
  if (openssl) return `${message.split(' ').slice(0, 2).join(' ')} (TLS: ${openssl[1]})`;
  return message.replace(/; if the root CA is installed locally.*$/, '');
}

export class HttpTransport {
  private readonly httpAgent: http.Agent;
  private readonly httpsAgent: https.Agent;
  private readonly timeoutMs: number;

  constructor(options: HttpTransportOptions = {}) {
    const common = { keepAlive: true, maxSockets: options.maxSockets ?? 8, scheduling: 'lifo' as const };
    this.httpAgent = new http.Agent(common);
    this.httpsAgent = new https.Agent({ ...common, ...(options.ca === undefined ? {} : { ca: options.ca }) });
    this.timeoutMs = options.timeoutMs ?? 60_000;
  }

  /**
   * Sends the request and reads the response. It settles only once a streamed body's writer has
   * finished too: the next attempt reuses the writer's buffers. A response that comes before the
   * body is all sent (an early 401 or 413) ends the request there.
   */
  request(req: HttpRequest): Promise<HttpResponse> {
    const { url } = req;
    const isHttps = url.protocol === 'https:';
    if (!isHttps && url.protocol !== 'http:') return Promise.reject(new Error(`unsupported URL scheme in ${url.href}`));
    const limit = req.maxResponseBytes ?? DEFAULT_MAX_RESPONSE;
    const networkError = (err: unknown) => (req.signal?.aborted ? abortReason(req.signal) : new NetworkError(`${req.method} ${url.origin}${url.pathname}: ${readable(err)}`, err));
    const options = { method: req.method, headers: req.headers, agent: isHttps ? this.httpsAgent : this.httpAgent, signal: req.signal };
    const outgoing = (isHttps ? https : http).request(url, options);
    outgoing.setTimeout(this.timeoutMs, () => outgoing.destroy(new Error(`no progress for ${this.timeoutMs} ms`)));
    let bodySent = false;

    const response = new Promise<HttpResponse>((resolve, reject) => {
      let settled = false;
      outgoing.on('error', (err) => {
        // Once a response has come, it decides (a server may reset the connection after an early answer).
        if (!settled) {
          settled = true;
          reject(networkError(err));
        }
      });
      outgoing.on('response', (res) => {
        const chunks: Buffer[] = [];
        let length = 0;
        res.on('data', (chunk: Buffer) => {
          if (length < limit) chunks.push(chunk.subarray(0, limit - length));
          length += chunk.length;
        });
        const done = () => {
          if (settled) return;
          settled = true;
          if (req.signal?.aborted) {
            reject(abortReason(req.signal));
            return;
          }
          if (!bodySent) outgoing.destroy();
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) });
        };
        res.on('end', done);
        res.on('error', done);
        res.on('close', done);
      });
    });

    const { body } = req;
    if (body === undefined || Buffer.isBuffer(body)) {
      bodySent = true;
      outgoing.end(body);
      return response;
    }
    // Writes still waiting for their callback fail when the request goes away without calling them.
    const pending = new Set<(err: Error) => void>();
    // Errors the sink gave the writer: the request's failure, which the response side reports.
    const fromSink = new WeakSet<Error>();
    const sinkError = (err: Error) => (fromSink.add(err), err);
    outgoing.once('close', () => {
      for (const reject of pending) reject(sinkError(new Error('the request closed before its body was sent')));
    });
    const sink: BodySink = {
      write: (chunk) =>
        new Promise<void>((resolve, reject) => {
          if (outgoing.destroyed) {
            reject(sinkError(new Error('the request closed before its body was sent')));
            return;
          }
          pending.add(reject);
          outgoing.write(chunk, (err) => {
            pending.delete(reject);
            if (err) reject(sinkError(err));
            else resolve();
          });
        }),
    };
    const written = Promise.resolve()
      .then(() => body(sink))
      .then(
        () => {
          bodySent = true;
          outgoing.end();
        },
        (err: unknown) => {
          // The writer's own failure (reading the file), or the request's (then the response has it).
          outgoing.destroy(err as Error);
          return err;
        },
      );
    return Promise.allSettled([response, written]).then(([answer, writer]) => {
      if (answer.status === 'fulfilled') return answer.value;
      // A writer that failed on its own (reading the file) tells more than the socket error it caused.
      const own = writer.status === 'fulfilled' ? writer.value : undefined;
      throw own instanceof Error && !fromSink.has(own) && !req.signal?.aborted ? own : answer.reason;
    });
  }

  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }
}
