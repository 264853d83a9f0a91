import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { isPodReady, podProblem, podState } from './pod-state.ts';

const pod = (status: V1Pod['status'], nodeName?: string): V1Pod => ({ metadata: { name: 'p' }, spec: { containers: [{ name: 'app' }], ...(nodeName === undefined ? {} : { nodeName }) }, status });
const waiting = (reason: string, message?: string): V1Pod['status'] => ({
  phase: 'Pending',
  containerStatuses: [{ name: 'app', ready: false, restartCount: 0, image: 'x', imageID: '', state: { waiting: { reason, ...(message === undefined ? {} : { message }) } } }],
});

describe('pod state', () => {
  it('is Ready only Running with the Ready condition true', () => {
    expect(isPodReady(pod({ phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] }))).toBe(true);
    expect(isPodReady(pod({ phase: 'Running', conditions: [{ type: 'Ready', status: 'False' }] }))).toBe(false);
    expect(isPodReady(pod({ phase: 'Pending' }))).toBe(false);
  });

  it('says why it is not Ready: unschedulable, waiting containers', () => {
    expect(podState(pod({ phase: 'Pending', conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: '0/3 nodes are available' }] }))).toBe('Pending: Unschedulable: 0/3 nodes are available');
    expect(podState(pod(waiting('ImagePullBackOff', 'pull access denied'), 'node-b'))).toBe('Pending on node-b: app ImagePullBackOff (pull access denied)');
    expect(podState(pod({ phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] }, 'node-b'))).toBe('Running on node-b, Ready');
  });

  it('fails fast on what waiting does not cure, and waits through image pulls', () => {
    expect(podProblem(pod(waiting('CreateContainerError', 'criu failed')))).toBe('container app CreateContainerError: criu failed');
    expect(podProblem(pod(waiting('CrashLoopBackOff')))).toBe('container app CrashLoopBackOff');
    expect(podProblem(pod(waiting('ImagePullBackOff')))).toBeUndefined();
    expect(podProblem(pod(waiting('ContainerCreating')))).toBeUndefined();
    expect(podProblem(pod({ phase: 'Failed', reason: 'Evicted', message: 'low on memory' }))).toBe('it Failed: Evicted: low on memory');
  });
});
