/**
 * What kubectl-cryo's tests share: a fake kube-apiserver with a kubeconfig file for it, the CLI
 * run in-process with captured output, and the objects a cluster with Cryo holds.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { V1Pod } from '@kubernetes/client-node';
import { CHECKPOINT_API_VERSION, type Checkpoint, type CheckpointStatus, type Migration } from '@cryo/common';
import { FakeKubeApiServer } from '@cryo/test';
import { run, type RunOptions } from './cli.ts';
import type { Output } from './io.ts';

export const NS = 'shop';

export class Capture implements Output {
  text = '';
  readonly isTTY: boolean;

  constructor(isTTY = false) {
    this.isTTY = isTTY;
  }

  write(chunk: string): boolean {
    this.text += chunk;
    return true;
  }
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface TestCluster {
  api: FakeKubeApiServer;
  kubeconfig: string;
  /** Runs `kubectl cryo <argv> --kubeconfig <file> -n shop` in-process. */
  cli(argv: readonly string[], options?: { tty?: boolean; namespace?: string | null } & RunOptions): Promise<CliResult>;
  stop(): Promise<void>;
}

export async function startTestCluster(): Promise<TestCluster> {
  const api = await FakeKubeApiServer.start();
  const dir = mkdtempSync(join(tmpdir(), 'kubectl-cryo-'));
  const kubeconfig = api.writeKubeconfigFile(dir);
  return {
    api,
    kubeconfig,
    async cli(argv, options = {}) {
      const stdout = new Capture(options.tty === true);
      const stderr = new Capture(false);
      const namespace = options.namespace === undefined ? ['-n', NS] : options.namespace === null ? [] : ['-n', options.namespace];
      const code = await run([...argv, '--kubeconfig', kubeconfig, ...namespace], { stdout, stderr }, { tuning: { evictionRetryMs: 50 }, ...options });
      return { code, stdout: stdout.text, stderr: stderr.text };
    },
    async stop() {
      await api.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function runningPod(name: string, options: { node?: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string>; owner?: string; containers?: string[]; emptyDir?: boolean } = {}): V1Pod {
  const [ownerKind, ownerName] = (options.owner ?? '').split('/');
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: options.namespace ?? NS,
      labels: options.labels ?? { app: name },
      ...(options.annotations === undefined ? {} : { annotations: options.annotations }),
      ...(options.owner === undefined ? {} : { ownerReferences: [{ apiVersion: 'apps/v1', kind: ownerKind, name: ownerName, uid: `${ownerName}-uid`, controller: true }] }),
    },
    spec: {
      nodeName: options.node ?? 'node-a',
      containers: (options.containers ?? ['app']).map((c) => ({ name: c, image: `${c}:1` })),
      ...(options.emptyDir ? { volumes: [{ name: 'scratch', emptyDir: {} }] } : {}),
    },
    status: { phase: 'Running' },
  };
}

export function node(name: string, options: { unschedulable?: boolean; ready?: boolean } = {}) {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, labels: { 'kubernetes.io/hostname': name } },
    spec: options.unschedulable === true ? { unschedulable: true } : {},
    status: { conditions: [{ type: 'Ready', status: options.ready === false ? 'False' : 'True' }] },
  };
}

export const CHECKPOINT_IMAGE = `registry.example/cryo-checkpoints/${NS}@sha256:${'a'.repeat(64)}`;

export function succeededCheckpoint(name: string, podName = 'web', status: CheckpointStatus = {}): Checkpoint {
  return {
    apiVersion: CHECKPOINT_API_VERSION,
    kind: 'Checkpoint',
    metadata: { name, namespace: NS },
    spec: { podName },
    status: {
      phase: 'Succeeded',
      nodeName: 'node-a',
      message: 'checkpointed 1 container',
      storage: { type: 'registry', className: 'team-registry' },
      totalSize: '41.0 MiB',
      totalSizeBytes: 41 * 1024 * 1024,
      containers: [{ name: 'app', restoreReference: CHECKPOINT_IMAGE, referenceType: 'image', sizeBytes: 41 * 1024 * 1024, runtime: 'containerd', baseImage: 'app:1', mountDestinations: ['/data'] }],
      podTemplate: {
        metadata: { labels: { app: podName, 'pod-template-hash': '7c9f8' }, annotations: { team: 'shop' } },
        spec: { nodeName: 'node-a', containers: [{ name: 'app', image: 'app:1' }] },
      },
      ...status,
    },
  };
}

export function migration(name: string, podName: string, spec: Partial<Migration['spec']> = {}, status: Migration['status'] = undefined, namespace = NS): Migration {
  return {
    apiVersion: CHECKPOINT_API_VERSION,
    kind: 'Migration',
    metadata: { name, namespace },
    spec: { podName, ...spec },
    ...(status === undefined ? {} : { status }),
  };
}

/** An events.k8s.io/v1 Event about a Cryo object, as the node agent writes one. */
export function eventAbout(kind: string, name: string, reason: string, note: string, type: 'Normal' | 'Warning' = 'Normal') {
  return {
    apiVersion: 'events.k8s.io/v1',
    kind: 'Event',
    metadata: { name: `${name}-${reason.toLowerCase()}`, namespace: NS },
    eventTime: new Date().toISOString().replace('Z', '000Z'),
    reportingController: 'cryo.dev/node-agent',
    reportingInstance: 'cryo-node-agent-node-a',
    action: 'Checkpoint',
    reason,
    note,
    type,
    regarding: { apiVersion: CHECKPOINT_API_VERSION, kind, namespace: NS, name },
  };
}
