import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { V1Node } from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Metrics, nodeLabels } from '@cryo/common';
import { captureLogger, FakeKubeApiServer, type CapturedLogger } from '@cryo/test';
import type { RuntimeRestoreSetting } from './restore-capability.ts';
import { RestoreRuntimeLabel } from './restore-runtime-label.ts';

const NODE = 'worker-1';
let api: FakeKubeApiServer;
let dir: string;
let log: CapturedLogger;
let metrics: Metrics;
const running: RestoreRuntimeLabel[] = [];

beforeEach(async () => {
  api = await FakeKubeApiServer.start();
  dir = mkdtempSync(join(tmpdir(), 'cryo-restore-label-'));
  log = captureLogger();
  metrics = new Metrics({ defaultMetrics: false });
});

afterEach(async () => {
  await Promise.all(running.splice(0).map((label) => label.stop()));
  await api.stop();
  rmSync(dir, { recursive: true, force: true });
});

function putNode(containerRuntimeVersion: string, labels: Record<string, string> = {}): void {
  api.put({
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: NODE, labels: { 'kubernetes.io/hostname': NODE, ...labels } },
    spec: {},
    status: { nodeInfo: { containerRuntimeVersion } },
  });
}

function labeller(setting: RuntimeRestoreSetting = 'auto'): RestoreRuntimeLabel {
  const label = new RestoreRuntimeLabel({
    kubeConfig: api.kubeConfig(),
    nodeName: NODE,
    setting,
    configPaths: { containerdConfig: join(dir, 'config.toml'), crioConfig: join(dir, 'crio.conf'), crioConfigDir: join(dir, 'crio.conf.d') },
    logger: log.logger,
    metrics,
  });
  running.push(label);
  return label;
}

const nodeLabelsNow = () => api.get<V1Node>('v1', 'nodes', undefined, NODE)!.metadata!.labels!;
const patches = () => api.requests.filter((r) => r.method === 'PATCH' && r.path === `/api/v1/nodes/${NODE}`);
const nodeEvents = () => api.list<{ reason: string; type: string; note: string; regarding: { kind: string; name: string; uid?: string }; reportingController: string }>('events.k8s.io/v1', 'events', 'default');
const gauge = async () => (await metrics.render()).body.split('\n').filter((line) => line.startsWith('cryo_node_restore_capable{'));

describe('the restore-runtime label on the agent’s own Node', () => {
  it('labels a containerd 2.1 node with one merge patch of that label alone, records an Event and sets the gauge', async () => {
    putNode('containerd://2.1.9+unknown');
    const uid = api.get<V1Node>('v1', 'nodes', undefined, NODE)!.metadata!.uid;
    const decided = await labeller().check();
    expect(decided).toMatchObject({ runtime: 'containerd', restore: true });
    expect(nodeLabelsNow()).toEqual({ 'kubernetes.io/hostname': NODE, [nodeLabels.RESTORE_RUNTIME]: 'containerd' });
    // What manifests/node-agent-node-policy.yaml lets through: only the label under cryo.dev/.
    expect(patches().map((r) => [r.contentType, r.body, r.status])).toEqual([
      ['application/merge-patch+json', { metadata: { labels: { 'cryo.dev/restore-runtime': 'containerd' } } }, 200],
    ]);
    expect(nodeEvents()).toEqual([
      expect.objectContaining({
        type: 'Normal',
        reason: 'RestoreRuntimeDetected',
        reportingController: 'cryo.dev/node-agent',
        regarding: expect.objectContaining({ kind: 'Node', name: NODE, uid }),
        note: expect.stringContaining('restores containerd checkpoints, labelled cryo.dev/restore-runtime=containerd: containerd 2.1.9 restores checkpoint images by default'),
      }),
    ]);
    expect(await gauge()).toEqual(['cryo_node_restore_capable{runtime="containerd"} 1']);
  });

  it('changes nothing, and records nothing again, when checked again', async () => {
    putNode('containerd://2.1.9+unknown');
    const label = labeller();
    await label.check();
    api.clearRequests();
    await label.check();
    expect(api.requests.map((r) => `${r.method} ${r.path}`)).toEqual([`GET /api/v1/nodes/${NODE}`]);
    expect(nodeEvents()).toHaveLength(1);
  });

  it('removes the label where the runtime cannot restore, and says why in a Warning Event and the log', async () => {
    writeFileSync(join(dir, 'config.toml'), "version = 3\n[plugins.'io.containerd.cri.v1.runtime']\n");
    putNode('containerd://2.2.7', { [nodeLabels.RESTORE_RUNTIME]: 'containerd' });
    expect(await labeller().check()).toMatchObject({ restore: false });
    expect(nodeLabelsNow()).toEqual({ 'kubernetes.io/hostname': NODE });
    expect(patches().map((r) => r.body)).toEqual([{ metadata: { labels: { 'cryo.dev/restore-runtime': null } } }]);
    const why = "containerd 2.2.7 restores only with enable_experimental_restore_via_create = true in its CRI runtime config ([plugins.'io.containerd.cri.v1.runtime'])";
    expect(nodeEvents()).toEqual([expect.objectContaining({ type: 'Warning', reason: 'RestoreNotPossible', note: expect.stringContaining(why) })]);
    expect(log.messages('warn')).toEqual([`this node restores no checkpoints (no label cryo.dev/restore-runtime): ${why}`]);
    expect(await gauge()).toEqual(['cryo_node_restore_capable{runtime="containerd"} 0']);
  });

  it('follows the runtime: a node moved to CRI-O with restore switched on gets the cri-o label', async () => {
    putNode('containerd://2.1.9+unknown');
    const label = labeller();
    await label.check();
    writeFileSync(join(dir, 'crio.conf'), '[crio.runtime]\nenable_criu_support = true\n');
    putNode('cri-o://1.34.11', { [nodeLabels.RESTORE_RUNTIME]: 'containerd' });
    expect(await label.check()).toMatchObject({ runtime: 'cri-o', restore: true });
    expect(nodeLabelsNow()[nodeLabels.RESTORE_RUNTIME]).toBe('cri-o');
    expect(nodeEvents().map((e) => e.note).sort()).toEqual([expect.stringContaining('containerd 2.1.9'), expect.stringContaining('CRI-O 1.34.11 restores: enable_criu_support = true')]);
    expect(await gauge()).toEqual(['cryo_node_restore_capable{runtime="cri-o"} 1']);
  });

  it('puts the label back when someone removed it', async () => {
    putNode('containerd://2.1.9+unknown');
    const label = labeller();
    await label.check();
    putNode('containerd://2.1.9+unknown');
    await label.check();
    expect(nodeLabelsNow()[nodeLabels.RESTORE_RUNTIME]).toBe('containerd');
  });

  it('--runtime-restore=disabled removes the label on a node that would restore', async () => {
    putNode('containerd://2.1.9+unknown', { [nodeLabels.RESTORE_RUNTIME]: 'containerd' });
    expect(await labeller('disabled').check()).toMatchObject({ restore: false, why: expect.stringContaining('--runtime-restore=disabled') });
    expect(nodeLabelsNow()[nodeLabels.RESTORE_RUNTIME]).toBeUndefined();
  });

  it('logs and carries on when it cannot read its Node or patch it', async () => {
    const label = labeller();
    expect(await label.check()).toBeUndefined();
    expect(log.messages('error')).toEqual([expect.stringContaining('could not read this node')]);
    putNode('containerd://2.1.9+unknown');
    api.failNext({ method: 'PATCH', pathPrefix: `/api/v1/nodes/${NODE}`, status: 403, message: 'nodes "worker-1" is forbidden' });
    expect(await label.check()).toMatchObject({ restore: true });
    expect(nodeLabelsNow()[nodeLabels.RESTORE_RUNTIME]).toBeUndefined();
    expect(log.messages('error')[1]).toContain('could not set the node label cryo.dev/restore-runtime');
    // The next check (the periodic one) succeeds, and only then is the decision recorded.
    expect(nodeEvents()).toEqual([]);
    await label.check();
    expect(nodeLabelsNow()[nodeLabels.RESTORE_RUNTIME]).toBe('containerd');
    expect(nodeEvents()).toHaveLength(1);
  });

  it('starts with a check and re-checks periodically', async () => {
    putNode('containerd://2.1.9+unknown');
    const label = new RestoreRuntimeLabel({
      kubeConfig: api.kubeConfig(),
      nodeName: NODE,
      setting: 'auto',
      configPaths: { containerdConfig: join(dir, 'config.toml'), crioConfig: join(dir, 'crio.conf'), crioConfigDir: join(dir, 'crio.conf.d') },
      logger: log.logger,
      metrics,
      recheckMs: 50,
    });
    running.push(label);
    await label.start();
    expect(nodeLabelsNow()[nodeLabels.RESTORE_RUNTIME]).toBe('containerd');
    putNode('containerd://2.1.9+unknown');
    await expect.poll(() => nodeLabelsNow()[nodeLabels.RESTORE_RUNTIME], { timeout: 5_000 }).toBe('containerd');
  });
});
