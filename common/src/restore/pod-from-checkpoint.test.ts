import type { V1PodSpec } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import * as annotations from '../annotations.ts';
import type { Checkpoint, CheckpointPodTemplate } from '../api/checkpoint.ts';
import { cloneJson } from '../clone-json.ts';
import { CONTAINER_NAME_ENV, HOOK_SOCKET_ENV, HOOK_VOLUME_NAME, POD_UID_ENV } from '../hook-socket.ts';
import * as nodeLabels from '../node-labels.ts';
import * as podLabels from '../pod-labels.ts';
import { CONTROLLER_POD_LABELS, podFromCheckpoint, PodFromCheckpointError } from './pod-from-checkpoint.ts';

const CHECKPOINT_IMAGE = 'registry.example/cryo-checkpoints/shop@sha256:' + 'a'.repeat(64);
const OLD_CHECKPOINT_IMAGE = 'registry.example/cryo-checkpoints/shop@sha256:' + 'b'.repeat(64);

/** A pod as the node agent records it: a Deployment's replica that was itself restored, with hooks, by the webhook. */
function restoredDeploymentPodTemplate(): CheckpointPodTemplate {
  return {
    metadata: {
      labels: { app: 'orders', tier: 'api', 'pod-template-hash': '7c9f8d6b5' },
      annotations: {
        'prometheus.io/scrape': 'true',
        [annotations.HOOKS]: annotations.HOOKS_ENABLED,
        [annotations.HOOKS_STATUS]: annotations.HOOKS_STATUS_INJECTED,
        [annotations.RESTORE_FROM]: 'orders-older',
        [annotations.ORIGINAL_IMAGES]: JSON.stringify({ app: 'registry.example/orders:1.4' }),
        [annotations.RESTORED_CHECKPOINT_UID]: '0b7d3c4e-1111-2222-3333-444455556666',
        [annotations.RESTORED_CONTAINERS]: 'app',
        'kubectl.kubernetes.io/restartedAt': '2026-12-01T10:00:00Z',
      },
    },
    spec: {
      nodeName: 'node-a',
      priority: 1000,
      priorityClassName: 'high',
      preemptionPolicy: 'PreemptLowerPriority',
      overhead: { cpu: '250m' },
      serviceAccountName: 'orders',
      imagePullSecrets: [{ name: 'checkpoint-pull' }],
      affinity: {
        nodeAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: {
            nodeSelectorTerms: [
              {
                matchExpressions: [
                  { key: 'topology.kubernetes.io/zone', operator: 'In', values: ['eu-1a'] },
                  { key: nodeLabels.RESTORE_RUNTIME, operator: 'In', values: ['containerd'] },
                ],
              },
            ],
          },
        },
        podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 1, podAffinityTerm: { topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: { app: 'orders' } } } }] },
      },
      initContainers: [
        { name: 'migrate-db', image: 'registry.example/orders-migrate:1.4', volumeMounts: [{ name: 'kube-api-access-x7k2p', mountPath: '/var/run/secrets/kubernetes.io/serviceaccount', readOnly: true }] },
      ],
      containers: [
        {
          name: 'app',
          image: OLD_CHECKPOINT_IMAGE,
          env: [
            { name: POD_UID_ENV, valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.uid' } } },
            { name: HOOK_SOCKET_ENV, value: '/run/cryo/agent.sock' },
            { name: CONTAINER_NAME_ENV, value: 'app' },
            { name: 'LOG_LEVEL', value: 'info' },
          ],
          volumeMounts: [
            { name: 'data', mountPath: '/data' },
            { name: 'kube-api-access-x7k2p', mountPath: '/var/run/secrets/kubernetes.io/serviceaccount', readOnly: true },
            { name: HOOK_VOLUME_NAME, mountPath: '/run/cryo', subPathExpr: `$(${POD_UID_ENV})` },
          ],
        },
        {
          name: 'proxy',
          image: 'registry.example/envoy:1.30',
          env: [
            { name: POD_UID_ENV, valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.uid' } } },
            { name: HOOK_SOCKET_ENV, value: '/run/cryo/agent.sock' },
            { name: CONTAINER_NAME_ENV, value: 'proxy' },
          ],
          volumeMounts: [{ name: HOOK_VOLUME_NAME, mountPath: '/run/cryo', subPathExpr: `$(${POD_UID_ENV})` }],
        },
      ],
      ephemeralContainers: [{ name: 'debugger-abcde', image: 'busybox' }],
      volumes: [
        { name: 'data', emptyDir: {} },
        {
          name: 'kube-api-access-x7k2p',
          projected: {
            defaultMode: 420,
            sources: [
              { serviceAccountToken: { expirationSeconds: 3607, path: 'token' } },
              { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
              { downwardAPI: { items: [{ path: 'namespace', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } }] } },
            ],
          },
        },
        { name: HOOK_VOLUME_NAME, hostPath: { path: '/var/run/cryo/hooks', type: 'DirectoryOrCreate' } },
      ],
      tolerations: [{ key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 }],
      restartPolicy: 'Always',
      hostname: 'orders',
    },
  };
}

function checkpointOf(template: CheckpointPodTemplate | undefined, extra: Partial<Checkpoint['status']> = {}): Checkpoint {
  return {
    apiVersion: 'cryo.dev/v1alpha1',
    kind: 'Checkpoint',
    metadata: { name: 'orders-warm', namespace: 'shop', uid: 'c0ffee00-0000-0000-0000-000000000001', resourceVersion: '42' },
    spec: { podName: 'orders-7c9f8d6b5-x2vqz' },
    status: {
      phase: 'Succeeded',
      nodeName: 'node-a',
      containers: [{ name: 'app', restoreReference: CHECKPOINT_IMAGE, referenceType: 'image', runtime: 'containerd' }],
      ...(template === undefined ? {} : { podTemplate: template }),
      ...extra,
    },
  };
}

describe('podFromCheckpoint', () => {
  it('re-creates the pod as it ran, annotated to restore from the checkpoint, in its namespace', () => {
    const pod = podFromCheckpoint(checkpointOf(restoredDeploymentPodTemplate()));
    expect(pod.apiVersion).toBe('v1');
    expect(pod.kind).toBe('Pod');
    expect(pod.metadata).toEqual({
      namespace: 'shop',
      generateName: 'orders-7c9f8d6b5-x2vqz-restored-',
      labels: { app: 'orders', tier: 'api', [podLabels.RESTORED_FROM]: 'orders-warm' },
      annotations: {
        'prometheus.io/scrape': 'true',
        [annotations.HOOKS]: annotations.HOOKS_ENABLED,
        [annotations.RESTORE_FROM]: 'orders-warm',
        'kubectl.kubernetes.io/restartedAt': '2026-12-01T10:00:00Z',
      },
    });
  });

  it("leaves out what belongs to the old pod or is computed at admission, and keeps the rest of the spec", () => {
    const spec = podFromCheckpoint(checkpointOf(restoredDeploymentPodTemplate())).spec!;
    for (const field of ['nodeName', 'priority', 'preemptionPolicy', 'overhead', 'ephemeralContainers'] as const) expect(spec).not.toHaveProperty(field);
    expect(spec.priorityClassName).toBe('high');
    expect(spec.serviceAccountName).toBe('orders');
    expect(spec.imagePullSecrets).toEqual([{ name: 'checkpoint-pull' }]);
    expect(spec.tolerations).toEqual(restoredDeploymentPodTemplate().spec.tolerations);
    expect(spec.restartPolicy).toBe('Always');
    expect(spec.hostname).toBe('orders');
    expect(spec.affinity?.podAntiAffinity).toEqual(restoredDeploymentPodTemplate().spec.affinity?.podAntiAffinity);
  });

  it('removes the service account token volume and its mounts, so the ServiceAccount admission plugin adds a fresh one', () => {
    const spec = podFromCheckpoint(checkpointOf(restoredDeploymentPodTemplate())).spec!;
    expect(spec.volumes?.map((v) => v.name)).toEqual(['data']);
    expect(spec.initContainers![0]).not.toHaveProperty('volumeMounts');
    expect(spec.containers[0].volumeMounts).toEqual([{ name: 'data', mountPath: '/data' }]);
  });

  it("keeps a volume named like the token volume that is not one (a user's own)", () => {
    const template = restoredDeploymentPodTemplate();
    template.spec.volumes = [{ name: 'kube-api-access-mine', configMap: { name: 'mine' } }];
    expect(podFromCheckpoint(checkpointOf(template)).spec!.volumes).toEqual([{ name: 'kube-api-access-mine', configMap: { name: 'mine' } }]);
  });

  it("removes the webhook's hook socket (volume, mounts, env) and keeps cryo.dev/hooks so the webhook adds it again", () => {
    const pod = podFromCheckpoint(checkpointOf(restoredDeploymentPodTemplate()));
    const [app, proxy] = pod.spec!.containers;
    expect(app.env).toEqual([{ name: 'LOG_LEVEL', value: 'info' }]);
    expect(proxy).not.toHaveProperty('env');
    expect(proxy).not.toHaveProperty('volumeMounts');
    expect(pod.spec!.volumes!.some((v) => v.name === HOOK_VOLUME_NAME)).toBe(false);
    expect(pod.metadata!.annotations![annotations.HOOKS]).toBe(annotations.HOOKS_ENABLED);
  });

  it('keeps a hook socket volume the webhook did not inject (no hooks-status): not ours to remove', () => {
    const template = restoredDeploymentPodTemplate();
    delete template.metadata.annotations![annotations.HOOKS_STATUS];
    const spec = podFromCheckpoint(checkpointOf(template)).spec!;
    expect(spec.volumes!.map((v) => v.name)).toContain(HOOK_VOLUME_NAME);
    expect(spec.containers[0].env!.map((e) => e.name)).toContain(POD_UID_ENV);
  });

  it("puts the pod's own images back where the webhook had put checkpoint images, so its matching by name works", () => {
    const spec = podFromCheckpoint(checkpointOf(restoredDeploymentPodTemplate())).spec!;
    expect(spec.containers.map((c) => c.image)).toEqual(['registry.example/orders:1.4', 'registry.example/envoy:1.30']);
    expect(spec.initContainers![0].image).toBe('registry.example/orders-migrate:1.4');
  });

  it('keeps images as they are without (or with a damaged) cryo.dev/original-images', () => {
    const template = restoredDeploymentPodTemplate();
    template.metadata.annotations![annotations.ORIGINAL_IMAGES] = '{not json';
    expect(podFromCheckpoint(checkpointOf(template)).spec!.containers[0].image).toBe(OLD_CHECKPOINT_IMAGE);
    delete template.metadata.annotations![annotations.ORIGINAL_IMAGES];
    expect(podFromCheckpoint(checkpointOf(template)).spec!.containers[0].image).toBe(OLD_CHECKPOINT_IMAGE);
  });

  it('drops the labels controllers select their own pods by, so no owner adopts the copy; the app labels stay for Services', () => {
    const template = restoredDeploymentPodTemplate();
    for (const label of CONTROLLER_POD_LABELS) template.metadata.labels![label] = 'x';
    const labels = podFromCheckpoint(checkpointOf(template)).metadata!.labels!;
    expect(labels).toEqual({ app: 'orders', tier: 'api', [podLabels.RESTORED_FROM]: 'orders-warm' });
  });

  it('drops static-pod and last-applied annotations', () => {
    const template = restoredDeploymentPodTemplate();
    Object.assign(template.metadata.annotations!, {
      'kubernetes.io/config.mirror': 'abc',
      'kubernetes.io/config.hash': 'abc',
      'kubernetes.io/config.seen': '2026-12-01T10:00:00Z',
      'kubernetes.io/config.source': 'file',
      'kubectl.kubernetes.io/last-applied-configuration': '{}',
    });
    expect(Object.keys(podFromCheckpoint(checkpointOf(template)).metadata!.annotations!).sort()).toEqual(
      ['kubectl.kubernetes.io/restartedAt', 'prometheus.io/scrape', annotations.HOOKS, annotations.RESTORE_FROM].sort(),
    );
  });

  it('never carries the old pod metadata, even if a template held more than labels and annotations', () => {
    const template = restoredDeploymentPodTemplate();
    Object.assign(template.metadata, { name: 'old', uid: 'u', resourceVersion: '7', creationTimestamp: '2026-01-01T00:00:00Z', ownerReferences: [{ kind: 'ReplicaSet', name: 'orders-7c9f8d6b5' }] });
    (template as unknown as Record<string, unknown>).status = { phase: 'Running' };
    const pod = podFromCheckpoint(checkpointOf(template));
    expect(Object.keys(pod.metadata!).sort()).toEqual(['annotations', 'generateName', 'labels', 'namespace']);
    expect(pod).not.toHaveProperty('status');
  });

  it('takes a name, or a generateName, and adds extra labels last', () => {
    const named = podFromCheckpoint(checkpointOf(restoredDeploymentPodTemplate()), { name: 'orders-copy-1', extraLabels: { copy: '1', tier: 'copies' } });
    expect(named.metadata!.name).toBe('orders-copy-1');
    expect(named.metadata).not.toHaveProperty('generateName');
    expect(named.metadata!.labels).toMatchObject({ copy: '1', tier: 'copies', app: 'orders' });
    expect(podFromCheckpoint(checkpointOf(restoredDeploymentPodTemplate()), { generateName: 'warm-' }).metadata!.generateName).toBe('warm-');
  });

  it("removes the webhook's node requirements from an earlier restore, keeping the user's", () => {
    const spec = podFromCheckpoint(checkpointOf(restoredDeploymentPodTemplate())).spec!;
    expect(spec.affinity!.nodeAffinity).toEqual({
      requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'topology.kubernetes.io/zone', operator: 'In', values: ['eu-1a'] }] }] },
    });
  });

  it("removes a term holding only the webhook's requirements (runtime and the old holding node), and the affinity it leaves empty", () => {
    const template = restoredDeploymentPodTemplate();
    template.spec.affinity = {
      nodeAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: {
          nodeSelectorTerms: [{ matchExpressions: [{ key: nodeLabels.RESTORE_RUNTIME, operator: 'Exists' }], matchFields: [{ key: 'metadata.name', operator: 'In', values: ['node-a'] }] }],
        },
      },
    };
    expect(podFromCheckpoint(checkpointOf(template)).spec).not.toHaveProperty('affinity');
  });

  it("leaves node requirements alone in a pod that was not restored (they are the user's)", () => {
    const template = restoredDeploymentPodTemplate();
    delete template.metadata.annotations![annotations.RESTORED_CHECKPOINT_UID];
    template.spec.affinity = { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: ['node-a'] }] }] } } };
    expect(podFromCheckpoint(checkpointOf(template)).spec!.affinity).toEqual(template.spec.affinity);
  });

  it('pins to a node with a required affinity on its name, ANDed into every existing term', () => {
    const template = restoredDeploymentPodTemplate();
    template.spec.affinity!.nodeAffinity!.requiredDuringSchedulingIgnoredDuringExecution!.nodeSelectorTerms.push({
      matchExpressions: [{ key: 'disk', operator: 'In', values: ['ssd'] }],
      matchFields: [{ key: 'metadata.name', operator: 'In', values: ['node-z'] }],
    });
    const spec = podFromCheckpoint(checkpointOf(template), { nodeName: 'node-b' }).spec!;
    expect(spec).not.toHaveProperty('nodeName');
    expect(spec.affinity!.nodeAffinity!.requiredDuringSchedulingIgnoredDuringExecution!.nodeSelectorTerms).toEqual([
      { matchExpressions: [{ key: 'topology.kubernetes.io/zone', operator: 'In', values: ['eu-1a'] }], matchFields: [{ key: 'metadata.name', operator: 'In', values: ['node-b'] }] },
      { matchExpressions: [{ key: 'disk', operator: 'In', values: ['ssd'] }], matchFields: [{ key: 'metadata.name', operator: 'In', values: ['node-b'] }] },
    ]);
    expect(spec.affinity!.podAntiAffinity).toBeDefined();
  });

  it('pins a pod without any affinity with one term', () => {
    const template = restoredDeploymentPodTemplate();
    delete template.spec.affinity;
    expect(podFromCheckpoint(checkpointOf(template), { nodeName: 'node-b' }).spec!.affinity).toEqual({
      nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: ['node-b'] }] }] } },
    });
  });

  it('keeps a preferred node affinity beside the pin', () => {
    const template = restoredDeploymentPodTemplate();
    const preferred = [{ weight: 10, preference: { matchExpressions: [{ key: 'disk', operator: 'In', values: ['ssd'] }] } }];
    template.spec.affinity = { nodeAffinity: { preferredDuringSchedulingIgnoredDuringExecution: preferred } };
    const nodeAffinity = podFromCheckpoint(checkpointOf(template), { nodeName: 'node-b' }).spec!.affinity!.nodeAffinity!;
    expect(nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution).toEqual(preferred);
    expect(nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution!.nodeSelectorTerms).toHaveLength(1);
  });

  it('does not change the Checkpoint it reads', () => {
    const checkpoint = checkpointOf(restoredDeploymentPodTemplate());
    const before = cloneJson(checkpoint);
    podFromCheckpoint(checkpoint, { nodeName: 'node-b', extraLabels: { a: 'b' } });
    expect(checkpoint).toEqual(before);
  });

  it('cuts a long checkpoint name to a valid label value; the annotation keeps it whole', () => {
    const checkpoint = checkpointOf(restoredDeploymentPodTemplate());
    const long = `${'a'.repeat(60)}-b.c${'d'.repeat(10)}`;
    checkpoint.metadata!.name = long;
    const pod = podFromCheckpoint(checkpoint);
    expect(pod.metadata!.labels![podLabels.RESTORED_FROM]).toBe(`${'a'.repeat(60)}-b`);
    expect(pod.metadata!.annotations![annotations.RESTORE_FROM]).toBe(long);
  });

  it('works from a minimal template (a bare pod with nothing of Cryo in it)', () => {
    const spec: V1PodSpec = { containers: [{ name: 'app', image: 'app:1' }], nodeName: 'node-a' };
    const pod = podFromCheckpoint(checkpointOf({ metadata: {}, spec }), { name: 'app-restored' });
    expect(pod).toEqual({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'app-restored', namespace: 'shop', labels: { [podLabels.RESTORED_FROM]: 'orders-warm' }, annotations: { [annotations.RESTORE_FROM]: 'orders-warm' } },
      spec: { containers: [{ name: 'app', image: 'app:1' }] },
    });
  });

  it('refuses a Checkpoint without a pod template, saying what to do instead', () => {
    const call = () => podFromCheckpoint(checkpointOf(undefined));
    expect(call).toThrow(PodFromCheckpointError);
    expect(call).toThrow(/taken before Cryo recorded pod templates; restore single containers with cryo\.dev\/restore-from/);
  });

  it('says a Checkpoint not yet taken has no template yet', () => {
    expect(() => podFromCheckpoint(checkpointOf(undefined, { phase: 'Running' }))).toThrow(/not taken yet \(phase Running\)/);
  });
});
