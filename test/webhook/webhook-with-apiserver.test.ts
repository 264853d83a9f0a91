/**
 * The whole webhook as it runs in a cluster: generated TLS shared through the Secret, caBundle in
 * the MutatingWebhookConfiguration, Checkpoints from a watch, admissions over real HTTPS, all
 * against the shared fake kube-apiserver through the real @kubernetes/client-node.
 */
import { readFileSync } from 'node:fs';
import https from 'node:https';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { applyPatch, type Operation } from 'rfc6902';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import type { V1MutatingWebhookConfiguration, V1Pod, V1PolicyRule, V1Secret } from '@kubernetes/client-node';
import { annotations, nodeLabels, silentLogger } from '@cryo/common';
import { hookPodOf } from '@cryo/node-agent';
import { readWebhookConfig, startWebhook, type RunningWebhook } from '@cryo/webhook';
import {
  describeRbacAttributes,
  FakeKubeApiServer,
  httpsRequest,
  isGranted,
  loadAdmissionReview,
  loadCheckpoint,
  postJson,
  rbacAttributesOf,
  waitFor,
  type HttpsTarget,
  type RbacAttributes,
  type RbacGrant,
} from '@cryo/test';

const SERVERNAME = 'cryo-webhook.cryo-system.svc';
const mutatingWebhookManifest = parseYaml(readFileSync(new URL('../../manifests/mutating-webhook.yaml', import.meta.url), 'utf8'));

/** What manifests/webhook-rbac.yaml grants the webhook: its ClusterRole everywhere, its Role in cryo-system. */
const webhookGrants: RbacGrant[] = parseAllDocuments(readFileSync(new URL('../../manifests/webhook-rbac.yaml', import.meta.url), 'utf8'))
  .map((document) => document.toJS() as { kind: string; metadata: { namespace?: string }; rules?: V1PolicyRule[] })
  .filter((object) => object.kind === 'ClusterRole' || object.kind === 'Role')
  .map((role) => ({ ...(role.kind === 'Role' ? { namespace: role.metadata.namespace } : {}), rules: role.rules ?? [] }));

/** The webhook's requests to the API so far, as RBAC authorizes them (the fake does not). */
const requestsAsRbac = (): RbacAttributes[] => api.requests.map(rbacAttributesOf).filter((request) => request !== undefined);

let api: FakeKubeApiServer;
const running: RunningWebhook[] = [];

beforeEach(async () => {
  api = await FakeKubeApiServer.start();
  api.put(mutatingWebhookManifest);
  api.put(loadCheckpoint('succeeded-registry'));
});

afterEach(async () => {
  await Promise.all(running.splice(0).map((w) => w.stop()));
  // Whatever a test did, a real kube-apiserver with manifests/webhook-rbac.yaml would have allowed every request.
  const ungranted = requestsAsRbac().filter((request) => !isGranted(request, webhookGrants));
  await api.stop();
  expect(ungranted.map(describeRbacAttributes)).toEqual([]);
});

async function start(extraArgs: string[] = []): Promise<RunningWebhook> {
  const config = readWebhookConfig(['--port', '0', '--tls-resync', '1s', ...extraArgs], {});
  const webhook = await startWebhook(config, { kubeConfig: api.kubeConfig(), logger: silentLogger(), host: '127.0.0.1' });
  running.push(webhook);
  await until(() => webhook.notReadyReason() === undefined, 'the webhook to be ready');
  return webhook;
}

const until = (check: () => boolean, what: string) => waitFor(check, { what, timeoutMs: 10_000 });

function caFromSecret(): string {
  const secret = api.get<V1Secret>('v1', 'secrets', 'cryo-system', 'cryo-webhook-tls');
  expect(secret, 'the TLS Secret').toBeDefined();
  return Buffer.from(secret!.data!['ca.crt'], 'base64').toString('utf8');
}

/** The decoded caBundle of each webhook in the configuration. */
function caBundles(): (string | undefined)[] {
  const configuration = api.get<V1MutatingWebhookConfiguration>(
    'admissionregistration.k8s.io/v1', 'mutatingwebhookconfigurations', undefined, 'cryo-webhook',
  )!;
  return configuration.webhooks!.map((hook) =>
    hook.clientConfig.caBundle === undefined ? undefined : Buffer.from(hook.clientConfig.caBundle, 'base64').toString('utf8'),
  );
}

const target = (webhook: RunningWebhook): HttpsTarget => ({ port: webhook.port, ca: caFromSecret(), servername: SERVERNAME });

async function admit(webhook: RunningWebhook, review: unknown) {
  const res = await postJson(target(webhook), '/mutate', review);
  expect(res.status).toBe(200);
  return res.json<{ response: { allowed: boolean; patch?: string; warnings?: string[]; status?: { code: number; message: string; reason: string } } }>().response;
}

/** The pod as the apiserver stores it: the patch applied (independent RFC 6902 implementation), a uid given. */
function admitted(pod: V1Pod, patch: string | undefined, uid: string): V1Pod {
  const result = structuredClone(pod);
  const ops = patch === undefined ? [] : (JSON.parse(Buffer.from(patch, 'base64').toString('utf8')) as Operation[]);
  expect(applyPatch(result, ops).filter((e) => e !== null)).toEqual([]);
  result.metadata = { ...result.metadata, namespace: 'shop', uid };
  return result;
}

describe('the webhook against the kube-apiserver', () => {
  it('creates the TLS Secret, writes the caBundle and restores a pod over verified TLS', async () => {
    const webhook = await start();
    const ca = caFromSecret();
    // Readiness does not wait for the caBundle (the configuration may be applied after the
    // webhook): the keeper writes it as soon as it can.
    await until(() => caBundles().every((bundle) => bundle === ca), 'the caBundle');
    // restore.cryo.dev and migrate.cryo.dev.
    expect(caBundles()).toHaveLength(2);
    const review = loadAdmissionReview('restore-deployment-pod');
    const response = await admit(webhook, review);
    expect(response.allowed).toBe(true);
    // The Checkpoint records containerd took it: the pod runs only where the node agent found containerd able to restore.
    expect(admitted(review.request.object, response.patch, 'a1b2c3d4-0000-4000-8000-00000000000a').spec!.affinity).toEqual({
      nodeAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: nodeLabels.RESTORE_RUNTIME, operator: 'In', values: ['containerd'] }] }] },
      },
    });
    // What manifests/webhook-rbac.yaml allows: only its own configuration and Secret, by name.
    for (const request of api.requests) {
      if (request.path.includes('/mutatingwebhookconfigurations')) {
        const byName = request.path.endsWith('/mutatingwebhookconfigurations/cryo-webhook');
        const selected = request.query.get('fieldSelector') === 'metadata.name=cryo-webhook';
        expect(byName || selected, `${request.method} ${request.path}`).toBe(true);
      }
      if (request.path.includes('/secrets')) {
        const byName = request.path.endsWith('/namespaces/cryo-system/secrets/cryo-webhook-tls');
        const create = request.method === 'POST' && request.path.endsWith('/namespaces/cryo-system/secrets');
        expect(byName || create, `${request.method} ${request.path}`).toBe(true);
      }
    }
  });

  it('admits a pod for a Checkpoint created after the webhook started', async () => {
    const webhook = await start();
    const fresh = loadCheckpoint('succeeded-registry');
    fresh.metadata!.name = 'created-later';
    fresh.metadata!.uid = '0b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e';
    api.put(fresh);
    const review = loadAdmissionReview('restore-deployment-pod');
    review.request.object.metadata!.annotations![annotations.RESTORE_FROM] = 'created-later';
    expect((await admit(webhook, review)).allowed).toBe(true);
  });

  it('reads the API directly when its watch is down and the cache has not seen a Checkpoint', async () => {
    const webhook = await start();
    // Every watch attempt fails from now on, and the open one is cut: the cache goes stale.
    api.failNext({ watch: true, status: 500, times: 1000 });
    api.closeWatches({ abrupt: true });
    await until(() => api.watchCount === 0, 'the watch to close');
    const unseen = loadCheckpoint('succeeded-registry');
    unseen.metadata!.name = 'not-in-cache';
    api.put(unseen);
    api.clearRequests();
    const review = loadAdmissionReview('restore-deployment-pod');
    review.request.object.metadata!.annotations![annotations.RESTORE_FROM] = 'not-in-cache';
    expect((await admit(webhook, review)).allowed).toBe(true);
    expect(api.requests.some((r) => r.method === 'GET' && r.path.endsWith('/namespaces/shop/checkpoints/not-in-cache'))).toBe(true);
  });

  it('keeps its cache current across watch disconnects and sees deletions', async () => {
    const webhook = await start();
    api.closeWatches();
    await api.waitForWatches(1);
    api.remove('cryo.dev/v1alpha1', 'checkpoints', 'shop', 'orders-api-warm');
    const response = await admit(webhook, loadAdmissionReview('restore-deployment-pod'));
    expect(response.allowed).toBe(false);
    expect(response.status!.code).toBe(404);
  });

  it('makes a copy restored from a hook-enabled pod hook-enabled, so the node agent serves its socket', async () => {
    const webhook = await start();
    api.put(loadCheckpoint('succeeded-with-hooks'));
    const review = loadAdmissionReview('restore-hooked-copy-pod');
    const response = await admit(webhook, review);
    expect(response.allowed).toBe(true);
    expect(response.warnings).toEqual([
      expect.stringContaining('was taken with the hook socket mounted'),
      expect.stringContaining(`restores only on nodes labelled ${nodeLabels.RESTORE_RUNTIME}`),
    ]);
    const uid = '3c9e1f0a-7b2d-4e5f-8a6b-9c0d1e2f3a4b';
    const pod = admitted(review.request.object, response.patch, uid);
    expect(pod.metadata!.annotations![annotations.HOOKS]).toBe(annotations.HOOKS_ENABLED);
    expect(hookPodOf(pod)).toEqual({ uid, name: 'orders-api-copy-1', namespace: 'shop' });
    // Without the webhook's annotation the agent would serve no socket for it.
    const others = { ...pod.metadata!.annotations };
    delete others[annotations.HOOKS];
    expect(hookPodOf({ ...pod, metadata: { ...pod.metadata, annotations: others } })).toBeNull();
  });

  it('refuses a restore from a directory-store Checkpoint: the kubelet would refuse the archive path as image', async () => {
    const webhook = await start();
    api.put(loadCheckpoint('succeeded-shared-directory'));
    const review = loadAdmissionReview('restore-deployment-pod');
    review.request.object.metadata!.annotations![annotations.RESTORE_FROM] = 'orders-api-shared';
    const response = await admit(webhook, review);
    expect(response.allowed).toBe(false);
    expect(response.patch).toBeUndefined();
    expect(response.status).toMatchObject({ code: 409, reason: 'checkpoint-stored-as-archive' });
    expect(response.status!.message).toMatch(/^Checkpoint "shop\/orders-api-shared" is stored as archives in a directory store .*starts containers only from images.*spec\.storage\.registry\.repository/);
  });

  it('writes nothing to the API while admitting, dry run or not', async () => {
    const webhook = await start();
    api.clearRequests();
    await admit(webhook, loadAdmissionReview('restore-dry-run-pod'));
    await admit(webhook, loadAdmissionReview('restore-deployment-pod'));
    expect(api.requests.filter((r) => r.method !== 'GET')).toEqual([]);
  });

  it('rewrites a caBundle that something reset', async () => {
    await start();
    const ca = caFromSecret();
    await until(() => caBundles().every((bundle) => bundle === ca), 'the caBundle in sync');
    api.put(mutatingWebhookManifest);
    expect(caBundles()).toEqual([undefined, undefined]);
    await until(() => caBundles().every((bundle) => bundle === ca), 'the caBundle to be rewritten');
  });

  it('lets two replicas share one CA, so the apiserver trusts both', async () => {
    const [a, b] = await Promise.all([start(), start()]);
    const ca = caFromSecret();
    for (const replica of [a, b]) {
      const res = await httpsRequest({ port: replica.port, ca, servername: SERVERNAME }, 'GET', '/healthz');
      expect(res.status).toBe(200);
    }
    expect(api.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/secrets') && r.status === 201)).toHaveLength(1);
  });

  it('renews its serving certificate before expiry and swaps it in without dropping connections', async () => {
    const webhook = await start(['--serving-cert-validity', '4s', '--serving-cert-renew-before', '3s']);
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
    const kept = { ...target(webhook), agent };
    const first = await httpsRequest(kept, 'GET', '/healthz');
    const sockets = new Set<unknown>();
    agent.on('free', (socket) => sockets.add(socket));
    // A new connection (and handshake) sees the renewed certificate once it is swapped in.
    const fresh = { ...target(webhook), agent: false as const };
    await waitFor(async () => (await httpsRequest(fresh, 'GET', '/healthz')).peerSerial !== first.peerSerial, {
      what: 'a renewed serving certificate',
      timeoutMs: 15_000,
      intervalMs: 200,
    });
    // The connection opened before the swap is still open and still answers.
    const again = await httpsRequest(kept, 'GET', '/healthz');
    expect(again.status).toBe(200);
    expect(again.peerSerial).toBe(first.peerSerial);
    expect(sockets.size).toBe(1);
    agent.destroy();
    const metrics = (await httpsRequest(target(webhook), 'GET', '/metrics')).text;
    expect(metrics).toMatch(/cryo_webhook_serving_cert_rotations_total [1-9]/);
  });

  it('uses every verb manifests/webhook-rbac.yaml grants it (each request of every test is checked against it after the test)', async () => {
    // Serving certificates short-lived enough to be renewed (the Secret replaced) within a second.
    const webhook = await start(['--serving-cert-validity', '4s', '--serving-cert-renew-before', '3s']);
    await until(() => api.requests.some((r) => r.method === 'PUT' && r.path.endsWith('/secrets/cryo-webhook-tls') && r.status === 200), 'the TLS Secret renewed');
    await until(() => caBundles().every((bundle) => bundle === caFromSecret()), 'the caBundle');
    // A Checkpoint the cache has not seen is read by name (this one does not exist).
    const review = loadAdmissionReview('restore-deployment-pod');
    review.request.object.metadata!.annotations![annotations.RESTORE_FROM] = 'never-created';
    await admit(webhook, review);
    const used = new Set(requestsAsRbac().map(({ verb, apiGroup, resource }) => `${verb} ${apiGroup}/${resource}`));
    const granted = new Set(webhookGrants.flatMap(({ rules }) => rules.flatMap((rule) => rule.verbs.flatMap((verb) => (rule.resources ?? []).flatMap((resource) => (rule.apiGroups ?? []).map((group) => `${verb} ${group}/${resource}`))))));
    expect([...used].sort()).toEqual([...granted].sort());
  });

  it('is not ready while it cannot list Checkpoints, and becomes ready when it can', async () => {
    api.failNext({ method: 'GET', pathPrefix: '/apis/cryo.dev/v1alpha1/checkpoints', status: 503, times: 2 });
    const config = readWebhookConfig(['--port', '0'], {});
    const webhook = await startWebhook(config, { kubeConfig: api.kubeConfig(), logger: silentLogger(), host: '127.0.0.1' });
    running.push(webhook);
    const notReady = await httpsRequest(target(webhook), 'GET', '/readyz');
    expect(notReady.status).toBe(503);
    expect(notReady.text).toContain('Checkpoint cache not synced yet');
    await until(() => webhook.notReadyReason() === undefined, 'readiness after the API recovers');
  });
});
