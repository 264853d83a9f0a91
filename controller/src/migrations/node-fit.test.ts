import { describe, expect, it } from 'vitest';
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import { nodeSelectorMatches, nodeUnavailable, pinsToNamedNodes, placementOfCopy, podExcludedFrom } from './node-fit.ts';

const node = (name: string, labels: Record<string, string> = {}, extra: Partial<V1Node> = {}): V1Node => ({
  metadata: { name, labels: { 'kubernetes.io/hostname': name, ...labels } },
  spec: {},
  status: { conditions: [{ type: 'Ready', status: 'True' }] },
  ...extra,
});
const pod = (spec: Partial<V1Pod['spec']> = {}): V1Pod => ({ spec: { containers: [{ name: 'app' }], ...spec } });

describe('nodeUnavailable', () => {
  it('passes a Ready, schedulable node; names what is wrong with any other', () => {
    expect(nodeUnavailable(node('a'))).toBeUndefined();
    expect(nodeUnavailable(node('a', {}, { spec: { unschedulable: true } }))).toBe('node a is cordoned (unschedulable)');
    expect(nodeUnavailable(node('a', {}, { status: { conditions: [{ type: 'Ready', status: 'Unknown', reason: 'NodeStatusUnknown', message: 'Kubelet stopped posting node status.' }] } }))).toBe(
      'node a is not Ready (NodeStatusUnknown: Kubelet stopped posting node status.)',
    );
    expect(nodeUnavailable(node('a', {}, { status: {} }))).toBe('node a reports no Ready condition');
  });
});

describe('podExcludedFrom', () => {
  it("keeps to the pod's nodeSelector", () => {
    expect(podExcludedFrom(pod({ nodeSelector: { disk: 'ssd' } }), node('a', { disk: 'ssd' }))).toBeUndefined();
    expect(podExcludedFrom(pod({ nodeSelector: { disk: 'ssd' } }), node('a'))).toBe("node a lacks the pod's nodeSelector disk=ssd");
  });

  it('evaluates required node affinity: terms ORed, requirements ANDed, every operator, matchFields on the name', () => {
    const affinity = (terms: object[]) => pod({ affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: terms } } } });
    const zoneB = node('b', { zone: 'b', gpus: '4' });
    expect(podExcludedFrom(affinity([{ matchExpressions: [{ key: 'zone', operator: 'In', values: ['a'] }] }, { matchExpressions: [{ key: 'zone', operator: 'In', values: ['b'] }] }]), zoneB)).toBeUndefined();
    expect(podExcludedFrom(affinity([{ matchExpressions: [{ key: 'zone', operator: 'In', values: ['b'] }, { key: 'gpus', operator: 'Gt', values: ['4'] }] }]), zoneB)).toBe("node b does not match the pod's required node affinity");
    expect(podExcludedFrom(affinity([{ matchExpressions: [{ key: 'gpus', operator: 'Lt', values: ['5'] }, { key: 'spot', operator: 'DoesNotExist' }] }]), zoneB)).toBeUndefined();
    expect(podExcludedFrom(affinity([{ matchFields: [{ key: 'metadata.name', operator: 'NotIn', values: ['b'] }] }]), zoneB)).toBeDefined();
    expect(podExcludedFrom(affinity([{}]), zoneB)).toBeDefined();
  });

  it('refuses a node with a NoSchedule or NoExecute taint the pod does not tolerate; PreferNoSchedule does not count', () => {
    const tainted = node('a', {}, { spec: { taints: [{ key: 'gpu', value: 'true', effect: 'NoSchedule' }, { key: 'soft', effect: 'PreferNoSchedule' }] } });
    expect(podExcludedFrom(pod(), tainted)).toBe('node a has the taint gpu=true:NoSchedule, which the pod does not tolerate');
    expect(podExcludedFrom(pod({ tolerations: [{ key: 'gpu', operator: 'Equal', value: 'true', effect: 'NoSchedule' }] }), tainted)).toBeUndefined();
    expect(podExcludedFrom(pod({ tolerations: [{ key: 'gpu', operator: 'Exists' }] }), tainted)).toBeUndefined();
    expect(podExcludedFrom(pod({ tolerations: [{ operator: 'Exists' }] }), tainted)).toBeUndefined();
    expect(podExcludedFrom(pod({ tolerations: [{ key: 'gpu', operator: 'Equal', value: 'false' }] }), tainted)).toBeDefined();
  });
});

describe('PersistentVolume node affinity', () => {
  it('tells a volume pinned to named nodes from a zonal one', () => {
    expect(pinsToNamedNodes({ nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: ['a'] }] }] })).toBe(true);
    expect(pinsToNamedNodes({ nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: ['a'] }] }] })).toBe(true);
    expect(pinsToNamedNodes({ nodeSelectorTerms: [{ matchExpressions: [{ key: 'topology.kubernetes.io/zone', operator: 'In', values: ['a'] }] }] })).toBe(false);
    expect(nodeSelectorMatches({ nodeSelectorTerms: [{ matchExpressions: [{ key: 'topology.kubernetes.io/zone', operator: 'In', values: ['a'] }] }] }, node('x', { 'topology.kubernetes.io/zone': 'a' }))).toBe(true);
  });
});

describe('placementOfCopy', () => {
  const affinity = (terms: object[]) => pod({ nodeName: 'b', affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: terms } } } });
  const pinnedToB = { key: 'metadata.name', operator: 'In', values: ['b'] };
  const notA = { key: 'metadata.name', operator: 'NotIn', values: ['a'] };
  const runtime = { key: 'cryo.dev/restore-runtime', operator: 'In', values: ['containerd'] };

  it('lets a pod Cryo placed before move again: its node pin, exclusion and restore-runtime requirement are the next copy’s to write', () => {
    const moved = affinity([{ matchFields: [pinnedToB, notA], matchExpressions: [runtime] }]);
    expect(podExcludedFrom(moved, node('a'))).toBeDefined();
    expect(podExcludedFrom(placementOfCopy(moved), node('a'))).toBeUndefined();
    expect(placementOfCopy(moved).spec!.affinity!.nodeAffinity!.requiredDuringSchedulingIgnoredDuringExecution).toBeUndefined();
    // The pod itself is left as it is.
    expect(moved.spec!.affinity!.nodeAffinity!.requiredDuringSchedulingIgnoredDuringExecution!.nodeSelectorTerms[0].matchFields).toHaveLength(2);
  });

  it("keeps the app's own requirements, and a term left empty on purpose", () => {
    const zoned = affinity([{ matchFields: [pinnedToB], matchExpressions: [{ key: 'zone', operator: 'In', values: ['z1'] }] }]);
    expect(podExcludedFrom(placementOfCopy(zoned), node('a'))).toBe("node a does not match the pod's required node affinity");
    expect(podExcludedFrom(placementOfCopy(zoned), node('a', { zone: 'z1' }))).toBeUndefined();
    expect(podExcludedFrom(placementOfCopy(affinity([{}])), node('a'))).toBeDefined();
    const plain = pod();
    expect(placementOfCopy(plain)).toBe(plain);
  });
});
