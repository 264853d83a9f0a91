/**
 * Which pods and workload templates restore from a Checkpoint, read from the shared fake
 * kube-apiserver: every workload kind, the pod phases that count, uids, namespaces.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FakeKubeApiServer } from '@cryo/test';
import * as annotations from '../annotations.ts';
import type { CheckpointIdentity } from '../api/checkpoint.ts';
import { CheckpointUsers } from './checkpoint-users.ts';

/** Checkpoint `name` (uid `uid-<name>`) in `namespace`. */
function checkpoint(name: string, namespace = 'shop', uid = `uid-${name}`): CheckpointIdentity {
  return { namespace, name, uid };
}

const restoringFrom = (name: string) => ({ annotations: { [annotations.RESTORE_FROM]: name } });
const podSpec = { containers: [{ name: 'app', image: 'shop/web:1' }] };

describe('CheckpointUsers', () => {
  let api: FakeKubeApiServer;
  let users: CheckpointUsers;

  beforeAll(async () => {
    api = await FakeKubeApiServer.start();
    users = new CheckpointUsers(api.kubeConfig(), { reader: 'the node agent', rbacManifest: 'manifests/node-agent-rbac.yaml' });
  });

  afterAll(async () => {
    await api?.stop();
  });

  beforeEach(() => {
    for (const [apiVersion, plural] of [['v1', 'pods'], ['apps/v1', 'deployments'], ['apps/v1', 'statefulsets'], ['apps/v1', 'daemonsets'], ['apps/v1', 'replicasets'], ['batch/v1', 'jobs'], ['batch/v1', 'cronjobs']]) {
      for (const object of api.list(apiVersion, plural)) api.remove(apiVersion, plural, object.metadata?.namespace, object.metadata!.name!);
    }
  });

  const pod = (name: string, phase: string, meta: Record<string, unknown>, namespace = 'shop') =>
    api.put({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace, ...meta }, spec: podSpec, status: { phase } });

  const whyOf = async (checkpoints: CheckpointIdentity[]) => Object.fromEntries([...(await users.inUse(checkpoints))].map(([c, use]) => [c.name, use]));

  it("counts the pods that have not finished, by their restore-from annotation; finished ones and other namespaces' do not", async () => {
    pod('running', 'Running', restoringFrom('a'));
    pod('pending', 'Pending', restoringFrom('b'));
    pod('unknown', 'Unknown', restoringFrom('c'));
    pod('done', 'Succeeded', restoringFrom('d'));
    pod('crashed', 'Failed', restoringFrom('e'));
    pod('elsewhere', 'Running', restoringFrom('f'), 'other');
    expect(await whyOf(['a', 'b', 'c', 'd', 'e', 'f'].map((n) => checkpoint(n)))).toEqual({
      a: { cause: 'pod', why: 'pod running restores from it' },
      b: { cause: 'pod', why: 'pod pending restores from it' },
      c: { cause: 'pod', why: 'pod unknown restores from it' },
    });
  });

  it('matches the uid a restored pod records, when it records one', async () => {
    pod('same', 'Running', { annotations: { [annotations.RESTORE_FROM]: 'a', [annotations.RESTORED_CHECKPOINT_UID]: 'uid-a' } });
    pod('older', 'Running', { annotations: { [annotations.RESTORE_FROM]: 'b', [annotations.RESTORED_CHECKPOINT_UID]: 'uid-of-an-earlier-b' } });
    expect(Object.keys(await whyOf([checkpoint('a'), checkpoint('b')]))).toEqual(['a']);
    // A Checkpoint whose uid is not known (data stored before uids were recorded) matches by name.
    expect(Object.keys(await whyOf([checkpoint('b', 'shop', '')]))).toEqual(['b']);
  });

  it('counts every workload kind whose pod template restores from it, and a Job only until it finished', async () => {
    const template = (name: string) => ({ metadata: restoringFrom(name), spec: podSpec });
    api.put({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'd', namespace: 'shop' }, spec: { selector: {}, template: template('a') } });
    api.put({ apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: { name: 's', namespace: 'shop' }, spec: { selector: {}, serviceName: 's', template: template('b') } });
    api.put({ apiVersion: 'apps/v1', kind: 'DaemonSet', metadata: { name: 'ds', namespace: 'shop' }, spec: { selector: {}, template: template('c') } });
    api.put({ apiVersion: 'apps/v1', kind: 'ReplicaSet', metadata: { name: 'rs', namespace: 'shop' }, spec: { selector: {}, replicas: 0, template: template('d') } });
    api.put({ apiVersion: 'batch/v1', kind: 'Job', metadata: { name: 'j', namespace: 'shop' }, spec: { template: template('e') } });
    api.put({ apiVersion: 'batch/v1', kind: 'CronJob', metadata: { name: 'cj', namespace: 'shop' }, spec: { schedule: '@daily', jobTemplate: { spec: { template: template('f') } } } });
    api.put({ apiVersion: 'batch/v1', kind: 'Job', metadata: { name: 'done', namespace: 'shop' }, spec: { template: template('g') }, status: { conditions: [{ type: 'Complete', status: 'True' }] } });
    api.put({ apiVersion: 'batch/v1', kind: 'Job', metadata: { name: 'gave-up', namespace: 'shop' }, spec: { template: template('h') }, status: { conditions: [{ type: 'Failed', status: 'True' }] } });
    api.put({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'other', namespace: 'other' }, spec: { selector: {}, template: template('i') } });

    const found = await whyOf(['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i'].map((n) => checkpoint(n)));
    expect(Object.fromEntries(Object.entries(found).map(([name, use]) => [name, use.why]))).toEqual({
      a: 'Deployment d restores from it',
      b: 'StatefulSet s restores from it',
      c: 'DaemonSet ds restores from it',
      d: 'ReplicaSet rs restores from it',
      e: 'Job j restores from it',
      f: 'CronJob cj restores from it',
    });
    expect(new Set(Object.values(found).map((use) => use.cause))).toEqual(new Set(['workload']));
  });

  it('names the first two users and counts the rest', async () => {
    for (const name of ['p1', 'p2', 'p3', 'p4']) pod(name, 'Running', restoringFrom('a'));
    expect((await whyOf([checkpoint('a')])).a.why).toBe('pod p1, pod p2 and 2 more restore from it');
  });

  it("counts every Checkpoint of a namespace it cannot read as in use, saying why, and reads the others", async () => {
    api.failNext({ pathPrefix: '/apis/apps/v1/namespaces/shop/replicasets', status: 403, message: 'replicasets.apps is forbidden' });
    pod('elsewhere', 'Running', restoringFrom('b'), 'other');
    const found = await whyOf([checkpoint('a'), checkpoint('b', 'other'), checkpoint('c', 'other')]);
    expect(Object.keys(found).sort()).toEqual(['a', 'b']);
    expect(found.a).toEqual({ cause: 'unknown', why: 'whether a pod or workload of namespace shop restores from it could not be read (HTTP 403: replicasets.apps is forbidden); it stays until that can be read (the node agent may list pods and workloads: manifests/node-agent-rbac.yaml)' });
    expect(found.b.cause).toBe('pod');
  });
});
