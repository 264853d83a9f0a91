/**
 * Debian's docker-registry (distribution 2.8) run inside the lab on a free 127.0.0.1 port, with
 * its storage in a temporary directory and deletes enabled: the registry the registry store's
 * tests and benchmark push to. Optionally with htpasswd Basic auth (bcrypt hashes from the lab
 * root's perl: libxcrypt's crypt() does bcrypt, and the lab has no htpasswd) or with token auth
 * against a token service the test runs (registry-token-server.ts).
 *
 * The registry is spawned through nsenter rather than lab.exec, which waits for its command to
 * end: a server needs a handle that stops it, and that notices when it dies at start.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import https from 'node:https';
import { mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Lab } from './open-lab.ts';
import { freePort } from '../free-port.ts';

export interface LabRegistryTokenAuth {
  /** The token service's URL (it must be reachable from the host network: 127.0.0.1). */
  realm: string;
  service: string;
  issuer: string;
  /** PEM of the certificate(s) token signatures are checked against. */
  rootCertBundle: string;
}

export interface LabRegistryOptions {
  /** Require Basic auth with these users (name → password), checked against an htpasswd file. */
  users?: Record<string, string>;
  /** Require Bearer tokens from this token service. */
  token?: LabRegistryTokenAuth;
  /** Serve https with this certificate and key (PEM); plain http when absent. */
  tls?: { cert: string; key: string };
  /** distribution's log level (default warn); the log is at `logFile`. */
  logLevel?: 'error' | 'warn' | 'info' | 'debug';
}

export interface LabRegistry {
  /** `127.0.0.1:<port>`: the host part of repository references. */
  host: string;
  port: number;
  /** `http://127.0.0.1:<port>` (https with the tls option) */
  url: string;
  /** The registry's storage root on the host. */
  dataDir: string;
  logFile: string;
  /** The repository's blob file as the registry stores it (for checks that go around the API). */
  blobPath(digest: string): string;
  log(): Promise<string>;
  /** Stops the registry and deletes its storage. */
  stop(): Promise<void>;
}

const BCRYPT_ALPHABET = './ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** bcrypt's own base64 of 16 random bytes: the 22 salt characters. */
function bcryptSalt(): string {
  const bytes = randomBytes(16);
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += BCRYPT_ALPHABET[(value >> bits) & 63];
    }
  }
  if (bits > 0) out += BCRYPT_ALPHABET[(value << (6 - bits)) & 63];
  return out.slice(0, 22);
}

async function htpasswdLine(lab: Lab, user: string, password: string): Promise<string> {
  // Cost 4, the lowest: the registry checks the hash on every request.
  const result = await lab.exec(['perl', '-e', 'print crypt($ARGV[0], $ARGV[1])', password, `$2b$04$${bcryptSalt()}`]);
  if (result.code !== 0 || !result.stdout.startsWith('$2b$04$')) throw new Error(`cannot make a bcrypt hash with the lab's perl crypt(): ${result.stderr}${result.stdout}`);
  return `${user}:${result.stdout}`;
}

/** Whether the registry answers /v2/ yet (a readiness probe: it trusts any certificate). */
function answers(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const get = url.startsWith('https:') ? https.get : http.get;
    const req = get(`${url}/v2/`, { rejectUnauthorized: false, timeout: 1_000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200 || res.statusCode === 401);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
  });
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

async function startOnce(lab: Lab, dir: string, options: LabRegistryOptions): Promise<LabRegistry | 'port-taken'> {
  const port = await freePort();
  const dataDir = join(dir, 'data');
  const logFile = join(dir, 'registry.log');
  const config: Record<string, unknown> = {
    version: '0.1',
    log: { level: options.logLevel ?? 'warn', accesslog: { disabled: true } },
    storage: {
      filesystem: { rootdirectory: lab.hostPath(dataDir) },
      delete: { enabled: true },
      // No background purge of upload sessions while a test or benchmark holds one.
      maintenance: { uploadpurging: { enabled: false } },
    },
    http: { addr: `127.0.0.1:${port}`, secret: randomBytes(16).toString('hex') },
  };
  if (options.tls !== undefined) {
    await writeFile(join(dir, 'tls.crt'), options.tls.cert);
    await writeFile(join(dir, 'tls.key'), options.tls.key);
    (config.http as Record<string, unknown>).tls = { certificate: lab.hostPath(join(dir, 'tls.crt')), key: lab.hostPath(join(dir, 'tls.key')) };
  }
  if (options.users !== undefined) {
    const lines = await Promise.all(Object.entries(options.users).map(([user, password]) => htpasswdLine(lab, user, password)));
    await writeFile(join(dir, 'htpasswd'), `${lines.join('\n')}\n`);
    config.auth = { htpasswd: { realm: 'cryo-lab-registry', path: lab.hostPath(join(dir, 'htpasswd')) } };
  } else if (options.token !== undefined) {
    await writeFile(join(dir, 'token-roots.pem'), options.token.rootCertBundle);
    config.auth = { token: { realm: options.token.realm, service: options.token.service, issuer: options.token.issuer, rootcertbundle: lab.hostPath(join(dir, 'token-roots.pem')) } };
  }
  // JSON is YAML: no YAML writer needed.
  const configFile = join(dir, 'config.yml');
  await writeFile(configFile, JSON.stringify(config, null, 2));

  const log = await open(logFile, 'w');
  const argv = ['nsenter', `--mount=${lab.settings.nsPath}`, '--', '/usr/bin/env', '-i', 'PATH=/usr/sbin:/usr/bin:/sbin:/bin', 'docker-registry', 'serve', lab.hostPath(configFile)];
  const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', log.fd, log.fd] });
  await log.close();
  const url = `${options.tls === undefined ? 'http' : 'https'}://127.0.0.1:${port}`;
  const deadline = Date.now() + 15_000;
  while (!(await answers(url))) {
    if (child.exitCode !== null || child.signalCode !== null) {
      const text = await readFile(logFile, 'utf8');
      if (text.includes('address already in use')) return 'port-taken';
      throw new Error(`docker-registry exited at start (${child.exitCode ?? child.signalCode}):\n${text}`);
    }
    if (Date.now() > deadline) {
      await stopProcess(child);
      throw new Error(`docker-registry did not answer ${url}/v2/ within 15 s:\n${await readFile(logFile, 'utf8')}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  let stopped = false;
  return {
    host: `127.0.0.1:${port}`,
    port,
    url,
    dataDir,
    logFile,
    blobPath: (digest) => {
      const hex = digest.replace(/^sha256:/, '');
      return join(dataDir, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data');
    },
    log: () => readFile(logFile, 'utf8'),
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await stopProcess(child);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export async function startLabRegistry(lab: Lab, options: LabRegistryOptions = {}): Promise<LabRegistry> {
  if (options.users !== undefined && options.token !== undefined) throw new Error('a lab registry takes either users (htpasswd) or token auth, not both');
  for (let attempt = 1; ; attempt++) {
    const dir = await mkdtemp(join(tmpdir(), 'cryo-lab-registry-'));
    const started = await startOnce(lab, dir, options).catch(async (err: unknown) => {
      await rm(dir, { recursive: true, force: true });
      throw err;
    });
    if (started !== 'port-taken') return started;
    await rm(dir, { recursive: true, force: true });
    // Another process took the free port between our probe and the registry's bind.
    if (attempt >= 3) throw new Error('docker-registry found its port taken three times');
  }
}
