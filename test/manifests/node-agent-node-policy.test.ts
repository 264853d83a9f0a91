/**
 * manifests/node-agent-node-policy.yaml: the ValidatingAdmissionPolicy that narrows the node
 * agent's RBAC grant (patch on every Node) to the cryo.dev/ labels of its own Node. No
 * kube-apiserver runs here, so its CEL is not evaluated by Kubernetes: each rule is pinned as
 * written, next to its plain JavaScript reading, and the readings are run against the changes
 * the agent makes and the ones it must not be able to make. Whoever changes a rule changes both.
 */
import { isDeepStrictEqual } from 'node:util';
import type { IValidatingAdmissionPolicy, IValidatingAdmissionPolicyBinding } from 'kubernetes-models/admissionregistration.k8s.io/v1';
import type { IDaemonSet } from 'kubernetes-models/apps/v1';
import type { IServiceAccount } from 'kubernetes-models/v1';
import { describe, expect, it } from 'vitest';
import * as nodeLabels from '../../common/src/node-labels.ts';
import { loadFile, manifestObject, readKustomization } from './load-manifests.ts';

const FILE = 'node-agent-node-policy.yaml';
const POLICY = 'cryo-node-agent-own-node-labels';
const NODE_NAME_EXTRA = 'authentication.kubernetes.io/node-name';

const the = manifestObject;

const policy = the<IValidatingAdmissionPolicy>('ValidatingAdmissionPolicy', POLICY);
const binding = the<IValidatingAdmissionPolicyBinding>('ValidatingAdmissionPolicyBinding', POLICY);
const serviceAccount = the<IServiceAccount>('ServiceAccount', 'cryo-node-agent');
const daemonSet = the<IDaemonSet>('DaemonSet', 'cryo-node-agent');
const agentUser = `system:serviceaccount:${serviceAccount.metadata.namespace}:${serviceAccount.metadata.name}`;

/** CEL as YAML folds it: whitespace runs are one space. */
const normalized = (cel: string | undefined) => (cel ?? '').replace(/\s+/g, ' ').trim();

interface NodeLike {
  metadata: { name: string; labels?: Record<string, string>; [field: string]: unknown };
  spec?: unknown;
  status?: unknown;
}
interface Review {
  username: string;
  extra: Record<string, string[]>;
  oldObject: NodeLike;
  object: NodeLike;
}

/** The policy's variables, as JavaScript. */
function variables(review: Review) {
  const names = review.extra[NODE_NAME_EXTRA];
  return {
    tokenNodeName: names !== undefined && names.length === 1 ? names[0] : '',
    oldLabels: review.oldObject.metadata.labels ?? {},
    newLabels: review.object.metadata.labels ?? {},
  };
}

const SERVER_WRITTEN = ['labels', 'managedFields', 'resourceVersion'];

/** Each validation: its CEL as the manifest must spell it, and what it means. */
const RULES: Array<{ cel: string; holds: (review: Review) => boolean }> = [
  {
    cel: "variables.tokenNodeName != '' && object.metadata.name == variables.tokenNodeName",
    holds: (r) => variables(r).tokenNodeName !== '' && r.object.metadata.name === variables(r).tokenNodeName,
  },
  {
    cel:
      "variables.newLabels.all(k, k.startsWith('cryo.dev/') || (k in variables.oldLabels && variables.oldLabels[k] == variables.newLabels[k])) && " +
      "variables.oldLabels.all(k, k.startsWith('cryo.dev/') || k in variables.newLabels)",
    holds: (r) => {
      const { oldLabels, newLabels } = variables(r);
      return Object.keys(newLabels).every((k) => k.startsWith('cryo.dev/') || (k in oldLabels && oldLabels[k] === newLabels[k]))
        && Object.keys(oldLabels).every((k) => k.startsWith('cryo.dev/') || k in newLabels);
    },
  },
  {
    cel:
      'object.spec == oldObject.spec && object.status == oldObject.status && ' +
      "oldObject.metadata.all(k, k in ['labels', 'managedFields', 'resourceVersion'] || (k in object.metadata && object.metadata[k] == oldObject.metadata[k])) && " +
      "object.metadata.all(k, k in ['labels', 'managedFields', 'resourceVersion'] || k in oldObject.metadata)",
    holds: (r) => {
      const [before, after] = [r.oldObject.metadata, r.object.metadata];
      return isDeepStrictEqual(r.object.spec, r.oldObject.spec) && isDeepStrictEqual(r.object.status, r.oldObject.status)
        && Object.keys(before).every((k) => SERVER_WRITTEN.includes(k) || (k in after && isDeepStrictEqual(after[k], before[k])))
        && Object.keys(after).every((k) => SERVER_WRITTEN.includes(k) || k in before);
    },
  },
];

/** Whether the policy lets this change through: not matched (someone else), or every rule holds. */
function admitted(review: Review): boolean {
  if (review.username !== agentUser) return true;
  return RULES.every((rule) => rule.holds(review));
}

const ownNode = 'worker-1';
const node: NodeLike = {
  metadata: {
    name: ownNode,
    uid: '9f1e6c2a-4b3d-4e5f-8a7b-6c5d4e3f2a1b',
    resourceVersion: '1200',
    creationTimestamp: '2026-12-01T08:00:00Z',
    labels: { 'kubernetes.io/hostname': ownNode, 'node-role.kubernetes.io/worker': '' },
    annotations: { 'node.alpha.kubernetes.io/ttl': '0' },
    managedFields: [{ manager: 'kubelet', operation: 'Update' }],
  },
  spec: { podCIDR: '10.88.0.0/24' },
  status: { nodeInfo: { containerRuntimeVersion: 'containerd://2.1.9+unknown' } },
};

const labelled: NodeLike = structuredClone(node);
labelled.metadata.labels![nodeLabels.RESTORE_RUNTIME] = 'containerd';

/**
 * The review of a change to a Node (`from`, else `node`), by `username` (the agent) with a token
 * naming `tokenNode` (null: naming none).
 */
function review(change: (node: NodeLike) => void, options: { from?: NodeLike; tokenNode?: string | null; username?: string } = {}): Review {
  const oldObject = options.from ?? node;
  const object = structuredClone(oldObject);
  change(object);
  // The kube-apiserver writes these on every update, before validating admission sees the object.
  object.metadata.resourceVersion = '1201';
  object.metadata.managedFields = [...(oldObject.metadata.managedFields as unknown[]), { manager: 'cryo-node-agent', operation: 'Update' }];
  const tokenNode = options.tokenNode === undefined ? ownNode : options.tokenNode;
  return { username: options.username ?? agentUser, extra: tokenNode === null ? {} : { [NODE_NAME_EXTRA]: [tokenNode] }, oldObject, object };
}

const setLabel = (value: string) => (n: NodeLike) => {
  n.metadata.labels = { ...n.metadata.labels, [nodeLabels.RESTORE_RUNTIME]: value };
};

describe('manifests/node-agent-node-policy.yaml', () => {
  it('is installed by kubectl apply -k, before the DaemonSet that runs the agent', () => {
    const { resources } = readKustomization();
    expect(resources).toContain(FILE);
    expect(resources.indexOf(FILE)).toBeLessThan(resources.indexOf('node-agent-daemonset.yaml'));
    expect(loadFile(FILE).map((d) => `${d.object.kind}/${d.object.metadata.name}`)).toEqual([
      `ValidatingAdmissionPolicy/${POLICY}`,
      `ValidatingAdmissionPolicyBinding/${POLICY}`,
    ]);
  });

  it('binds the policy to every request it matches, denying, with no parameters', () => {
    expect(binding.spec).toEqual({ policyName: POLICY, validationActions: ['Deny'] });
    expect(policy.spec!.paramKind).toBeUndefined();
    // A rule that cannot be evaluated must refuse, not let the change through.
    expect(policy.spec!.failurePolicy).toBe('Fail');
  });

  it('matches every update of a Node or its status (a PATCH is an UPDATE to admission)', () => {
    expect(policy.spec!.matchConstraints).toEqual({
      resourceRules: [{ apiGroups: [''], apiVersions: ['*'], operations: ['UPDATE'], resources: ['nodes', 'nodes/status'] }],
    });
  });

  it('applies to the node agent only: the service account its DaemonSet runs as', () => {
    expect(daemonSet.spec!.template.spec!.serviceAccountName).toBe(serviceAccount.metadata.name);
    expect(policy.spec!.matchConditions).toEqual([{ name: 'node-agent-only', expression: `request.userInfo.username == '${agentUser}'` }]);
  });

  it("takes the agent's node from its token's user extra, authentication.kubernetes.io/node-name", () => {
    const variable = (name: string) => normalized(policy.spec!.variables!.find((v) => v.name === name)?.expression);
    expect(variable('tokenNodeName')).toBe(
      `has(request.userInfo.extra) && '${NODE_NAME_EXTRA}' in request.userInfo.extra && size(request.userInfo.extra['${NODE_NAME_EXTRA}']) == 1 ? request.userInfo.extra['${NODE_NAME_EXTRA}'][0] : ''`,
    );
    expect(variable('oldLabels')).toBe('has(oldObject.metadata.labels) ? oldObject.metadata.labels : {}');
    expect(variable('newLabels')).toBe('has(object.metadata.labels) ? object.metadata.labels : {}');
  });

  it('has exactly the rules read below, each refusing as Forbidden with a message', () => {
    expect(policy.spec!.validations!.map((v) => normalized(v.expression))).toEqual(RULES.map((rule) => rule.cel));
    for (const validation of policy.spec!.validations!) {
      expect(validation.reason).toBe('Forbidden');
      expect(validation.message ?? validation.messageExpression).toMatch(/Cryo node agent may/);
    }
  });

  it("leaves the agent the labels it writes: cryo.dev/restore-runtime is under the policy's prefix", () => {
    expect(nodeLabels.PREFIX).toBe('cryo.dev/');
    expect(nodeLabels.RESTORE_RUNTIME.startsWith(nodeLabels.PREFIX)).toBe(true);
    expect(RULES[1].cel).toContain(`'${nodeLabels.PREFIX}'`);
  });

  describe('what the rules let through (their JavaScript reading)', () => {
    it.each([
      ['set the restore-runtime label on its own Node', review(setLabel('containerd'))],
      ['change it', review(setLabel('cri-o'), { from: labelled })],
      ['remove it', review((n) => { delete n.metadata.labels![nodeLabels.RESTORE_RUNTIME]; }, { from: labelled })],
      ['set it on a Node without labels', review(setLabel('cri-o'), { from: { ...node, metadata: { ...node.metadata, labels: undefined } } })],
      ['change nothing (a patch that finds the label as wanted)', review(() => {}, { from: labelled })],
    ])('lets the agent %s', (_, change) => {
      expect(admitted(change)).toBe(true);
    });

    it.each([
      ['label another Node', review(setLabel('containerd'), { tokenNode: 'worker-2' })],
      ['label a Node with a token that names none (not bound to its pod)', review(setLabel('containerd'), { tokenNode: null })],
      ['change a label outside cryo.dev/', review((n) => { n.metadata.labels!['node-role.kubernetes.io/worker'] = 'yes'; })],
      ['add a label outside cryo.dev/', review((n) => { n.metadata.labels!['example.com/gpu'] = 'true'; })],
      ['remove a label outside cryo.dev/', review((n) => { delete n.metadata.labels!['node-role.kubernetes.io/worker']; })],
      ['cordon the Node (spec)', review((n) => { n.spec = { ...(n.spec as object), unschedulable: true }; })],
      ['taint the Node (spec)', review((n) => { n.spec = { ...(n.spec as object), taints: [{ key: 'k', effect: 'NoSchedule' }] }; })],
      ['change its status', review((n) => { n.status = { ...(n.status as object), nodeInfo: { containerRuntimeVersion: 'cri-o://1.34.11' } }; })],
      ['change an annotation', review((n) => { n.metadata.annotations = { 'node.alpha.kubernetes.io/ttl': '30' }; })],
      ['add a finalizer', review((n) => { n.metadata.finalizers = ['example.com/hold']; })],
      ['set owner references', review((n) => { n.metadata.ownerReferences = [{ apiVersion: 'v1', kind: 'Pod', name: 'x', uid: 'u' }]; })],
    ])('refuses to let the agent %s', (_, change) => {
      expect(admitted(change)).toBe(false);
    });

    it('does not apply to anyone else (the kubelet, an operator)', () => {
      expect(admitted(review((n) => { n.spec = { unschedulable: true }; }, { tokenNode: null, username: 'system:node:worker-1' }))).toBe(true);
    });
  });
});
