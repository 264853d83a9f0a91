/**
 * The `WWW-Authenticate` challenge of a 401 (RFC 7235): `Basic realm="..."` or
 * `Bearer realm="https://auth/token",service="registry",scope="repository:a/b:pull,push"`.
 * Values are quoted strings that may contain commas (a scope with several actions), so a
 * split on commas would not do.
 */

export interface AuthChallenge {
  /** Lowercase: `basic`, `bearer`, ... */
  scheme: string;
  params: Record<string, string>;
}

export function parseAuthChallenge(header: string | undefined): AuthChallenge | undefined {
  if (header === undefined) return undefined;
  const match = /^\s*([A-Za-z][A-Za-z0-9._~+/-]*)\s*(.*)$/s.exec(header);
  if (!match) return undefined;
  const params: Record<string, string> = {};
  const rest = match[2];
  const param = /\s*([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*(?:,|$)/gy;
  for (let m = param.exec(rest); m !== null && m[0] !== ''; m = param.exec(rest)) {
    params[m[1].toLowerCase()] = m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : m[3];
  }
  return { scheme: match[1].toLowerCase(), params };
}
