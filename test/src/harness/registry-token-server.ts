/**
 * Test helper: a token service for a registry configured with `auth: token` (distribution's
 * token authentication), so the Bearer flow is tested against a real registry that checks real
 * tokens. It issues RS256 JWTs with the signing certificate in the `x5c` header (the registry
 * trusts the certificate via its rootcertbundle), granting whatever a client with the right
 * Basic credentials asks for. It records each request (for assertions on the scopes asked).
 */
import { createPrivateKey, createSign, randomUUID, X509Certificate } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createCertificateAuthority } from '@cryo/common';

export interface TokenRequestRecord {
  user: string | undefined;
  service: string | null;
  scopes: string[];
  status: number;
}

export interface RegistryTokenServer {
  /** `http://127.0.0.1:<port>/token`: the registry's auth.token.realm. */
  realm: string;
  service: string;
  issuer: string;
  /** The signing certificate (PEM): the registry's auth.token.rootcertbundle. */
  certificate: string;
  requests: TokenRequestRecord[];
  close(): Promise<void>;
}

function base64url(data: string | Buffer): string {
  return Buffer.from(data).toString('base64url');
}

export async function startRegistryTokenServer(options: { users: Record<string, string>; service?: string; issuer?: string; expiresInSeconds?: number }): Promise<RegistryTokenServer> {
  const service = options.service ?? 'cryo-lab-registry';
  const issuer = options.issuer ?? 'cryo-test-token-issuer';
  const pair = await createCertificateAuthority({ commonName: 'cryo-test-token-signer' });
  const key = createPrivateKey(pair.key);
  const x5c = new X509Certificate(pair.cert).raw.toString('base64');
  const requests: TokenRequestRecord[] = [];

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const [scheme, encoded] = (req.headers.authorization ?? '').split(' ');
    const [user, password] = scheme === 'Basic' ? Buffer.from(encoded ?? '', 'base64').toString('utf8').split(/:(.*)/s) : [undefined, undefined];
    const scopes = url.searchParams.getAll('scope');
    const record: TokenRequestRecord = { user, service: url.searchParams.get('service'), scopes, status: 200 };
    requests.push(record);
    if (url.pathname !== '/token' || user === undefined || options.users[user] !== password) {
      record.status = 401;
      res.writeHead(401, { 'content-type': 'application/json', 'www-authenticate': 'Basic realm="cryo-test-token"' }).end('{"details":"bad credentials"}');
      return;
    }
    // scope = repository:<name>:<actions>; the name may itself contain colons (a port), so split from both ends.
    const access = scopes.map((scope) => {
      const parts = scope.split(':');
      return { type: parts[0], name: parts.slice(1, -1).join(':'), actions: parts.at(-1)!.split(',') };
    });
    const now = Math.floor(Date.now() / 1000);
    const expiresIn = options.expiresInSeconds ?? 300;
    const header = { typ: 'JWT', alg: 'RS256', x5c: [x5c] };
    // distribution 2.8 reads `aud` as a single string.
    const claims = { iss: issuer, sub: user, aud: service, exp: now + expiresIn, nbf: now - 10, iat: now, jti: randomUUID(), access };
    const signingInput = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`;
    const signature = createSign('RSA-SHA256').update(signingInput).sign(key);
    const token = `${signingInput}.${base64url(signature)}`;
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token, access_token: token, expires_in: expiresIn, issued_at: new Date(now * 1000).toISOString() }));
  });
  server.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    realm: `http://127.0.0.1:${port}/token`,
    service,
    issuer,
    certificate: pair.cert,
    requests,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
