/**
 * Test fixtures for Migrations on the fake kube-apiserver: nodes, running pods, and what the
 * other parts of a cluster would do meanwhile — the node agent finishing a Checkpoint, the kubelet
 * running a pod Ready, a ReplicaSet or StatefulSet creating its replacement pod.
 */
import type { V1Node, V1OwnerReference, V1Pod, V1PodSpec } from '@kubernetes/client-node';
import { CHECKPOINT_API_VERSION, CHECKPOINT_PLURAL, MIGRATION_KIND, MIGRATION_PLURAL, type Checkpoint, type CheckpointStatus, type Migration, type MigrationSpec } from '@cryo/common';
import type { FakeKubeApiServer, KubeObject } from '../fakes/kube-apiserver.ts';
import { waitFor } from './wait-for.ts';

export interface NodeOptions {
  ready?: boolean;
  unschedulable?: boolean;
  labels?: Record<string, string>;
  taints?: { key: string; value?: string; effect: string }[];
}

export function testNode(name: string, options: NodeOptions = {}): V1Node {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, labels: { 'kubernetes.io/hostname': name, 'cryo.dev/restore-runtime': 'containerd', ...options.labels } },
    spec: { ...(options.unschedulable === true ? { unschedulable: true } : {}), ...(options.taints === undefined ? {} : { taints: options.taints }) },
    status: { conditions: [{ type: 'Ready', status: options.ready === false ? 'False' : 'True', reason: options.ready === false ? 'KubeletNotReady' : 'KubeletReady' }] },
  };
}

export interface PodOptions {
  /** Running and Ready (default), or this phase. */
  phase?: string;
  owner?: { kind: string; name: string; uid: string };
  containers?: string[];
  volumes?: V1PodSpec['volumes'];
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  uid?: string;
}

export function ownerReference(owner: { kind: string; name: string; uid: string }): V1OwnerReference {
  return { apiVersion: 'apps/v1', kind: owner.kind, name: owner.name, uid: owner.uid, controller: true, blockOwnerDeletion: true };
}

/** A pod as the kubelet reports it: Running and Ready on `nodeName` unless `phase` says otherwise. */
export function testPod(namespace: string, name: string, nodeName: string | undefined, options: PodOptions = {}): V1Pod {
  const phase = options.phase ?? 'Running';
  const running = phase === 'Running';
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace,
      labels: { app: 'web', ...options.labels },
      ...(options.annotations === undefined ? {} : { annotations: options.annotations }),
      ...(options.uid === undefined ? {} : { uid: options.uid }),
      ...(options.owner === undefined ? {} : { ownerReferences: [ownerReference(options.owner)] }),
    },
    spec: {
      ...(nodeName === undefined ? {} : { nodeName }),
      containers: (options.containers ?? ['app']).map((c) => ({ name: c, image: `registry.example/${c}:1` })),
      ...(options.volumes === undefined ? {} : { volumes: options.volumes }),
    },
    status: {
      phase,
      conditions: [
        { type: 'PodScheduled', status: nodeName === undefined ? 'False' : 'True' },
        { type: 'Ready', status: running ? 'True' : 'False', lastTransitionTime: new Date() },
      ],
    },
  };
}

/** What a node agent writes when it has checkpointed `pod` into a registry. */
export function succeededCheckpointStatus(pod: V1Pod, overrides: Partial<CheckpointStatus> = {}): CheckpointStatus {
  return {
    phase: 'Succeeded',
    nodeName: pod.spec?.nodeName,
    completionTime: new Date().toISOString(),
    message: `checkpointed ${pod.spec?.containers.length} containers`,
    storage: { type: 'registry' },
    totalSize: '12.0 MiB',
    totalSizeBytes: 12 * 1024 * 1024,
    containers: (pod.spec?.containers ?? []).map((c, i) => ({
      name: c.name,
      restoreReference: `registry.example/cryo-checkpoints/${pod.metadata?.namespace}@sha256:${String(i).repeat(64)}`,
      referenceType: 'image',
      baseImage: c.image,
      mountDestinations: [],
      runtime: 'containerd',
    })),
    podTemplate: { metadata: { labels: pod.metadata?.labels ?? {}, annotations: pod.metadata?.annotations ?? {} }, spec: pod.spec! },
    ...overrides,
  };
}

/** The Migration as a user creates it. */
export function testMigration(namespace: string, name: string, spec: MigrationSpec): Migration {
  return { apiVersion: CHECKPOINT_API_VERSION, kind: MIGRATION_KIND, metadata: { name, namespace }, spec };
}

/** Reads and writes of Migrations, Checkpoints and pods on the fake, as the cluster's other parts do them. */
export class MigrationWorld {
  readonly api: FakeKubeApiServer;
  readonly namespace: string;

  constructor(api: FakeKubeApiServer, namespace: string) {
    this.api = api;
    this.namespace = namespace;
  }

  migration(name: string): Migration | undefined {
    return this.api.get<Migration>(CHECKPOINT_API_VERSION, MIGRATION_PLURAL, this.namespace, name);
  }

  checkpoint(name: string): Checkpoint | undefined {
    return this.api.get<Checkpoint>(CHECKPOINT_API_VERSION, CHECKPOINT_PLURAL, this.namespace, name);
  }

  pod(name: string): V1Pod | undefined {
    return this.api.get<V1Pod>('v1', 'pods', this.namespace, name);
  }

  pods(): V1Pod[] {
    return this.api.list<V1Pod>('v1', 'pods', this.namespace);
  }

  /**
   * The node agent's part: the Checkpoint of `pod` (once it exists, within `timeoutMs`) ends with
   * this status.
   */
  async finishCheckpoint(name: string, pod: V1Pod, overrides: Partial<CheckpointStatus> = {}, timeoutMs = 5_000): Promise<Checkpoint> {
    const checkpoint = await waitFor(() => this.checkpoint(name), { what: `Checkpoint ${name}`, timeoutMs });
    return this.api.put({ ...checkpoint, status: succeededCheckpointStatus(pod, overrides) }) as unknown as Checkpoint;
  }

  /** The scheduler's and kubelet's part: the pod (once it exists) runs Ready on `nodeName`. */
  async runReady(name: string, nodeName: string): Promise<V1Pod> {
    const pod = await waitFor(() => this.pod(name), { what: `pod ${name}` });
    return this.api.put({
      ...pod,
      spec: { ...pod.spec!, nodeName },
      status: { phase: 'Running', conditions: [{ type: 'PodScheduled', status: 'True' }, { type: 'Ready', status: 'True', lastTransitionTime: new Date() }] },
    }) as unknown as V1Pod;
  }

  /** Events recorded about a Migration, oldest first: `Type Reason: note`. */
  events(migration: string): string[] {
    return this.api
      .list<KubeObject & { type: string; reason: string; note: string; regarding: { kind: string; name: string } }>('events.k8s.io/v1', 'events', this.namespace)
      .filter((e) => e.regarding.kind === MIGRATION_KIND && e.regarding.name === migration)
      // Listed by name, which is random: ordered by when they were written.
      .sort((a, b) => Number(a.metadata?.resourceVersion) - Number(b.metadata?.resourceVersion))
      .map((e) => `${e.type} ${e.reason}: ${e.note}`);
  }
}
