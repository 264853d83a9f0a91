/**
 * The mutable copy of a pod, and the JSON Patch from the original to it.
 *
 * The copy shares by reference every part of the pod that no mutation writes (init containers,
 * status, managedFields, labels, a container's probes and resources, ...) and owns fresh copies
 * of the parts mutations may write: the annotations map, each app container object (mutations
 * assign its image and replace, never push into, its env and volumeMounts lists), the volume and
 * pull-secret lists and the affinity. The diff then skips shared subtrees at once and leaves
 * arrays to fast-json-patch. On the benchmark pod this takes the copy-and-diff from ~85 µs
 * (deep copy, whole-pod compare) to ~20 µs.
 * Tests deep-freeze the original, so a mutation that writes a shared part fails loudly.
 */
import fastJsonPatch from 'fast-json-patch';
import type { V1Pod } from '@kubernetes/client-node';
import { cloneJson } from '@cryo/common';

export type JsonPatchOperation = fastJsonPatch.Operation;

export function mutableCopy(pod: V1Pod): V1Pod {
  const { metadata, spec } = pod;
  return {
    ...pod,
    metadata: { ...metadata, ...(metadata?.annotations && { annotations: { ...metadata.annotations } }) },
    spec:
      spec === undefined
        ? { containers: [] }
        : {
            ...spec,
            containers: spec.containers.map((container) => ({ ...container })),
            ...(spec.volumes && { volumes: [...spec.volumes] }),
            ...(spec.imagePullSecrets && { imagePullSecrets: [...spec.imagePullSecrets] }),
            ...(spec.affinity && { affinity: cloneJson(spec.affinity) }),
          },
  };
}

type Json = Record<string, unknown>;
const isPlainObject = (value: unknown): value is Json => typeof value === 'object' && value !== null && !Array.isArray(value);
const hasOwn = (obj: Json, key: string) => Object.prototype.hasOwnProperty.call(obj, key) && obj[key] !== undefined;

/** RFC 6902 operations turning `before` into `after`. */
export function diffPod(before: V1Pod, after: V1Pod): JsonPatchOperation[] {
  const ops: JsonPatchOperation[] = [];
  diff(before, after, '', ops);
  return ops;
}

function diff(before: unknown, after: unknown, path: string, ops: JsonPatchOperation[]): void {
  if (before === after) return;
  if (isPlainObject(before) && isPlainObject(after)) {
    for (const key of Object.keys(before)) {
      if (hasOwn(before, key) && !hasOwn(after, key)) ops.push({ op: 'remove', path: `${path}/${fastJsonPatch.escapePathComponent(key)}` });
    }
    for (const key of Object.keys(after)) {
      if (!hasOwn(after, key)) continue;
      const child = `${path}/${fastJsonPatch.escapePathComponent(key)}`;
      if (hasOwn(before, key)) diff(before[key], after[key], child, ops);
      else ops.push({ op: 'add', path: child, value: after[key] });
    }
    return;
  }
  if (Array.isArray(before) && Array.isArray(after)) {
    for (const op of fastJsonPatch.compare(before, after)) ops.push({ ...op, path: path + op.path });
    return;
  }
  ops.push({ op: 'replace', path, value: after });
}
