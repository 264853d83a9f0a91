/**
 * Authorization for one registry, learnt from its 401 challenges as docker and containerd do:
 * `Basic` sends the push secret's credentials; `Bearer` asks the challenge's realm for a token
 * (with the credentials as Basic, if any) for the repository scope an operation needs, and
 * caches it until shortly before it expires. Credentials are only ever sent after the registry
 * asked for them.
 */
import { blockerOfHttpStatus, StoreError } from '../checkpoint-store.ts';
import type { AuthChallenge } from './auth-challenge.ts';
import type { RegistryCredentials } from './docker-config.ts';
import type { HttpTransport } from './http-transport.ts';
import { NetworkError } from './http-transport.ts';

/** Repository actions in token scopes. */
export type RepositoryAction = 'pull' | 'push' | 'delete';

interface CachedToken {
  header: string;
  expiresAt: number;
}

/** Tokens are renewed this long before they expire (a chunk upload must not start on a dying one). */
const EXPIRY_MARGIN_MS = 10_000;
/** The distribution token spec's default lifetime when the answer names none. */
const DEFAULT_TOKEN_SECONDS = 60;

export interface RegistryAuthOptions {
  registry: string;
  credentials?: RegistryCredentials;
  /**
   * A token realm over plain HTTP is taken only for a registry the operator marked insecure:
   * the credentials would cross the network in the clear.
   */
  allowPlainHttpRealm?: boolean;
  transport: HttpTransport;
  now?: () => number;
}

export class RegistryAuth {
  private readonly registry: string;
  private readonly credentials: RegistryCredentials | undefined;
  private readonly allowPlainHttpRealm: boolean;
  private readonly transport: HttpTransport;
  private readonly now: () => number;
  private scheme: 'none' | 'basic' | 'bearer' = 'none';
  private realm: URL | undefined;
  private service: string | undefined;
  private readonly tokens = new Map<string, CachedToken>();

  constructor(options: RegistryAuthOptions) {
    this.registry = options.registry;
    this.credentials = options.credentials;
    this.allowPlainHttpRealm = options.allowPlainHttpRealm ?? false;
    this.transport = options.transport;
    this.now = options.now ?? Date.now;
  }

  /** What to send as `Authorization` for this scope now, fetching a token if one is due. */
  async header(scope: string, signal?: AbortSignal): Promise<string | undefined> {
    if (this.scheme === 'basic') return this.basic();
    if (this.scheme !== 'bearer') return undefined;
    const cached = this.tokens.get(scope);
    if (cached !== undefined && cached.expiresAt > this.now()) return cached.header;
    return this.fetchToken([scope], signal);
  }

  /**
   * Takes in a 401's challenge. True when a retry with new authorization may succeed, false
   * when it cannot (no credentials, an unknown scheme, or the same refusal again).
   */
  async accept(challenge: AuthChallenge | undefined, scope: string, signal?: AbortSignal): Promise<boolean> {
    if (challenge?.scheme === 'basic') {
      if (this.credentials === undefined || this.scheme === 'basic') return false;
      this.scheme = 'basic';
      return true;
    }
    if (challenge?.scheme === 'bearer' && challenge.params.realm !== undefined) {
      this.scheme = 'bearer';
      this.realm = this.realmUrl(challenge.params.realm);
      this.service = challenge.params.service;
      // The registry names the scope it wants (for a delete it may differ from ours); ask for both.
      const wanted = (challenge.params.scope ?? '').split(' ').filter((s) => s !== '' && !covers(scope, s));
      const scopes = [scope, ...wanted];
      await this.fetchToken(scopes, signal);
      return true;
    }
    return false;
  }

  /** Why a request still failed with 401, for the error message. */
  describeRefusal(): string {
    if (this.credentials === undefined) return 'the registry requires authentication and the push secret has no credentials for it';
    // Not the user name: this message goes into the Checkpoint's status, which the namespace reads.
    if (this.scheme === 'basic') return 'the registry refused the credentials of the push secret';
    if (this.scheme === 'bearer') return `the registry refused the token issued by ${this.realm?.origin ?? 'its token service'}`;
    return 'the registry asked for an authentication scheme this client does not speak';
  }

  private basic(): string | undefined {
    if (this.credentials === undefined) return undefined;
    return `Basic ${Buffer.from(`${this.credentials.username}:${this.credentials.password}`).toString('base64')}`;
  }

  private realmUrl(realm: string): URL {
    let url: URL;
    try {
      url = new URL(realm);
    } catch (err) {
      throw new StoreError(`registry ${this.registry} named a token realm that is not a URL: "${realm}"`, { retriable: false, blocker: 'rejected', cause: err });
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      throw new StoreError(`registry ${this.registry} named a token realm with an unsupported scheme: ${realm}`, { retriable: false, blocker: 'rejected' });
    }
    if (url.protocol === 'http:' && !this.allowPlainHttpRealm) {
      throw new StoreError(
        `registry ${this.registry} named a token realm over plain HTTP (${url.origin}): the push secret's credentials would cross the network in the clear. ` +
          'Serve the token service over HTTPS, or set --registry-insecure for a registry on a trusted network',
        { retriable: false, blocker: 'rejected' },
      );
    }
    return url;
  }

  private async fetchToken(scopes: string[], signal?: AbortSignal): Promise<string> {
    const realm = this.realm;
    if (realm === undefined) throw new Error('fetchToken before a Bearer challenge');
    const url = new URL(realm.href);
    if (this.service !== undefined) url.searchParams.set('service', this.service);
    for (const scope of scopes) url.searchParams.append('scope', scope);
    const basic = this.basic();
    let res;
    try {
      res = await this.transport.request({ method: 'GET', url, headers: basic === undefined ? {} : { authorization: basic }, signal, maxResponseBytes: 256 * 1024 });
    } catch (err) {
      if (err instanceof NetworkError) throw new StoreError(`cannot reach the token service ${realm.origin} of registry ${this.registry}: ${err.message}`, { retriable: !err.tls, blocker: err.tls ? 'rejected' : undefined, cause: err });
      throw err;
    }
    const who = this.credentials === undefined ? 'anonymously' : `as user "${this.credentials.username}"`;
    if (res.status !== 200) {
      const retriable = res.status >= 500 || res.status === 429;
      const hint = res.status === 401 || res.status === 403 ? ': check the push secret\'s credentials for this registry' : '';
      throw new StoreError(`the token service ${realm.origin}${realm.pathname} of registry ${this.registry} refused a token for ${scopes.join(' ')} ${who}: HTTP ${res.status}${hint}`, { retriable, blocker: blockerOfHttpStatus(res.status) });
    }
    let answer: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      answer = JSON.parse(res.body.toString('utf8')) as typeof answer;
    } catch (err) {
      throw new StoreError(`the token service ${realm.origin} of registry ${this.registry} answered with something that is not JSON`, { retriable: true, cause: err });
    }
    const token = typeof answer.token === 'string' && answer.token !== '' ? answer.token : answer.access_token;
    if (typeof token !== 'string' || token === '') {
      throw new StoreError(`the token service ${realm.origin} of registry ${this.registry} answered without a token`, { retriable: false });
    }
    const seconds = typeof answer.expires_in === 'number' && answer.expires_in > 0 ? answer.expires_in : DEFAULT_TOKEN_SECONDS;
    const cached = { header: `Bearer ${token}`, expiresAt: this.now() + Math.max(seconds * 1000 - EXPIRY_MARGIN_MS, 1000) };
    for (const scope of scopes) this.tokens.set(scope, cached);
    return cached.header;
  }
}

/** True when scope `ours` grants all that `theirs` asks (`repository:a:push,pull` is covered by `repository:a:pull,push`). */
function covers(ours: string, theirs: string): boolean {
  const split = (scope: string) => {
    const at = scope.lastIndexOf(':');
    return { resource: scope.slice(0, at), actions: new Set(scope.slice(at + 1).split(',')) };
  };
  const a = split(ours);
  const b = split(theirs);
  return a.resource === b.resource && [...b.actions].every((action) => a.actions.has(action));
}

export function repositoryScope(name: string, actions: readonly RepositoryAction[]): string {
  return `repository:${name}:${actions.join(',')}`;
}
