/**
 * What a pod's volumes allow a Migration to do. A checkpoint holds the processes' memory and the
 * container's own filesystem changes, never a volume's files: those stay where they are, and the
 * copy mounts what its spec names on the node it lands on.
 *
 * - A ReadWriteMany/ReadOnlyMany claim, or a ReadWriteOnce one on a network volume, moves with the
 *   pod: the volume is detached from the source node once the source has stopped and attached to
 *   the target. Files written after the checkpoint are newer than the memory restored.
 * - A ReadWriteOnce claim whose volume lives on one node (a `local` or `hostPath`
 *   PersistentVolume, or one whose node affinity the target does not meet) cannot move: refused.
 * - A `hostPath` volume is the node's own directory: refused for a move to another node (but
 *   the hook socket's, which the webhook mounts on the target as on any node).
 * - `emptyDir` and generic ephemeral volumes are new and empty in the copy: warned, since the
 *   restored memory may expect files there.
 * On the same node ("restart with state", restartInPlace) nothing is refused; the warnings stay.
 */
import type { V1Node, V1PersistentVolume, V1PersistentVolumeClaim, V1Pod } from '@kubernetes/client-node';
import { HOOK_VOLUME_NAME } from '@cryo/common';
import { nodeSelectorMatches, pinsToNamedNodes } from './node-fit.ts';

export interface VolumeReads {
  pvc(namespace: string, name: string): Promise<V1PersistentVolumeClaim | undefined>;
  pv(name: string): Promise<V1PersistentVolume | undefined>;
}

export interface VolumeMove {
  /** The copy runs on another node than the source (always so when the scheduler picks). */
  toOtherNode: boolean;
  /** The node it goes to, when one is named. */
  targetNode?: V1Node;
}

export interface VolumeVerdict {
  /** What makes the move impossible, one sentence per volume. */
  refusals: string[];
  /** What the app will find different. */
  warnings: string[];
}

export async function checkVolumes(pod: V1Pod, move: VolumeMove, reads: VolumeReads): Promise<VolumeVerdict> {
  const namespace = pod.metadata?.namespace ?? 'default';
  const source = pod.spec?.nodeName ?? 'its node';
  const refusals: string[] = [];
  const warnings: string[] = [];
  for (const volume of pod.spec?.volumes ?? []) {
    const name = `volume "${volume.name}"`;
    // The hook socket the webhook mounted: it mounts the target's anew (the pod's own directory there).
    if (volume.name === HOOK_VOLUME_NAME) continue;
    if (volume.hostPath !== undefined) {
      if (move.toOtherNode) refusals.push(`${name} is the hostPath ${volume.hostPath.path} of node ${source}: its files do not move to another node (migrate with targetNodeName: ${source} to restart with state, or use a network volume)`);
    } else if (volume.emptyDir !== undefined) {
      warnings.push(`${name} is an emptyDir: its contents are not carried, the copy starts with it empty while its restored memory may expect the files written there`);
    } else if (volume.ephemeral !== undefined) {
      warnings.push(`${name} is a generic ephemeral volume: the copy gets a new, empty one; its contents are not carried`);
    } else if (volume.persistentVolumeClaim !== undefined) {
      const refusal = await claimRefusal(name, namespace, volume.persistentVolumeClaim.claimName, move, reads);
      if (refusal !== undefined) refusals.push(refusal);
    }
  }
  return { refusals, warnings };
}

async function claimRefusal(name: string, namespace: string, claimName: string, move: VolumeMove, reads: VolumeReads): Promise<string | undefined> {
  if (!move.toOtherNode) return undefined;
  const claim = await reads.pvc(namespace, claimName);
  if (claim === undefined) return `${name}: PersistentVolumeClaim ${claimName} does not exist`;
  const modes = claim.status?.accessModes ?? claim.spec?.accessModes ?? [];
  // Shared volumes are mounted wherever the copy lands.
  if (modes.includes('ReadWriteMany') || modes.includes('ReadOnlyMany')) return undefined;
  const volumeName = claim.spec?.volumeName;
  if (volumeName === undefined || volumeName === '') return `${name}: PersistentVolumeClaim ${claimName} is not bound to a volume`;
  const pv = await reads.pv(volumeName);
  if (pv === undefined) return `${name}: PersistentVolume ${volumeName} of claim ${claimName} does not exist`;
  const what = `${name} (claim ${claimName}, ${modes.join('/') || 'ReadWriteOnce'}) is on PersistentVolume ${volumeName}`;
  if (pv.spec?.local !== undefined) return `${what}, a local volume on one node's disk: it cannot move to another node`;
  if (pv.spec?.hostPath !== undefined) return `${what}, a hostPath volume (${pv.spec.hostPath.path}) on one node: it cannot move to another node`;
  const required = pv.spec?.nodeAffinity?.required;
  if (required === undefined) return undefined;
  if (move.targetNode !== undefined) {
    return nodeSelectorMatches(required, move.targetNode) ? undefined : `${what}, whose node affinity node ${move.targetNode.metadata?.name} does not meet: it cannot be mounted there`;
  }
  // Zonal volumes keep to their zone, which the scheduler sees to; one node's volume stays there.
  return pinsToNamedNodes(required) ? `${what}, whose node affinity names the node it lives on: it cannot move to another node` : undefined;
}
