/**
 * manifests/operator-checkpoint-policy.yaml: the ValidatingAdmissionPolicy that narrows the
 * controller's RBAC grant (delete on every Checkpoint) to the Checkpoints CheckpointSchedules
 * created. No kube-apiserver runs here, so its CEL is not evaluated by Kubernetes: the rule is
 * pinned as written, next to its plain JavaScript reading, and the reading is run against the
 * deletes the controller makes and the ones it must not be able to make. Whoever changes the
 * rule changes both.
 */
import type { IValidatingAdmissionPolicy, IValidatingAdmissionPolicyBinding } from 'kubernetes-models/admissionregistration.k8s.io/v1';
import type { IDeployment } from 'kubernetes-models/apps/v1';
import type { IServiceAccount } from 'kubernetes-models/v1';
import { describe, expect, it } from 'vitest';
import { CHECKPOINT_API_VERSION, CHECKPOINT_PLURAL, CHECKPOINT_GROUP, CHECKPOINT_SCHEDULE_KIND, SCHEDULE_LABEL } from '@cryo/common';
import { loadFile, manifestObject, readKustomization } from './load-manifests.ts';

const FILE = 'operator-checkpoint-policy.yaml';
const POLICY = 'cryo-controller-scheduled-checkpoint-deletes';

const the = manifestObject;

const policy = the<IValidatingAdmissionPolicy>('ValidatingAdmissionPolicy', POLICY);
const binding = the<IValidatingAdmissionPolicyBinding>('ValidatingAdmissionPolicyBinding', POLICY);
const serviceAccount = the<IServiceAccount>('ServiceAccount', 'cryo-controller');
const deployment = the<IDeployment>('Deployment', 'cryo-controller');
const controllerUser = `system:serviceaccount:${serviceAccount.metadata.namespace}:${serviceAccount.metadata.name}`;

/** CEL as YAML folds it: whitespace runs are one space. */
const normalized = (cel: string | undefined) => (cel ?? '').replace(/\s+/g, ' ').trim();

interface OwnerReference { apiVersion: string; kind: string; name: string; uid: string }
interface CheckpointLike { metadata: { name: string; labels?: Record<string, string>; ownerReferences?: OwnerReference[] } }
interface Review { username: string; oldObject: CheckpointLike }

/** The policy's variable, as JavaScript. */
const scheduleOf = (review: Review) => review.oldObject.metadata.labels?.[SCHEDULE_LABEL] ?? '';

/** The validation: its CEL as the manifest must spell it, and what it means. */
const RULE = {
  cel:
    "variables.schedule != '' && has(oldObject.metadata.ownerReferences) && " +
    "oldObject.metadata.ownerReferences.exists(r, r.apiVersion.startsWith('cryo.dev/') && r.kind == 'CheckpointSchedule' && r.name == variables.schedule)",
  holds: (r: Review) => scheduleOf(r) !== ''
    && (r.oldObject.metadata.ownerReferences ?? []).some((ref) => ref.apiVersion.startsWith(`${CHECKPOINT_GROUP}/`) && ref.kind === CHECKPOINT_SCHEDULE_KIND && ref.name === scheduleOf(r)),
};

/** Whether the policy lets this delete through: not matched (someone else), or the rule holds. */
function admitted(review: Review): boolean {
  return review.username !== controllerUser || RULE.holds(review);
}

const scheduleOwner: OwnerReference = { apiVersion: CHECKPOINT_API_VERSION, kind: CHECKPOINT_SCHEDULE_KIND, name: 'nightly', uid: '3c1f0e2d-5b4a-4c3d-9e8f-7a6b5c4d3e2f' };
const scheduled: CheckpointLike = { metadata: { name: 'nightly-web-1-202612040130', labels: { [SCHEDULE_LABEL]: 'nightly' }, ownerReferences: [scheduleOwner] } };

function deleting(change: (c: CheckpointLike) => void = () => {}, username = controllerUser): Review {
  const oldObject = structuredClone(scheduled);
  change(oldObject);
  return { username, oldObject };
}

describe('manifests/operator-checkpoint-policy.yaml', () => {
  it('is installed by kubectl apply -k, before the Deployment that runs the controller', () => {
    const { resources } = readKustomization();
    expect(resources.indexOf(FILE)).toBeGreaterThanOrEqual(0);
    expect(resources.indexOf(FILE)).toBeLessThan(resources.indexOf('operator-deployment.yaml'));
    expect(loadFile(FILE).map((d) => `${d.object.kind}/${d.object.metadata.name}`)).toEqual([
      `ValidatingAdmissionPolicy/${POLICY}`,
      `ValidatingAdmissionPolicyBinding/${POLICY}`,
    ]);
  });

  it('binds the policy to every request it matches, denying, failing closed, with no parameters', () => {
    expect(binding.spec).toEqual({ policyName: POLICY, validationActions: ['Deny'] });
    expect(policy.spec!.paramKind).toBeUndefined();
    expect(policy.spec!.failurePolicy).toBe('Fail');
  });

  it('matches every delete of a Checkpoint, by the controller only: the service account its Deployment runs as', () => {
    expect(policy.spec!.matchConstraints).toEqual({
      resourceRules: [{ apiGroups: [CHECKPOINT_GROUP], apiVersions: ['*'], operations: ['DELETE'], resources: [CHECKPOINT_PLURAL] }],
    });
    expect(deployment.spec!.template.spec!.serviceAccountName).toBe(serviceAccount.metadata.name);
    expect(policy.spec!.matchConditions).toEqual([{ name: 'controller-only', expression: `request.userInfo.username == '${controllerUser}'` }]);
  });

  it('reads the schedule from the label the controller writes, and has exactly the rule read below', () => {
    expect(policy.spec!.variables!.map((v) => [v.name, normalized(v.expression)])).toEqual([
      ['schedule', `has(oldObject.metadata.labels) && '${SCHEDULE_LABEL}' in oldObject.metadata.labels ? oldObject.metadata.labels['${SCHEDULE_LABEL}'] : ''`],
    ]);
    expect(policy.spec!.validations!.map((v) => normalized(v.expression))).toEqual([RULE.cel]);
    expect(policy.spec!.validations![0]).toMatchObject({ reason: 'Forbidden', messageExpression: expect.stringMatching(/Cryo controller may delete only Checkpoints a CheckpointSchedule created/) });
  });

  describe('what the rule lets through (its JavaScript reading)', () => {
    it('lets the controller delete a Checkpoint its schedule created', () => {
      expect(admitted(deleting())).toBe(true);
    });

    it.each([
      ['one without the schedule label (a user\'s, or a Migration\'s)', (c: CheckpointLike) => { delete c.metadata.labels; }],
      ['one with the label but no owner (made by hand)', (c: CheckpointLike) => { delete c.metadata.ownerReferences; }],
      ['one owned by another schedule than its label names', (c: CheckpointLike) => { c.metadata.ownerReferences = [{ ...scheduleOwner, name: 'hourly' }]; }],
      ['one owned by a Migration', (c: CheckpointLike) => { c.metadata.ownerReferences = [{ ...scheduleOwner, kind: 'Migration' }]; }],
      ['one owned by a CheckpointSchedule of another API group', (c: CheckpointLike) => { c.metadata.ownerReferences = [{ ...scheduleOwner, apiVersion: 'example.com/v1' }]; }],
      ['one whose label is empty', (c: CheckpointLike) => { c.metadata.labels = { [SCHEDULE_LABEL]: '' }; c.metadata.ownerReferences = [{ ...scheduleOwner, name: '' }]; }],
    ])('refuses to let the controller delete %s', (_, change) => {
      expect(admitted(deleting(change))).toBe(false);
    });

    it('does not apply to anyone else (a user, the garbage collector)', () => {
      expect(admitted(deleting((c) => { delete c.metadata.labels; }, 'system:serviceaccount:kube-system:generic-garbage-collector'))).toBe(true);
    });
  });
});
