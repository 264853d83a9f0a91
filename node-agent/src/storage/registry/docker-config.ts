/**
 * Credentials from a docker config JSON: the `.dockerconfigjson` of a
 * kubernetes.io/dockerconfigjson Secret, `{"auths": {"host:port": {"auth": base64(user:pass)}}}`
 * or with `username`/`password` fields instead of `auth`.
 */

export interface RegistryCredentials {
  username: string;
  password: string;
}

interface AuthEntry {
  auth?: unknown;
  username?: unknown;
  password?: unknown;
}

/** `https://host:port/v1/` and `host:port` both name `host:port` (keys are written either way). */
function registryOfKey(key: string): string {
  return key.replace(/^[a-z]+:\/\//i, '').replace(/\/.*$/, '').toLowerCase();
}

function parse(config: string | object, source: string): Record<string, AuthEntry> {
  let value: unknown = config;
  if (typeof config === 'string') {
    try {
      value = JSON.parse(config);
    } catch (err) {
      throw new Error(`${source} is not JSON: give the content of a kubernetes.io/dockerconfigjson Secret's .dockerconfigjson (${(err as Error).message})`, { cause: err });
    }
  }
  const auths = (value as { auths?: unknown } | null)?.auths;
  if (typeof auths !== 'object' || auths === null || Array.isArray(auths)) {
    throw new Error(`${source} has no "auths" object: expected {"auths": {"host:port": {"auth": "<base64 user:password>"}}}`);
  }
  return auths as Record<string, AuthEntry>;
}

/**
 * The credentials the config holds for `registry` (`host[:port]`), or undefined when it has none.
 * Throws, naming the registry, when the entry exists but cannot be read.
 */
export function credentialsFor(config: string | object, registry: string, source = 'the docker config'): RegistryCredentials | undefined {
  const auths = parse(config, source);
  const wanted = registry.toLowerCase();
  const key = Object.keys(auths).find((k) => registryOfKey(k) === wanted);
  if (key === undefined) return undefined;
  const entry = auths[key];
  if (typeof entry.username === 'string' && typeof entry.password === 'string' && entry.username !== '') {
    return { username: entry.username, password: entry.password };
  }
  if (typeof entry.auth === 'string' && entry.auth !== '') {
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon > 0) return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }
  throw new Error(`${source}: the entry "${key}" for ${registry} has neither "auth" (base64 of user:password) nor "username" and "password"`);
}
