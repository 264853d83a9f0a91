/**
 * How the fake kube-apiserver behaves, shown through the real @kubernetes/client-node: these
 * tests double as its documentation and pin the client-node behaviours our components rely on.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AdmissionregistrationV1Api,
  ApiException,
  CoreV1Api,
  CustomObjectsApi,
  EventsV1Api,
  KubeConfig,
  makeInformer,
  PatchStrategy,
  setHeaderOptions,
  V1MicroTime,
  Watch,
  type Informer,
  type KubernetesListObject,
  type KubernetesObject,
  type ObjectCache,
} from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CHECKPOINT_API_VERSION, CHECKPOINT_GROUP, CHECKPOINT_PLURAL, CHECKPOINT_VERSION, CHECKPOINTS_PATH, loadKubeConfig, type Checkpoint } from '@cryo/common';
import { apiVersionOf, FakeKubeApiServer, RESOURCES, type KubeObject } from './kube-apiserver.ts';

const NS = 'default';
const CHECKPOINT = { group: CHECKPOINT_GROUP, version: CHECKPOINT_VERSION, plural: CHECKPOINT_PLURAL };

function checkpoint(name: string, extra: Partial<Checkpoint> = {}): Checkpoint {
  return { apiVersion: CHECKPOINT_API_VERSION, kind: 'Checkpoint', metadata: { name, namespace: NS }, spec: { podName: `${name}-pod` }, ...extra };
}

function pod(name: string, nodeName: string, labels: Record<string, string> = {}): KubeObject {
  return { apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: NS, labels }, spec: { nodeName, containers: [{ name: 'app', image: 'app:1' }] } };
}

/** The Status body client-node hands back as a JSON string in ApiException.body. */
function statusOf(err: unknown): Record<string, unknown> {
  expect(err).toBeInstanceOf(ApiException);
  return JSON.parse((err as ApiException<string>).body) as Record<string, unknown>;
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected the call to fail');
}

/** A bare HTTPS request, for what client-node hides (bodies of 401s, watch streams). */
function rawRequest(api: FakeKubeApiServer, method: string, path: string, options: { token?: string | null; body?: string; contentType?: string } = {}) {
  return new Promise<{ status: number; text: string }>((resolve, reject) => {
    const token = options.token === undefined ? api.token : options.token;
    const url = new URL(api.url);
    const req = request(
      {
        host: url.hostname,
        port: url.port,
        method,
        path,
        ca: api.caPem,
        agent: false,
        headers: {
          ...(token === null ? {} : { Authorization: `Bearer ${token}` }),
          ...(options.contentType === undefined ? {} : { 'Content-Type': options.contentType }),
          // node:https sends a DELETE body unframed unless told its length.
          ...(options.body === undefined ? {} : { 'Content-Length': Buffer.byteLength(options.body) }),
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

let api: FakeKubeApiServer;
let kc: KubeConfig;
const cleanups: (() => unknown)[] = [];

beforeEach(async () => {
  api = await FakeKubeApiServer.start();
  kc = api.kubeConfig();
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  await api.stop();
});

function checkpointInformer(): { informer: Informer<Checkpoint> & ObjectCache<Checkpoint>; events: string[] } {
  const custom = kc.makeApiClient(CustomObjectsApi);
  const list = () => custom.listClusterCustomObject(CHECKPOINT) as Promise<KubernetesListObject<Checkpoint>>;
  const informer = makeInformer<Checkpoint>(kc, CHECKPOINTS_PATH, list);
  const events: string[] = [];
  for (const verb of ['add', 'update', 'delete'] as const) {
    informer.on(verb, (obj: Checkpoint) => events.push(`${verb} ${obj.metadata?.name}`));
  }
  cleanups.push(() => informer.stop());
  return { informer, events };
}

/** Starts a raw client-node watch; events arrive as "TYPE name". */
async function watchPath(path: string, query: Record<string, string | number | boolean>) {
  const events: string[] = [];
  let resolveDone!: (err: unknown) => void;
  const done = new Promise<unknown>((resolve) => (resolveDone = resolve));
  const controller = await new Watch(kc).watch(path, query, (type: string, obj: KubernetesObject) => events.push(`${type} ${obj.metadata?.name ?? ''}`), resolveDone);
  cleanups.push(() => controller.abort());
  return { events, done };
}

describe('serving', () => {
  it('speaks HTTPS with its own CA: kubeConfig() and a kubeconfig file both work', async () => {
    expect(api.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    api.put({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'cryo-system' } });
    const viaObject = await kc.makeApiClient(CoreV1Api).readNamespace({ name: 'cryo-system' });
    expect(viaObject.metadata?.name).toBe('cryo-system');

    const dir = mkdtempSync(join(tmpdir(), 'fake-kube-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const fromFile = loadKubeConfig(api.writeKubeconfigFile(dir));
    const viaFile = await fromFile.makeApiClient(CoreV1Api).readNamespace({ name: 'cryo-system' });
    expect(viaFile.metadata?.uid).toBe(viaObject.metadata?.uid);
  });

  it('answers 401 with a Status without the bearer token; client-node drops that body', async () => {
    const bare = await rawRequest(api, 'GET', '/api/v1/namespaces/default/secrets', { token: null });
    expect(bare.status).toBe(401);
    expect(JSON.parse(bare.text)).toEqual({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'Unauthorized', reason: 'Unauthorized', code: 401 });

    const wrong = new KubeConfig();
    wrong.loadFromOptions({ clusters: kc.getClusters(), contexts: kc.getContexts(), users: [{ name: 'fake-kube-apiserver', token: 'wrong' }], currentContext: kc.getCurrentContext() });
    const err = await rejection(wrong.makeApiClient(CoreV1Api).listNamespacedSecret({ namespace: NS }));
    expect(err).toBeInstanceOf(ApiException);
    expect((err as ApiException<unknown>).code).toBe(401);
    // The generated 401 branch throws without reading the response body.
    expect((err as ApiException<unknown>).body).toBeUndefined();
  });

  it('answers unknown paths with 404 and wrong verbs with 405, both as Status', async () => {
    const unknown = await rawRequest(api, 'GET', '/apis/example.com/v1/namespaces/default/widgets');
    expect(unknown.status).toBe(404);
    expect(JSON.parse(unknown.text)).toMatchObject({ kind: 'Status', reason: 'NotFound', code: 404 });

    const wrongVerb = await rawRequest(api, 'POST', '/api/v1/pods', { body: '{}', contentType: 'application/json' });
    expect(wrongVerb.status).toBe(405);
    expect(JSON.parse(wrongVerb.text)).toMatchObject({ reason: 'MethodNotAllowed', code: 405 });
  });
});

describe('the resource table', () => {
  it.each(RESOURCES.map((r) => [`${apiVersionOf(r)} ${r.plural}`, r] as const))('serves %s at its real paths', async (_label, resource) => {
    const base = resource.group === '' ? '/api/v1' : `/apis/${apiVersionOf(resource)}`;
    const collection = resource.namespaced ? `${base}/namespaces/${NS}/${resource.plural}` : `${base}/${resource.plural}`;
    const body = JSON.stringify({ apiVersion: apiVersionOf(resource), kind: resource.kind, metadata: { name: 'table-entry' } });
    const created = await rawRequest(api, 'POST', collection, { body, contentType: 'application/json' });
    expect(created.status).toBe(201);
    expect(JSON.parse(created.text).metadata).toMatchObject({ name: 'table-entry', ...(resource.namespaced ? { namespace: NS } : {}) });

    const read = await rawRequest(api, 'GET', `${collection}/table-entry`);
    expect(JSON.parse(read.text)).toMatchObject({ apiVersion: apiVersionOf(resource), kind: resource.kind });
    const everywhere = await rawRequest(api, 'GET', `${base}/${resource.plural}`);
    expect(JSON.parse(everywhere.text)).toMatchObject({ kind: `${resource.kind}List`, items: [{ metadata: { name: 'table-entry' } }] });
    const status = await rawRequest(api, 'GET', `${collection}/table-entry/status`);
    expect(status.status).toBe(resource.statusSubresource === true ? 200 : 404);

    expect((await rawRequest(api, 'DELETE', `${collection}/table-entry`)).status).toBe(200);
    expect((await rawRequest(api, 'GET', `${collection}/table-entry`)).status).toBe(404);
  });

  it("tells a namespace's /status from a resource inside the namespace", async () => {
    const core = kc.makeApiClient(CoreV1Api);
    const created = await core.createNamespace({ body: { metadata: { name: 'team-a' } } });
    expect(created.status?.phase).toBe('Active');
    const replaced = await core.replaceNamespaceStatus({ name: 'team-a', body: { ...created, status: { phase: 'Terminating' } } });
    expect(replaced.status?.phase).toBe('Terminating');
    await core.createNamespacedConfigMap({ namespace: 'team-a', body: { metadata: { name: 'status' } } });
    expect(api.get('v1', 'configmaps', 'team-a', 'status')).toBeDefined();
  });
});

describe('core resources through CoreV1Api', () => {
  it('creates, reads, replaces and deletes a Secret with server-owned metadata', async () => {
    const core = kc.makeApiClient(CoreV1Api);
    const created = await core.createNamespacedSecret({ namespace: NS, body: { metadata: { name: 'creds' }, stringData: { user: 'cryo' } } });
    expect(created.metadata).toMatchObject({ name: 'creds', namespace: NS, generation: 1 });
    expect(created.metadata?.uid).toMatch(/^[0-9a-f-]{36}$/);
    expect(created.metadata?.creationTimestamp).toBeInstanceOf(Date); // client-node turns RFC 3339 into Date
    // stringData is converted into base64 data and never stored, like the real apiserver.
    expect(created.data).toEqual({ user: Buffer.from('cryo').toString('base64') });
    expect(created.stringData).toBeUndefined();
    expect(created.type).toBe('Opaque');

    const read = await core.readNamespacedSecret({ namespace: NS, name: 'creds' });
    read.data = { ...read.data, extra: 'eA==' };
    const replaced = await core.replaceNamespacedSecret({ namespace: NS, name: 'creds', body: read });
    expect(Number(replaced.metadata?.resourceVersion)).toBeGreaterThan(Number(read.metadata?.resourceVersion));
    expect(replaced.metadata?.uid).toBe(created.metadata?.uid);

    const deleted = await core.deleteNamespacedSecret({ namespace: NS, name: 'creds' });
    expect(deleted).toMatchObject({ kind: 'Status', status: 'Success', details: { name: 'creds', kind: 'secrets' } });
    expect(api.get('v1', 'secrets', NS, 'creds')).toBeUndefined();
  });

  it('refuses a replace carrying a stale resourceVersion with 409 Conflict', async () => {
    const core = kc.makeApiClient(CoreV1Api);
    const first = await core.createNamespacedSecret({ namespace: NS, body: { metadata: { name: 'creds' }, data: { a: 'YQ==' } } });
    await core.replaceNamespacedSecret({ namespace: NS, name: 'creds', body: { ...first, data: { a: 'Yg==' } } });

    const err = await rejection(core.replaceNamespacedSecret({ namespace: NS, name: 'creds', body: { ...first, data: { a: 'Yw==' } } }));
    expect((err as ApiException<string>).code).toBe(409);
    expect(statusOf(err)).toMatchObject({
      reason: 'Conflict',
      message: 'Operation cannot be fulfilled on secrets "creds": the object has been modified; please apply your changes to the latest version and try again',
    });
  });

  it('answers a missing object with 404 NotFound and a duplicate create with 409 AlreadyExists', async () => {
    const core = kc.makeApiClient(CoreV1Api);
    const missing = await rejection(core.readNamespacedSecret({ namespace: NS, name: 'nope' }));
    expect((missing as ApiException<string>).code).toBe(404);
    expect(statusOf(missing)).toEqual({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'secrets "nope" not found',
      reason: 'NotFound',
      details: { name: 'nope', kind: 'secrets' },
      code: 404,
    });
    expect((await rejection(core.replaceNamespacedSecret({ namespace: NS, name: 'nope', body: { metadata: { name: 'nope' } } })) as ApiException<string>).code).toBe(404);
    expect((await rejection(core.deleteNamespacedSecret({ namespace: NS, name: 'nope' })) as ApiException<string>).code).toBe(404);

    await core.createNamespacedSecret({ namespace: NS, body: { metadata: { name: 'once' } } });
    const duplicate = await rejection(core.createNamespacedSecret({ namespace: NS, body: { metadata: { name: 'once' } } }));
    expect(statusOf(duplicate)).toMatchObject({ reason: 'AlreadyExists', code: 409, message: 'secrets "once" already exists' });
  });

  it('validates creates: generateName, required name, namespace agreement, name syntax, no resourceVersion', async () => {
    const core = kc.makeApiClient(CoreV1Api);
    const generated = await core.createNamespacedConfigMap({ namespace: NS, body: { metadata: { generateName: 'cfg-' } } });
    expect(generated.metadata?.name).toMatch(/^cfg-[a-z0-9]{5}$/);
    // As the real apiserver: a generateName must end alphanumeric or in '-' ("ckpt." is refused).
    const dotted = await rejection(core.createNamespacedConfigMap({ namespace: NS, body: { metadata: { generateName: 'ckpt.' } } }));
    expect(statusOf(dotted)).toMatchObject({ code: 422, reason: 'Invalid' });
    expect(statusOf(dotted).message as string).toContain('metadata.generateName: Invalid value: "ckpt."');

    const nameless = await rejection(core.createNamespacedConfigMap({ namespace: NS, body: { metadata: {} } }));
    expect(statusOf(nameless)).toMatchObject({ code: 422, reason: 'Invalid', message: 'ConfigMap "" is invalid: metadata.name: Required value: name or generateName is required' });

    const elsewhere = await rejection(core.createNamespacedConfigMap({ namespace: NS, body: { metadata: { name: 'x', namespace: 'other' } } }));
    expect(statusOf(elsewhere)).toMatchObject({ code: 400, reason: 'BadRequest' });

    const upper = await rejection(core.createNamespacedConfigMap({ namespace: NS, body: { metadata: { name: 'Not-Valid' } } }));
    expect(statusOf(upper)).toMatchObject({ code: 422, reason: 'Invalid' });

    // Re-creating a fetched object without clearing its resourceVersion fails as in etcd3.
    const recreated = await rejection(core.createNamespacedConfigMap({ namespace: NS, body: { metadata: { name: 'again', resourceVersion: '7' } } }));
    expect(statusOf(recreated)).toMatchObject({ code: 500, message: 'resourceVersion should not be set on objects to be created' });
  });

  it('lists built-in resources without apiVersion/kind on the items, as the real apiserver does', async () => {
    api.put(pod('p1', 'node-a'));
    const list = await rawRequest(api, 'GET', '/api/v1/namespaces/default/pods');
    const body = JSON.parse(list.text);
    expect(body).toMatchObject({ apiVersion: 'v1', kind: 'PodList', metadata: { resourceVersion: api.resourceVersion } });
    expect(body.items[0].kind).toBeUndefined();
    expect(body.items[0].metadata.name).toBe('p1');
  });

  it('answers DELETE of a pod with the pod itself, not a Status', async () => {
    api.put(pod('p1', 'node-a'));
    const deleted = await kc.makeApiClient(CoreV1Api).deleteNamespacedPod({ namespace: NS, name: 'p1' });
    expect(deleted.kind).toBe('Pod');
    expect(deleted.metadata?.name).toBe('p1');
  });

  it('evicts a pod through pods/eviction (201, Success Status), refuses a mismatched name, and answers 404 for a missing pod', async () => {
    const core = kc.makeApiClient(CoreV1Api);
    api.put(pod('p1', 'node-a'));
    const eviction = (name: string) => ({ namespace: NS, name: 'p1', body: { apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name, namespace: NS } } });
    expect(statusOf(await rejection(core.createNamespacedPodEviction(eviction('other'))))).toMatchObject({ code: 400, message: 'name in URL does not match name in Eviction object' });
    await core.createNamespacedPodEviction(eviction('p1'));
    expect(api.requests.at(-1)).toMatchObject({ method: 'POST', path: `/api/v1/namespaces/${NS}/pods/p1/eviction`, status: 201 });
    expect(api.get('v1', 'pods', NS, 'p1')).toBeUndefined();
    expect(statusOf(await rejection(core.createNamespacedPodEviction(eviction('p1'))))).toMatchObject({ code: 404, reason: 'NotFound' });
    expect((await rawRequest(api, 'GET', `/api/v1/namespaces/${NS}/pods/p1/eviction`)).status).toBe(405);
    expect((await rawRequest(api, 'POST', `/api/v1/namespaces/${NS}/secrets/s/eviction`, { body: '{}', contentType: 'application/json' })).status).toBe(404);
  });

  it("answers an eviction a disruption budget blocks with the injected 429, as the real one does", async () => {
    const core = kc.makeApiClient(CoreV1Api);
    api.put(pod('p1', 'node-a'));
    api.failNext({ method: 'POST', pathPrefix: `/api/v1/namespaces/${NS}/pods/p1/eviction`, status: 429, message: "Cannot evict pod as it would violate the pod's disruption budget." });
    const body = { apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name: 'p1', namespace: NS } };
    expect(statusOf(await rejection(core.createNamespacedPodEviction({ namespace: NS, name: 'p1', body })))).toMatchObject({ code: 429, reason: 'TooManyRequests' });
    expect(api.get('v1', 'pods', NS, 'p1')).toBeDefined();
  });

  it('persists nothing and emits nothing for ?dryRun=All', async () => {
    const { events } = await watchPath('/api/v1/secrets', {});
    const before = api.resourceVersion;
    const answer = await kc.makeApiClient(CoreV1Api).createNamespacedSecret({ namespace: NS, body: { metadata: { name: 'dry' } }, dryRun: 'All' });
    expect(answer.metadata?.name).toBe('dry');
    expect(api.get('v1', 'secrets', NS, 'dry')).toBeUndefined();
    expect(api.resourceVersion).toBe(before);

    api.put({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'wet', namespace: NS } });
    await kc.makeApiClient(CoreV1Api).deleteNamespacedSecret({ namespace: NS, name: 'wet', dryRun: 'All' });
    expect(api.get('v1', 'secrets', NS, 'wet')).toBeDefined();
    await vi.waitFor(() => expect(events).toEqual(['ADDED wet']));
  });
});

describe('events.k8s.io/v1 Events', () => {
  const event = (eventTime: Date, name = 'ckpt.1') => ({
    metadata: { name, namespace: NS },
    eventTime,
    reportingController: 'cryo.dev/node-agent',
    reportingInstance: 'cryo-node-agent-node-a',
    action: 'Checkpoint',
    reason: 'CheckpointStarted',
    type: 'Normal',
    regarding: { apiVersion: 'cryo.dev/v1alpha1', kind: 'Checkpoint', namespace: NS, name: 'ckpt' },
  });
  const at = '2026-12-01T10:00:00.123';

  it('refuses an eventTime without exactly six fractional digits with 400, as the real apiserver does', async () => {
    const events = kc.makeApiClient(EventsV1Api);
    // client-node sends a plain Date as toISOString(): milliseconds, which metav1.MicroTime does not parse.
    const millis = await rejection(events.createNamespacedEvent({ namespace: NS, body: event(new Date(`${at}Z`)) }));
    expect(api.requests.at(-1)!.body).toMatchObject({ eventTime: `${at}Z` });
    expect(statusOf(millis)).toEqual({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: `Event in version "v1" cannot be handled as a Event: parsing time "${at}Z" as "2006-01-02T15:04:05.000000Z07:00": cannot parse ".123Z" as ".000000"`,
      reason: 'BadRequest',
      code: 400,
    });
    expect(api.list('events.k8s.io/v1', 'events', NS)).toEqual([]);

    for (const [eventTime, cannotParse] of [
      ['2026-12-01T10:00:00Z', '"Z" as ".000000"'],
      ['2026-12-01T10:00:00.123456789Z', '"789Z" as "Z07:00"'],
      ['2026-12-01 10:00:00.123456Z', 'as "2006-01-02T15:04:05.000000Z07:00"'],
    ]) {
      const raw = await rawRequest(api, 'POST', `/apis/events.k8s.io/v1/namespaces/${NS}/events`, {
        body: JSON.stringify({ ...event(new Date(0)), eventTime }),
        contentType: 'application/json',
      });
      expect(raw.status, eventTime).toBe(400);
      expect(JSON.parse(raw.text).message, eventTime).toContain(cannotParse);
    }
  });

  it('stores a V1MicroTime (microseconds, as client-node serialises it) and refuses a later write that breaks it', async () => {
    const events = kc.makeApiClient(EventsV1Api);
    const created = await events.createNamespacedEvent({ namespace: NS, body: event(new V1MicroTime(`${at}Z`)) });
    expect(created.metadata?.name).toBe('ckpt.1');
    expect(api.get<{ eventTime: string }>('events.k8s.io/v1', 'events', NS, 'ckpt.1')!.eventTime).toBe(`${at}000Z`);
    const withOffset = await rawRequest(api, 'POST', `/apis/events.k8s.io/v1/namespaces/${NS}/events`, {
      body: JSON.stringify({ ...event(new Date(0), 'ckpt.2'), eventTime: '2026-12-01T11:00:00.123456+01:00' }),
      contentType: 'application/json',
    });
    expect(withOffset.status).toBe(201);

    // Updates and patches decode the written object too.
    const patch = await rawRequest(api, 'PATCH', `/apis/events.k8s.io/v1/namespaces/${NS}/events/ckpt.1`, {
      body: JSON.stringify({ eventTime: `${at}Z` }),
      contentType: 'application/merge-patch+json',
    });
    expect(patch.status).toBe(400);
    expect(JSON.parse(patch.text).message).toContain('cannot be handled as a Event: parsing time');
    const seriesPatch = await rawRequest(api, 'PATCH', `/apis/events.k8s.io/v1/namespaces/${NS}/events/ckpt.1`, {
      body: JSON.stringify({ series: { count: 2, lastObservedTime: `${at}Z` } }),
      contentType: 'application/merge-patch+json',
    });
    expect(seriesPatch.status).toBe(400);
  });
});

describe('custom resources through CustomObjectsApi', () => {
  it('creates, lists, gets and patches the status of a Checkpoint', async () => {
    const custom = kc.makeApiClient(CustomObjectsApi);
    const created = (await custom.createNamespacedCustomObject({
      ...CHECKPOINT,
      namespace: NS,
      body: checkpoint('cp-1', { status: { phase: 'Succeeded' } }),
    })) as Checkpoint;
    // The status subresource owns status: a create cannot set it.
    expect(created.status).toBeUndefined();
    expect(created.metadata?.generation).toBe(1);

    const list = (await custom.listNamespacedCustomObject({ ...CHECKPOINT, namespace: NS })) as KubernetesListObject<Checkpoint>;
    expect(list.kind).toBe('CheckpointList');
    expect(list.items.map((c) => [c.kind, c.metadata?.name])).toEqual([['Checkpoint', 'cp-1']]);

    // client-node picks application/json-patch+json for every patch unless told otherwise.
    const patched = (await custom.patchNamespacedCustomObjectStatus(
      { ...CHECKPOINT, namespace: NS, name: 'cp-1', body: { status: { phase: 'Running', nodeName: 'node-a' } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    )) as Checkpoint;
    expect(api.requests.at(-1)?.contentType).toBe('application/merge-patch+json');
    expect(patched.status).toEqual({ phase: 'Running', nodeName: 'node-a' });
    expect(patched.metadata?.generation).toBe(1);

    const got = (await custom.getNamespacedCustomObject({ ...CHECKPOINT, namespace: NS, name: 'cp-1' })) as Checkpoint;
    expect(got.status?.phase).toBe('Running');
    expect(got.metadata?.resourceVersion).toBe(patched.metadata?.resourceVersion);
  });

  it('keeps status on main-resource writes, counts spec changes in generation, and needs a resourceVersion to PUT', async () => {
    const custom = kc.makeApiClient(CustomObjectsApi);
    api.put(checkpoint('cp-1', { status: { phase: 'Running' } }));

    const jsonPatched = (await custom.patchNamespacedCustomObject({
      ...CHECKPOINT,
      namespace: NS,
      name: 'cp-1',
      body: [
        { op: 'add', path: '/spec/reason', value: 'node maintenance' },
        { op: 'replace', path: '/status/phase', value: 'Failed' },
      ],
    })) as Checkpoint;
    expect(api.requests.at(-1)?.contentType).toBe('application/json-patch+json');
    expect(jsonPatched.spec.reason).toBe('node maintenance');
    expect(jsonPatched.status?.phase).toBe('Running');
    expect(jsonPatched.metadata?.generation).toBe(2);

    const withoutRv = checkpoint('cp-1');
    const refused = await rejection(custom.replaceNamespacedCustomObject({ ...CHECKPOINT, namespace: NS, name: 'cp-1', body: withoutRv }));
    expect(statusOf(refused)).toMatchObject({ code: 422, reason: 'Invalid' });

    const statusOnly = (await custom.replaceNamespacedCustomObjectStatus({
      ...CHECKPOINT,
      namespace: NS,
      name: 'cp-1',
      body: { ...jsonPatched, spec: { podName: 'ignored' }, status: { phase: 'Succeeded' } },
    })) as Checkpoint;
    expect(statusOnly.spec.podName).toBe('cp-1-pod');
    expect(statusOnly.status?.phase).toBe('Succeeded');
    expect(statusOnly.metadata?.generation).toBe(2);
  });

  it('holds an object with finalizers as terminating until the last finalizer goes', async () => {
    const custom = kc.makeApiClient(CustomObjectsApi);
    api.put(checkpoint('cp-1', { metadata: { name: 'cp-1', namespace: NS, finalizers: ['cryo.dev/cleanup'] } }));
    const terminating = (await custom.deleteNamespacedCustomObject({ ...CHECKPOINT, namespace: NS, name: 'cp-1' })) as Checkpoint;
    expect(terminating.metadata?.deletionTimestamp).toBeDefined();
    expect(api.get('cryo.dev/v1alpha1', 'checkpoints', NS, 'cp-1')).toBeDefined();

    await custom.patchNamespacedCustomObject(
      { ...CHECKPOINT, namespace: NS, name: 'cp-1', body: { metadata: { finalizers: null } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    expect(api.get('cryo.dev/v1alpha1', 'checkpoints', NS, 'cp-1')).toBeUndefined();
  });
});

describe('cluster-scoped resources through AdmissionregistrationV1Api', () => {
  const NAME = 'cryo-webhook';

  beforeEach(() => {
    api.put({
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'MutatingWebhookConfiguration',
      metadata: { name: NAME },
      webhooks: [{ name: 'restore.cryo.dev', clientConfig: { service: { name: 'cryo-webhook', namespace: 'cryo-system' } }, admissionReviewVersions: ['v1'], sideEffects: 'None' }],
    });
  });

  it('reads and JSON-patches a webhook configuration, guarded by a test op', async () => {
    const admission = kc.makeApiClient(AdmissionregistrationV1Api);
    const read = await admission.readMutatingWebhookConfiguration({ name: NAME });
    expect(read.webhooks?.[0].clientConfig.caBundle).toBeUndefined();

    const patched = await admission.patchMutatingWebhookConfiguration({
      name: NAME,
      body: [
        { op: 'test', path: '/metadata/resourceVersion', value: read.metadata?.resourceVersion },
        { op: 'add', path: '/webhooks/0/clientConfig/caBundle', value: 'Q0E=' },
      ],
    });
    expect(patched.webhooks?.[0].clientConfig.caBundle).toBe('Q0E=');
  });

  it('fails the whole patch with 422 when a test op fails', async () => {
    const admission = kc.makeApiClient(AdmissionregistrationV1Api);
    const err = await rejection(
      admission.patchMutatingWebhookConfiguration({
        name: NAME,
        body: [
          { op: 'add', path: '/webhooks/0/clientConfig/caBundle', value: 'Q0E=' },
          { op: 'test', path: '/metadata/resourceVersion', value: '1' },
        ],
      }),
    );
    expect(statusOf(err)).toMatchObject({ code: 422, reason: 'Invalid' });
    expect(api.get<{ webhooks: { clientConfig: { caBundle?: string } }[] }>('admissionregistration.k8s.io/v1', 'mutatingwebhookconfigurations', undefined, NAME)?.webhooks[0].clientConfig.caBundle).toBeUndefined();
  });
});

describe('selectors', () => {
  beforeEach(() => {
    api.put(pod('a1', 'node-a', { app: 'web', tier: 'front' }));
    api.put(pod('a2', 'node-a', { app: 'db' }));
    api.put(pod('b1', 'node-b', { app: 'web' }));
  });

  it('filters lists by fieldSelector (spec.nodeName) and labelSelector', async () => {
    const core = kc.makeApiClient(CoreV1Api);
    const names = async (query: { fieldSelector?: string; labelSelector?: string }) =>
      (await core.listPodForAllNamespaces(query)).items.map((p) => p.metadata?.name);
    expect(await names({ fieldSelector: 'spec.nodeName=node-a' })).toEqual(['a1', 'a2']);
    expect(await names({ fieldSelector: 'spec.nodeName!=node-a,metadata.namespace==default' })).toEqual(['b1']);
    expect(await names({ labelSelector: 'app=web,!tier' })).toEqual(['b1']);
    expect(await names({ labelSelector: 'app in (web,db),tier' })).toEqual(['a1']);
    expect(await names({ labelSelector: 'app!=web', fieldSelector: 'spec.nodeName=node-a' })).toEqual(['a2']);
  });

  it('refuses field selectors on fields the resource does not support, with 400', async () => {
    const err = await rejection(kc.makeApiClient(CoreV1Api).listPodForAllNamespaces({ fieldSelector: 'spec.priority=5' }));
    expect(statusOf(err)).toMatchObject({ code: 400, reason: 'BadRequest', message: 'field label not supported: spec.priority' });
  });

  it('filters watches too: an object entering or leaving the selection arrives as ADDED or DELETED', async () => {
    const { events } = await watchPath('/api/v1/pods', { fieldSelector: 'spec.nodeName=node-a', labelSelector: 'app=web' });
    await vi.waitFor(() => expect(events).toEqual(['ADDED a1']));
    api.put(pod('b1', 'node-a', { app: 'web' }));
    api.put(pod('a1', 'node-a', { app: 'web', tier: 'back' }));
    api.put(pod('a1', 'node-a', { app: 'cache' }));
    api.put(pod('a2', 'node-a', { app: 'db', touched: 'yes' }));
    await vi.waitFor(() => expect(events).toEqual(['ADDED a1', 'ADDED b1', 'MODIFIED a1', 'DELETED a1']));
  });
});

describe('watches and informers', () => {
  it('feeds an informer adds, updates and deletes', async () => {
    api.put(checkpoint('listed'));
    const { informer, events } = checkpointInformer();
    await informer.start();
    expect(events).toEqual(['add listed']);

    const custom = kc.makeApiClient(CustomObjectsApi);
    await custom.createNamespacedCustomObject({ ...CHECKPOINT, namespace: NS, body: checkpoint('cp-1') });
    await custom.patchNamespacedCustomObjectStatus(
      { ...CHECKPOINT, namespace: NS, name: 'cp-1', body: { status: { phase: 'Running' } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    await custom.deleteNamespacedCustomObject({ ...CHECKPOINT, namespace: NS, name: 'cp-1' });
    await vi.waitFor(() => expect(events).toEqual(['add listed', 'add cp-1', 'update cp-1', 'delete cp-1']));
    expect(informer.get('listed', NS)?.spec.podName).toBe('listed-pod');
  });

  it('lets an informer resume from its resourceVersion after closeWatches(), without relisting', async () => {
    const { informer, events } = checkpointInformer();
    await informer.start();
    api.put(checkpoint('before'));
    await vi.waitFor(() => expect(events).toEqual(['add before']));
    const seen = api.resourceVersion;

    api.closeWatches();
    expect(api.watchCount).toBe(0);
    api.put(checkpoint('during'));
    await api.waitForWatches(1);
    api.put(checkpoint('after'));
    await vi.waitFor(() => expect(events).toEqual(['add before', 'add during', 'add after']));

    const watches = api.requests.filter((r) => r.query.get('watch') === 'true');
    expect(watches.map((r) => r.query.get('resourceVersion')).at(-1)).toBe(seen);
    expect(api.requests.filter((r) => r.method === 'GET' && r.query.get('watch') === null)).toHaveLength(1);
  });

  it('makes an informer relist after the history it resumes from was compacted (410 Expired)', async () => {
    api.put(checkpoint('doomed'));
    const { informer, events } = checkpointInformer();
    await informer.start();

    // All in one tick: the reconnect cannot arrive before the deletion is compacted away.
    api.closeWatches();
    api.remove(CHECKPOINT_API_VERSION, CHECKPOINT_PLURAL, NS, 'doomed');
    api.compactHistory();

    await vi.waitFor(() => expect(events).toEqual(['add doomed', 'delete doomed']));
    expect(api.requests.filter((r) => r.method === 'GET' && r.query.get('watch') === null)).toHaveLength(2);
    // client-node waits a 1 s back-off before watching again after a relist.
    await api.waitForWatches(1, 5000);
    api.put(checkpoint('next'));
    await vi.waitFor(() => expect(events.at(-1)).toBe('add next'));
  });

  it('answers a watch from a compacted resourceVersion with an ERROR event carrying 410 Expired', async () => {
    api.put(checkpoint('one'));
    const old = api.resourceVersion;
    api.put(checkpoint('two'));
    api.compactHistory();
    const answer = await rawRequest(api, 'GET', `${CHECKPOINTS_PATH}?watch=true&resourceVersion=${old}`);
    expect(answer.status).toBe(200);
    expect(answer.text.trim().split('\n').map((line) => JSON.parse(line) as unknown)).toEqual([
      {
        type: 'ERROR',
        object: { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: `too old resource version: ${old} (${api.resourceVersion})`, reason: 'Expired', code: 410 },
      },
    ]);
  });

  it('replays history after a resourceVersion, and ends the stream after timeoutSeconds', async () => {
    const start = api.resourceVersion;
    api.put(checkpoint('cp-1'));
    api.put(checkpoint('cp-1', { spec: { podName: 'other' } }));
    api.remove(CHECKPOINT_API_VERSION, CHECKPOINT_PLURAL, NS, 'cp-1');
    const began = Date.now();
    const { events, done } = await watchPath(CHECKPOINTS_PATH, { resourceVersion: start, timeoutSeconds: 1, allowWatchBookmarks: true });
    expect(await done).toBeNull(); // a clean end: client-node's done callback gets no error
    expect(Date.now() - began).toBeGreaterThanOrEqual(900);
    expect(events).toEqual(['ADDED cp-1', 'MODIFIED cp-1', 'DELETED cp-1', 'BOOKMARK ']);
  });

  it('resets connections on closeWatches({ abrupt: true }), which stops an informer with an error', async () => {
    const { informer } = checkpointInformer();
    const errors: unknown[] = [];
    informer.on('error', (err: unknown) => errors.push(err));
    await informer.start();
    api.closeWatches({ abrupt: true });
    await vi.waitFor(() => expect(errors).toHaveLength(1));
    expect(api.watchCount).toBe(0);
  });
});

describe('fault injection', () => {
  it('fails the next matching requests with the given status, then serves normally', async () => {
    const core = kc.makeApiClient(CoreV1Api);
    api.put({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'creds', namespace: NS } });
    api.failNext({ method: 'GET', pathPrefix: '/api/v1/namespaces/default/secrets', status: 503, times: 2 });

    for (let i = 0; i < 2; i++) {
      const err = await rejection(core.readNamespacedSecret({ namespace: NS, name: 'creds' }));
      expect(statusOf(err)).toMatchObject({ code: 503, reason: 'ServiceUnavailable' });
    }
    expect((await core.readNamespacedSecret({ namespace: NS, name: 'creds' })).metadata?.name).toBe('creds');
    expect(api.requests.map((r) => r.status)).toEqual([503, 503, 200]);
  });

  it('sends Retry-After with an injected 429', async () => {
    api.failNext({ status: 429, retryAfterSeconds: 3 });
    const err = await rejection(kc.makeApiClient(CoreV1Api).listNamespacedPod({ namespace: NS }));
    expect((err as ApiException<string>).headers['retry-after']).toBe('3');
    expect(statusOf(err)).toMatchObject({ code: 429, reason: 'TooManyRequests', details: { retryAfterSeconds: 3 } });
  });

  it('fails lists and watches alike; client-node reports them differently (code vs statusCode)', async () => {
    const { informer } = checkpointInformer();
    const errors: unknown[] = [];
    informer.on('error', (err: unknown) => errors.push(err));

    api.failNext({ pathPrefix: CHECKPOINTS_PATH, watch: false, status: 500 });
    await informer.start();
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(ApiException);
    expect((errors[0] as ApiException<string>).code).toBe(500);

    api.failNext({ pathPrefix: CHECKPOINTS_PATH, watch: true, status: 503 });
    await informer.start();
    await vi.waitFor(() => expect(errors).toHaveLength(2));
    expect(errors[1]).not.toBeInstanceOf(ApiException);
    expect(errors[1]).toMatchObject({ statusCode: 503, message: 'Service Unavailable' });
  });
});

describe('test-side controls', () => {
  it('stores copies: nothing a caller holds aliases the store', () => {
    const input = pod('p1', 'node-a', { app: 'web' });
    const stored = api.put(input);
    input.metadata!.labels!.app = 'changed-input';
    stored.metadata!.labels!.app = 'changed-output';
    const read = api.get<KubeObject>('v1', 'pods', NS, 'p1')!;
    expect(read.metadata?.labels).toEqual({ app: 'web' });
    read.metadata!.labels!.app = 'changed-read';
    expect(api.list('v1', 'pods', NS)[0].metadata?.labels).toEqual({ app: 'web' });
  });

  it('bumps one global resourceVersion per write, and skips writes that change nothing', () => {
    const first = Number(api.put(pod('p1', 'node-a')).metadata?.resourceVersion);
    const second = Number(api.put(checkpoint('cp-1')).metadata?.resourceVersion);
    expect(second).toBe(first + 1);
    expect(api.put(checkpoint('cp-1')).metadata?.resourceVersion).toBe(String(second));
    expect(api.remove(CHECKPOINT_API_VERSION, CHECKPOINT_PLURAL, NS, 'cp-1')?.metadata?.resourceVersion).toBe(String(second + 1));
    expect(api.remove(CHECKPOINT_API_VERSION, CHECKPOINT_PLURAL, NS, 'cp-1')).toBeUndefined();
    expect(api.resourceVersion).toBe(String(second + 1));
  });

  it('records requests with method, path, query, content type, parsed body and status', async () => {
    await kc.makeApiClient(CoreV1Api).createNamespacedConfigMap({ namespace: NS, body: { metadata: { name: 'cfg' }, data: { k: 'v' } } });
    expect(api.requests).toHaveLength(1);
    expect(api.requests[0]).toMatchObject({
      method: 'POST',
      path: '/api/v1/namespaces/default/configmaps',
      contentType: 'application/json',
      body: { metadata: { name: 'cfg' }, data: { k: 'v' } },
      status: 201,
    });
    api.clearRequests();
    expect(api.requests).toEqual([]);
  });
});
