import { describe, expect, it } from 'vitest';
import type { V1PersistentVolume, V1PersistentVolumeClaim, V1Pod } from '@kubernetes/client-node';
import { checkVolumes, type VolumeReads } from './volume-checks.ts';

const claims: Record<string, V1PersistentVolumeClaim> = {
  shared: { spec: { accessModes: ['ReadWriteMany'], volumeName: 'pv-nfs' }, status: { accessModes: ['ReadWriteMany'] } },
  unbound: { spec: { accessModes: ['ReadWriteOnce'] } },
  'on-host-path': { spec: { accessModes: ['ReadWriteOnce'], volumeName: 'pv-host' } },
  'one-node': { spec: { accessModes: ['ReadWriteOncePod'], volumeName: 'pv-pinned' } },
};
const volumes: Record<string, V1PersistentVolume> = {
  'pv-host': { spec: { hostPath: { path: '/mnt/data' } } },
  'pv-pinned': { spec: { csi: { driver: 'topolvm.io', volumeHandle: 'v' }, nodeAffinity: { required: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: ['a'] }] }] } } } },
};
const reads: VolumeReads = {
  pvc: (_namespace, name) => Promise.resolve(claims[name]),
  pv: (name) => Promise.resolve(volumes[name]),
};
const pod = (v: NonNullable<V1Pod['spec']>['volumes']): V1Pod => ({ metadata: { namespace: 'shop' }, spec: { nodeName: 'a', containers: [{ name: 'app' }], volumes: v } });
const claim = (name: string, claimName: string) => ({ name, persistentVolumeClaim: { claimName } });

describe('checkVolumes', () => {
  it('lets shared claims, configMaps, secrets and the hook socket (the webhook mounts it on the target) go anywhere', async () => {
    const hookSocket = { name: 'cryo-hooks', hostPath: { path: '/var/run/cryo/hooks', type: 'Directory' } };
    expect(await checkVolumes(pod([claim('data', 'shared'), { name: 'c', configMap: { name: 'c' } }, { name: 's', secret: { secretName: 's' } }, hookSocket]), { toOtherNode: true }, reads)).toEqual({ refusals: [], warnings: [] });
  });

  it('refuses, to another node, a claim that is missing, unbound, on a hostPath volume, or on a volume pinned to one node (the scheduler picking)', async () => {
    const verdict = await checkVolumes(pod([claim('a', 'missing'), claim('b', 'unbound'), claim('c', 'on-host-path'), claim('d', 'one-node')]), { toOtherNode: true }, reads);
    expect(verdict.refusals).toEqual([
      'volume "a": PersistentVolumeClaim missing does not exist',
      'volume "b": PersistentVolumeClaim unbound is not bound to a volume',
      'volume "c" (claim on-host-path, ReadWriteOnce) is on PersistentVolume pv-host, a hostPath volume (/mnt/data) on one node: it cannot move to another node',
      'volume "d" (claim one-node, ReadWriteOncePod) is on PersistentVolume pv-pinned, whose node affinity names the node it lives on: it cannot move to another node',
    ]);
  });

  it('refuses nothing on the same node, but still warns of what is not carried', async () => {
    const verdict = await checkVolumes(pod([claim('c', 'on-host-path'), { name: 'h', hostPath: { path: '/srv' } }, { name: 'tmp', emptyDir: {} }, { name: 'scratch', ephemeral: { volumeClaimTemplate: { spec: {} } } }]), { toOtherNode: false }, reads);
    expect(verdict.refusals).toEqual([]);
    expect(verdict.warnings).toEqual([
      'volume "tmp" is an emptyDir: its contents are not carried, the copy starts with it empty while its restored memory may expect the files written there',
      'volume "scratch" is a generic ephemeral volume: the copy gets a new, empty one; its contents are not carried',
    ]);
  });
});
