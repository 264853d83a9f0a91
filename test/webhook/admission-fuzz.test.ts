/**
 * Adversarial AdmissionReviews against the real webhook (generated TLS, Checkpoint cache fed by
 * the shared fake kube-apiserver), over real HTTPS, in-process. Seeded, so every run sends the
 * same bodies: a failure names its case, and `CRYO_FUZZ_SEED` / `CRYO_FUZZ_CASES` explore further.
 *
 * The cases: recorded reviews mutated one to three times (nulls, deleted fields, wrong types,
 * numbers as strings, strings up to 3 MB, nesting up to 1,500,000 deep, arrays up to 100,000
 * long, odd unicode, `__proto__` / `constructor` keys, Checkpoint names that do not exist, a
 * broken cryo.dev/original-images record), the same text mangled (duplicate keys, truncation,
 * flipped bytes, invalid UTF-8, a BOM), random JSON, the wrong content type, and bodies over
 * --max-body-bytes. Mostly small: the large sizes are rare, so that the run takes some 20 s.
 *
 * What must hold: no answer is 500 or above; a 200 is an AdmissionReview answering the uid that
 * was sent, its patch (if any) applies to the pod sent; anything else is a 4xx with a message;
 * the server answers a valid review correctly afterwards and logged no failure; RSS and the heap
 * that survives a full GC stayed within bounds. Which unknown-Checkpoint cases get 404 and which
 * 503 (the read limit) depends on timing; everything else is the same every run.
 */
import { readFileSync } from 'node:fs';
import https from 'node:https';
import { Writable } from 'node:stream';
import v8 from 'node:v8';
import vm from 'node:vm';
import { pino } from 'pino';
import { applyPatch, type Operation } from 'rfc6902';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import type { V1Secret } from '@kubernetes/client-node';
import { annotations } from '@cryo/common';
import { readWebhookConfig, startWebhook, type RunningWebhook } from '@cryo/webhook';
import {
  FakeKubeApiServer,
  loadAdmissionReview,
  loadCheckpoint,
  type RecordedAdmissionReview,
  httpsRequest,
  postJson,
  type HttpsTarget,
  waitFor,
} from '@cryo/test';

const SEED = Number(process.env.CRYO_FUZZ_SEED ?? 0x5eed_c0de);
const CASES = Number(process.env.CRYO_FUZZ_CASES ?? 10_300);
const CONCURRENCY = 8;
/** Growth allowed after a warm-up (measured: see the test's output and the comment at the check). */
const MAX_RSS_GROWTH_MIB = 320;
const MAX_RETAINED_HEAP_GROWTH_MIB = 32;
const SERVERNAME = 'cryo-webhook.cryo-system.svc';
const FIXTURES = [
  'plain-pod', 'hooks-only-pod', 'restore-deployment-pod', 'restore-dry-run-pod', 'restore-hooked-copy-pod',
  'restore-named-pod', 'restore-pod-with-node-affinity', 'restore-with-hooks-pod',
];
const CHECKPOINTS = ['succeeded-registry', 'succeeded-with-hooks', 'succeeded-local-directory', 'succeeded-shared-directory', 'running'];

// --- A seeded generator: mulberry32, one stream per case, so concurrency never changes a body.

class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  next(): number {
    this.state = (this.state + 0x6d2b79f5) | 0;
    let t = Math.imul(this.state ^ (this.state >>> 15), 1 | this.state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  /** A size spread over orders of magnitude, from `min` to `max`. */
  size(min: number, max: number): number {
    return Math.floor(min * Math.pow(max / min, this.next()));
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Container = Json[] | { [key: string]: Json };
const isContainer = (v: unknown): v is Container => typeof v === 'object' && v !== null;

const ODD_STRINGS = [
  '', ' ', '\u0000', '\ud800', '\udfff', 'a\ud83d', '\u202e\u202dreversed', '\ufeffbom', '💥'.repeat(50), 'e\u0301\u0301\u0301',
  '../../etc/passwd', '$(CRYO_POD_UID)', '/run/cryo', 'cryo-hooks', 'NaN', '-0', '1e309', 'true', 'null', '{}', '[]',
  '__proto__', 'constructor', 'toString', 'a'.repeat(64), 'App_1', 'app,log-shipper', '//'.repeat(20),
];
const PROTO_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf', '__defineGetter__'];
const NAMES = ['orders-api-warm', 'orders-api-hooked', 'orders-api-local', 'orders-api-shared', 'orders-api-running'];

function randomString(rng: Rng): string {
  switch (rng.int(4)) {
    case 0:
      return rng.pick(ODD_STRINGS);
    case 1:
      return Array.from({ length: rng.int(20) }, () => String.fromCharCode(rng.int(0x10000))).join('');
    case 2:
      return rng.pick(NAMES) + (rng.chance(0.5) ? `-${rng.int(1_000_000)}` : '');
    default:
      return rng.next().toString(36).slice(2);
  }
}

function randomJson(rng: Rng, budget = 4): Json {
  const r = rng.int(budget > 0 ? 9 : 6);
  switch (r) {
    case 0:
      return null;
    case 1:
      return rng.chance(0.5);
    case 2:
      return rng.pick([0, -1, 1.5, 1e308, -1e-308, 2 ** 53 + 1, rng.int(100)]);
    case 3:
    case 4:
    case 5:
      return randomString(rng);
    case 6:
    case 7:
      return Array.from({ length: rng.int(5) }, () => randomJson(rng, budget - 1));
    default: {
      const obj: { [key: string]: Json } = {};
      for (let i = rng.int(5); i > 0; i--) setOwn(obj, rng.chance(0.2) ? rng.pick(PROTO_KEYS) : randomString(rng), randomJson(rng, budget - 1));
      return obj;
    }
  }
}

/** An own, enumerable property even for `__proto__` (as JSON.parse makes it), never a prototype change. */
function setOwn(obj: { [key: string]: Json }, key: string, value: Json): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

/**
 * Nesting too deep for JSON.stringify (which recurses) is written as text: the value holds a
 * placeholder, replaced in the serialized body (see serialize). Generation is synchronous, so
 * one registry serves every case.
 */
const deepTexts = new Map<string, string>();

function deepText(rng: Rng, depth: number): string {
  const key = rng.pick(['a', 'matchExpressions', 'nodeAffinity', '__proto__']);
  const bottom = rng.chance(0.5) ? '"bottom"' : '{}';
  return rng.chance(0.5) ? `${'['.repeat(depth)}${bottom}${']'.repeat(depth)}` : `${`{"${key}":`.repeat(depth)}${bottom}${'}'.repeat(depth)}`;
}

function deep(rng: Rng, depth: number): Json {
  const placeholder = `@@deep-${deepTexts.size}@@`;
  deepTexts.set(placeholder, deepText(rng, depth));
  return placeholder;
}

function serialize(value: unknown): string {
  let text = JSON.stringify(value);
  for (const [placeholder, deepValue] of deepTexts) text = text.replace(`"${placeholder}"`, () => deepValue);
  deepTexts.clear();
  return text;
}

function typeConfused(rng: Rng, old: Json): Json {
  if (typeof old === 'string' && /^-?\d+(\.\d+)?$/.test(old)) return Number(old);
  if (typeof old === 'number') return String(old);
  if (typeof old === 'boolean') return rng.pick(['true', 'false', 1, 0]);
  if (Array.isArray(old)) return rng.pick<Json>([{}, old.length, JSON.stringify(old).slice(0, 50), old[0] ?? null, { ...old }]);
  if (isContainer(old)) return rng.pick<Json>([[], Object.values(old), 'object', 1, [old]]);
  return rng.pick<Json>([[], {}, 0, 'x', true]);
}

type Mutation = (rng: Rng, parent: Container, key: string | number) => void;

function set(parent: Container, key: string | number, value: Json): void {
  if (Array.isArray(parent)) parent[key as number] = value;
  else setOwn(parent, String(key), value);
}

const MUTATIONS: Array<[string, Mutation]> = [
  ['null', (_rng, parent, key) => set(parent, key, null)],
  ['delete', (_rng, parent, key) => {
    if (Array.isArray(parent)) parent.splice(key as number, 1);
    else delete parent[key];
  }],
  ['wrong-type', (rng, parent, key) => set(parent, key, typeConfused(rng, (parent as Record<string, Json>)[key]))],
  // Sizes spread over orders of magnitude; now and then one near or past the body limit.
  ['huge-string', (rng, parent, key) => set(parent, key, rng.pick(['x', '/', 'é', '\ud83d\ude00', 'a/']).repeat(rng.chance(0.005) ? rng.size(300_000, 3_000_000) : rng.size(1_000, 30_000)))],
  ['deep', (rng, parent, key) => set(parent, key, deep(rng, rng.chance(0.005) ? rng.size(100_000, 1_500_000) : rng.size(40, 8_000)))],
  ['huge-array', (rng, parent, key) => {
    const old = (parent as Record<string, Json>)[key];
    // Copies of a small item (an existing one, e.g. a container, when it is small).
    const first = Array.isArray(old) && old.length > 0 ? old[0] : undefined;
    const item = first !== undefined && JSON.stringify(first).length < 100 ? first : randomJson(rng, 2);
    const length = rng.chance(0.005) ? rng.size(20_000, 100_000) : rng.size(50, 1_000);
    set(parent, key, Array.from({ length }, (_, i) => (rng.chance(0.9) ? item : randomJson(rng, 1)) ?? i));
  }],
  ['unicode', (rng, parent, key) => set(parent, key, randomString(rng))],
  ['random', (rng, parent, key) => set(parent, key, randomJson(rng))],
  ['proto-key', (rng, parent, key) => {
    const target = (parent as Record<string, Json>)[key];
    const host = isContainer(target) && !Array.isArray(target) ? target : Array.isArray(parent) ? null : parent;
    if (host === null) return;
    setOwn(host, rng.pick(PROTO_KEYS), rng.pick<Json>([{ nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: {} } }, { polluted: true }, randomJson(rng)]));
  }],
  ['empty', (rng, parent, key) => set(parent, key, rng.pick<Json>([[], {}, '']))],
];

/**
 * Every (parent, key) in the value, found without recursion. Not inside a huge array: its items
 * are one shared object, and a huge string put into it would be repeated 20,000 times.
 */
function slots(root: Container): Array<[Container, string | number]> {
  const found: Array<[Container, string | number]> = [];
  const stack: Container[] = [root];
  while (stack.length > 0) {
    const node = stack.pop()!;
    if (Array.isArray(node) && node.length > 1000) continue;
    const keys: Array<string | number> = Array.isArray(node) ? node.map((_, i) => i) : Object.keys(node);
    for (const key of keys) {
      found.push([node, key]);
      const child = (node as Record<string, Json>)[key];
      if (isContainer(child)) stack.push(child);
    }
  }
  return found;
}

/** Targeted changes to what the webhook acts on: the annotations. */
function spoilAnnotations(rng: Rng, review: RecordedAdmissionReview): string {
  const meta = (review.request.object.metadata ??= {});
  const podAnnotations = (meta.annotations ??= {});
  switch (rng.int(4)) {
    case 0:
      podAnnotations[annotations.RESTORE_FROM] = randomString(rng);
      return 'restore-from';
    case 1:
      podAnnotations[annotations.HOOKS] = rng.pick(['enabled', 'disabled', randomString(rng)]);
      return 'hooks';
    case 2:
      podAnnotations[annotations.ORIGINAL_IMAGES] = rng.pick(['{', '[]', '{"app":1}', `{"app":${deepText(rng, 10_000)}}`, '{"__proto__":{"x":"y"}}']);
      return 'original-images';
    default:
      podAnnotations[annotations.RESTORE_FROM] = `unknown-${rng.int(1_000_000_000)}`;
      return 'unknown-checkpoint';
  }
}

interface FuzzCase {
  kind: string;
  body: string | Buffer;
  contentType: string;
}

function structured(rng: Rng): FuzzCase {
  const review = loadAdmissionReview(rng.pick(FIXTURES));
  deepTexts.clear();
  const applied: string[] = [];
  if (rng.chance(0.3)) applied.push(spoilAnnotations(rng, review));
  for (let n = 1 + rng.int(3); n > 0; n--) {
    // Mostly inside the pod; sometimes the envelope.
    const object: unknown = review.request?.object;
    const root = (rng.chance(0.8) && isContainer(object) ? object : review) as unknown as Container;
    const candidates = slots(root);
    if (candidates.length === 0) break;
    const [parent, key] = rng.pick(candidates);
    const [name, mutate] = rng.pick(MUTATIONS);
    mutate(rng, parent, key);
    applied.push(name);
  }
  return { kind: `mutated:${applied.join('+')}`, body: serialize(review), contentType: 'application/json' };
}

function mangled(rng: Rng): FuzzCase {
  const text = JSON.stringify(loadAdmissionReview(rng.pick(FIXTURES)));
  const at = rng.int(text.length);
  switch (rng.int(6)) {
    case 0: {
      // Duplicate keys: JSON.parse (and Go) keep the last.
      const dup = rng.pick(['"uid":"duplicate-uid",', '"object":null,', '"kind":{"group":"","version":"v1","kind":"Pod"},', '"operation":"DELETE",']);
      const insertAt = text.lastIndexOf('"request":{') + '"request":{'.length;
      return { kind: 'duplicate-key', body: rng.chance(0.5) ? text.slice(0, insertAt) + dup + text.slice(insertAt) : text.replace(/\}$/, `,${dup.replace(/,$/, '')}}`), contentType: 'application/json' };
    }
    case 1:
      return { kind: 'truncated', body: text.slice(0, at), contentType: 'application/json' };
    case 2: {
      const bytes = Buffer.from(text);
      for (let i = rng.int(8) + 1; i > 0; i--) bytes[rng.int(bytes.length)] = rng.int(256);
      return { kind: 'flipped-bytes', body: bytes, contentType: 'application/json' };
    }
    case 3:
      return { kind: 'invalid-utf8', body: Buffer.concat([Buffer.from(text.slice(0, at)), Buffer.from([0xc3, 0x28, 0xff, 0xfe, 0xed, 0xa0, 0x80]), Buffer.from(text.slice(at))]), contentType: 'application/json' };
    case 4:
      return { kind: 'js-not-json', body: text.replace(/: ?(\d+)/, ': NaN').replace(/"v1"/, "'v1'"), contentType: 'application/json' };
    default:
      return { kind: 'bom-and-whitespace', body: `\ufeff ${text}\n\t`, contentType: 'application/json; charset=utf-8' };
  }
}

function randomBody(rng: Rng): FuzzCase {
  const value = randomJson(rng, 6);
  // Half the time wrapped so that it passes the first checks and reaches deeper ones.
  const body = rng.chance(0.5)
    ? { kind: 'AdmissionReview', apiVersion: 'admission.k8s.io/v1', request: rng.chance(0.5) ? value : { uid: 'u', operation: 'CREATE', kind: { group: '', version: 'v1', kind: 'Pod' }, object: value } }
    : value;
  return { kind: 'random-json', body: JSON.stringify(body), contentType: 'application/json' };
}

/**
 * Case `index`. Bodies over the limit by more than the server drains (1 MiB) are cut off
 * mid-send, which server.test.ts covers; here those are drawn again (from the next stream).
 */
function fuzzCase(index: number, maxBodyBytes: number): FuzzCase {
  for (let attempt = 0; ; attempt++) {
    const drawn = drawCase(new Rng(SEED ^ Math.imul(index + 1, 0x9e3779b1) ^ Math.imul(attempt, 0x85ebca6b)), index, maxBodyBytes);
    if (Buffer.byteLength(drawn.body) <= maxBodyBytes + 512 * 1024) return drawn;
  }
}

function drawCase(rng: Rng, index: number, maxBodyBytes: number): FuzzCase {
  if (index % 2000 === 1999) {
    return { kind: 'over-limit', body: `{"kind":"AdmissionReview","pad":"${'x'.repeat(maxBodyBytes)}"}`, contentType: 'application/json' };
  }
  const r = rng.next();
  if (r < 0.02) return { kind: 'valid', body: JSON.stringify(loadAdmissionReview(rng.pick(FIXTURES))), contentType: 'application/json' };
  if (r < 0.04) return { kind: 'wrong-content-type', body: JSON.stringify(loadAdmissionReview('plain-pod')), contentType: rng.pick(['text/plain', 'application/yaml', '']) };
  if (r < 0.72) return structured(rng);
  if (r < 0.87) return mangled(rng);
  return randomBody(rng);
}

// --- The run.

let api: FakeKubeApiServer;
let webhook: RunningWebhook;
let target: HttpsTarget;
let maxBodyBytes: number;
const errors: Array<Record<string, unknown>> = [];

/** Only error lines are kept: a failed admission is logged at error (server.ts). */
function errorLogger() {
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString('utf8').split('\n')) if (line !== '') errors.push(JSON.parse(line) as Record<string, unknown>);
      callback();
    },
  });
  return pino({ level: 'error' }, stream);
}

beforeAll(async () => {
  api = await FakeKubeApiServer.start();
  api.put(parseYaml(readFileSync(new URL('../../manifests/mutating-webhook.yaml', import.meta.url), 'utf8')));
  for (const name of CHECKPOINTS) api.put(loadCheckpoint(name));
  const config = readWebhookConfig(['--port', '0'], {});
  maxBodyBytes = config.maxBodyBytes;
  webhook = await startWebhook(config, { kubeConfig: api.kubeConfig(), logger: errorLogger(), host: '127.0.0.1' });
  await waitFor(() => webhook.notReadyReason() === undefined, { what: 'the webhook to be ready', timeoutMs: 10_000 });
  const secret = api.get<V1Secret>('v1', 'secrets', 'cryo-system', 'cryo-webhook-tls')!;
  target = { port: webhook.port, ca: Buffer.from(secret.data!['ca.crt'], 'base64').toString('utf8'), servername: SERVERNAME };
});

afterAll(async () => {
  await webhook?.stop();
  await api?.stop();
});

/** What the answer must be; a string saying what is wrong, or undefined. */
function judge(sent: FuzzCase, status: number, text: string): string | undefined {
  if (status >= 500) return `status ${status}: ${text.slice(0, 300)}`;
  if (status !== 200) {
    if (status < 400) return `status ${status}`;
    try {
      const error = (JSON.parse(text) as { error?: unknown }).error;
      return typeof error === 'string' && error !== '' ? undefined : `a ${status} without a message: ${text.slice(0, 200)}`;
    } catch {
      return `a ${status} that is not JSON: ${text.slice(0, 200)}`;
    }
  }
  let request: { uid?: unknown; object?: unknown } | undefined;
  try {
    request = (JSON.parse(typeof sent.body === 'string' ? sent.body : sent.body.toString('utf8')) as { request?: typeof request }).request;
  } catch {
    return 'a 200 for a body that is not JSON';
  }
  const review = JSON.parse(text) as { apiVersion?: string; kind?: string; response?: Record<string, unknown> };
  const response = review.response;
  if (review.apiVersion !== 'admission.k8s.io/v1' || review.kind !== 'AdmissionReview' || response === undefined) return `not an AdmissionReview: ${text.slice(0, 200)}`;
  if (response.uid !== request?.uid) return `answered uid ${JSON.stringify(response.uid)}, sent ${JSON.stringify(request?.uid)?.slice(0, 80)}`;
  if (typeof response.allowed !== 'boolean') return 'allowed is not a boolean';
  if (!response.allowed) {
    const denial = response.status as { code?: unknown; message?: unknown; reason?: unknown } | undefined;
    if (typeof denial?.code !== 'number' || denial.code < 400 || typeof denial.message !== 'string' || denial.message === '') {
      return `a refusal without code or message: ${JSON.stringify(denial)?.slice(0, 200)}`;
    }
    return undefined;
  }
  if (response.patch !== undefined) {
    if (response.patchType !== 'JSONPatch') return 'a patch without patchType JSONPatch';
    const ops = JSON.parse(Buffer.from(response.patch as string, 'base64').toString('utf8')) as Operation[];
    // A fresh parse of what was sent: the pod as the apiserver holds it.
    const failed = applyPatch(request!.object, ops).filter((e) => e !== null);
    if (failed.length > 0) return `the patch does not apply: ${String(failed[0])}`;
  }
  return undefined;
}

/**
 * POST /mutate for the hot loop: httpsRequest (the harness's) reads each answer's peer
 * certificate, a tenth of the run's CPU here; this sends the same request without.
 */
function post(client: HttpsTarget & { agent: https.Agent }, body: string | Buffer, contentType: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { 'content-length': Buffer.byteLength(body) };
    if (contentType !== '') headers['content-type'] = contentType;
    const req = https.request(
      { host: '127.0.0.1', port: client.port, method: 'POST', path: '/mutate', ca: client.ca, servername: client.servername, agent: client.agent, headers },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** A full garbage collection (V8's gc, exposed at run time), for the heap a leak would grow. */
function collectGarbage(): void {
  v8.setFlagsFromString('--expose-gc');
  (vm.runInNewContext('gc') as () => void)();
}

const MiB = 1024 * 1024;

describe('the webhook under adversarial AdmissionReviews', () => {
  it(`answers ${CASES} of them (seed ${SEED}) without a 5xx, a crash or unbounded memory`, { timeout: 120_000 }, async () => {
    const agent = new https.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
    const client = { ...target, agent };
    const byStatus = new Map<string, number>();
    const byKind = new Map<string, number>();
    const failures: string[] = [];
    const count = (map: Map<string, number>, key: string) => map.set(key, (map.get(key) ?? 0) + 1);
    const warmup = Math.min(500, Math.floor(CASES / 10));
    let afterWarmup = { rss: 0, heap: 0 };
    let rssMax = 0;
    let slowest = { ms: 0, kind: '', index: -1 };
    let bytesSent = 0;
    let next = 0;
    const started = performance.now();
    const cpuBefore = process.cpuUsage();

    const worker = async () => {
      for (let index = next++; index < CASES; index = next++) {
        const sent = fuzzCase(index, maxBodyBytes);
        bytesSent += Buffer.byteLength(sent.body);
        const t0 = performance.now();
        let res: { status: number; text: string };
        try {
          res = await post(client, sent.body, sent.contentType);
        } catch (err) {
          failures.push(`case ${index} (${sent.kind}): no answer: ${(err as Error).message}`);
          continue;
        }
        const ms = performance.now() - t0;
        if (ms > slowest.ms) slowest = { ms, kind: sent.kind, index };
        let label = String(res.status);
        if (res.status === 200) {
          const response = (JSON.parse(res.text) as { response?: { allowed?: boolean; patch?: string; status?: { code?: number; reason?: string } } }).response;
          label = response?.allowed ? (response.patch ? '200 allowed, patched' : '200 allowed') : `200 denied ${response?.status?.code} ${response?.status?.reason}`;
        }
        count(byStatus, label);
        count(byKind, sent.kind.split(':')[0]);
        const wrong = judge(sent, res.status, res.text);
        if (wrong !== undefined && failures.length < 20) failures.push(`case ${index} (${sent.kind}): ${wrong}`);
        if (index === warmup) {
          collectGarbage();
          afterWarmup = { rss: process.memoryUsage().rss / MiB, heap: process.memoryUsage().heapUsed / MiB };
        }
        if (index % 100 === 0) rssMax = Math.max(rssMax, process.memoryUsage().rss / MiB);
      }
    };
    try {
      await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    } finally {
      next = CASES;
      agent.destroy();
    }
    const seconds = (performance.now() - started) / 1000;
    const cpu = process.cpuUsage(cpuBefore);
    collectGarbage();
    const atEnd = { rss: process.memoryUsage().rss / MiB, heap: process.memoryUsage().heapUsed / MiB };
    rssMax = Math.max(rssMax, atEnd.rss);

    const apiReads = api.requests.filter((r) => r.method === 'GET' && /\/namespaces\/[^/]+\/checkpoints\/[^/]+$/.test(r.path)).length;
    console.log(
      [
        `admission fuzz: ${CASES} reviews (${(bytesSent / MiB).toFixed(0)} MiB), seed ${SEED}, ${seconds.toFixed(1)} s ` +
          `(${Math.round(CASES / seconds)}/s, ${CONCURRENCY} at a time), ${((cpu.user + cpu.system) / 1e6).toFixed(1)} s of CPU (webhook and client: one process)`,
        `  cases (all but "valid" adversarial): ${[...byKind].sort(([, a], [, b]) => b - a).map(([k, n]) => `${k} ${n}`).join(', ')}`,
        '  answers:',
        ...[...byStatus].sort(([a], [b]) => a.localeCompare(b)).map(([label, n]) => `  ${String(n).padStart(6)}  ${label}`),
        `  direct Checkpoint reads on the API: ${apiReads}`,
        `  slowest answer: ${slowest.ms.toFixed(0)} ms (case ${slowest.index}, ${slowest.kind})`,
        `  RSS: ${afterWarmup.rss.toFixed(0)} MiB after ${warmup} reviews, at most ${rssMax.toFixed(0)} MiB, ${atEnd.rss.toFixed(0)} MiB at the end; ` +
          `heap after a full GC: ${afterWarmup.heap.toFixed(0)} MiB, then ${atEnd.heap.toFixed(0)} MiB`,
      ].join('\n'),
    );

    expect(failures).toEqual([]);
    expect([...byStatus.keys()].filter((label) => Number(label.slice(0, 3)) >= 500)).toEqual([]);
    expect(errors.map((e) => e.msg)).toEqual([]);
    if (process.env.CRYO_FUZZ_CASES === undefined) expect(CASES - (byKind.get('valid') ?? 0)).toBeGreaterThanOrEqual(10_000);
    // Measured on the default seed: RSS grows by about 200 MiB (V8 growing its heap and
    // allocator fragmentation from bodies up to 4.5 MiB), the heap that survives a full GC by
    // less than 10 MiB: what a leak would grow.
    expect(rssMax - afterWarmup.rss).toBeLessThan(MAX_RSS_GROWTH_MIB);
    expect(atEnd.heap - afterWarmup.heap).toBeLessThan(MAX_RETAINED_HEAP_GROWTH_MIB);

    // Still there, and still right.
    const review = loadAdmissionReview('restore-deployment-pod');
    const after = await postJson(target, '/mutate', review);
    expect(after.status).toBe(200);
    const response = after.json<{ response: { uid: string; allowed: boolean; patch?: string } }>().response;
    expect(response).toMatchObject({ uid: review.request.uid, allowed: true });
    expect(response.patch).toBeDefined();
    expect((await httpsRequest(target, 'GET', '/healthz')).text).toBe('ok\n');
  });
});

describe('direct API reads for Checkpoints the cache has not seen', () => {
  it('stay within the rate limit under a flood of pods naming unknown Checkpoints; over it, pods are refused with 503 and when to retry', async () => {
    // The fuzz above drew on the same budgets: let them fill up again (10 at 5/s, 40 at 20/s).
    await new Promise((resolve) => setTimeout(resolve, 2100));
    api.clearRequests();
    const agent = new https.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
    const client = { ...target, agent };
    const started = performance.now();
    const answers = await Promise.all(
      Array.from({ length: 300 }, async (_, i) => {
        const review = loadAdmissionReview('restore-named-pod');
        review.request.uid = `flood-${i}`;
        review.request.object.metadata!.annotations![annotations.RESTORE_FROM] = `does-not-exist-${i}`;
        const res = await httpsRequest(client, 'POST', '/mutate', JSON.stringify(review), { 'content-type': 'application/json' });
        return res.json<{ response: { status: { code: number; reason: string; message: string } } }>().response.status;
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    const reads = api.requests.filter((r) => r.method === 'GET' && r.path.startsWith('/apis/cryo.dev/v1alpha1/namespaces/shop/checkpoints/does-not-exist-')).length;
    // The per-namespace bucket: a burst of 10, then 5 a second.
    expect(reads).toBeGreaterThanOrEqual(10);
    expect(reads).toBeLessThanOrEqual(10 + Math.ceil(5 * seconds) + 1);
    expect(answers.filter((s) => s.code === 404)).toHaveLength(reads);
    const throttled = answers.filter((s) => s.code === 503);
    expect(throttled).toHaveLength(300 - reads);
    expect(throttled[0]).toMatchObject({ reason: 'checkpoint-read-failed' });
    expect(throttled[0].message).toMatch(/^could not read Checkpoint "shop\/does-not-exist-\d+" from the API \(the webhook reads Checkpoints its cache has not seen from the API at most 5\/s per namespace and 20\/s in all, and namespace "shop" is over its share; retry in 1 s\); try again$/);

    // Another namespace still has its reads: a Checkpoint only the API knows yet is found.
    const elsewhere = loadCheckpoint('succeeded-registry');
    elsewhere.metadata = { ...elsewhere.metadata, namespace: 'other', name: 'fresh-one', uid: '7d1c2b3a-0000-4000-8000-00000000f00d' };
    const review = loadAdmissionReview('restore-named-pod');
    review.request.namespace = 'other';
    review.request.object.metadata!.annotations![annotations.RESTORE_FROM] = 'fresh-one';
    // Put it after the review is built but before the cache can see it: the read may go either way, both must admit.
    api.put(elsewhere);
    const res = await httpsRequest(client, 'POST', '/mutate', JSON.stringify(review), { 'content-type': 'application/json' });
    expect(res.json<{ response: { allowed: boolean } }>().response.allowed).toBe(true);
    agent.destroy();
  });
});
