/**
 * docs/examples/, the files of the README's first checkpoint and restore: each is valid (the
 * Kubernetes schema, the Checkpoint CRD's), they name each other as a restore needs (the
 * Checkpoint names the pod, the restored pod names the Checkpoint, with the same container and
 * base image), and the README's commands apply exactly these files.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ICustomResourceDefinition } from 'kubernetes-models/apiextensions.k8s.io/v1';
import type { IPod } from 'kubernetes-models/v1';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { readmeCommands } from '@cryo/test';
import { RESTORE_FROM } from '../../common/src/annotations.ts';
import type { Checkpoint } from '../../common/src/api/checkpoint.ts';
import { compileSchema, formatErrors, type SchemaNode } from './crd-schema.ts';
import { unknownFields, validateAgainstKubernetesSchema } from './kubernetes-schemas.ts';
import { REPO_ROOT, manifestObject, type KubeObject } from './load-manifests.ts';

const EXAMPLES = join(REPO_ROOT, 'docs/examples');
const read = <T>(file: string): T & KubeObject => parse(readFileSync(join(EXAMPLES, file), 'utf8')) as T & KubeObject;
const original = read<IPod>('counter.yaml');
const checkpoint = read<Checkpoint>('counter-checkpoint.yaml');
const restored = read<IPod>('counter-restored.yaml');

describe('the first checkpoint and restore (docs/examples/)', () => {
  it('has these three files, the schedule of schedule-examples.test.ts, and no others', () => {
    expect(readdirSync(EXAMPLES).sort()).toEqual(['counter-checkpoint.yaml', 'counter-restored.yaml', 'counter-schedule.yaml', 'counter.yaml']);
  });

  it.each([['counter.yaml', original], ['counter-restored.yaml', restored]])('%s is a valid Pod, in the namespace kubectl is set to', async (_, pod) => {
    await expect(validateAgainstKubernetesSchema(pod)).resolves.toBeUndefined();
    expect(unknownFields(pod)).toEqual([]);
    expect(pod.metadata.namespace).toBeUndefined();
  });

  it('counter-checkpoint.yaml is a Checkpoint the CRD accepts, of the pod counter.yaml makes, in the same namespace', () => {
    const crd = manifestObject<ICustomResourceDefinition>('CustomResourceDefinition', 'checkpoints.cryo.dev');
    const validate = compileSchema(crd.spec.versions[0].schema!.openAPIV3Schema as SchemaNode);
    expect(validate(checkpoint), formatErrors(validate.errors)).toBe(true);
    expect(checkpoint.spec.podName).toBe(original.metadata.name);
    expect(checkpoint.metadata?.namespace).toBeUndefined();
    // The install's default store takes it: no storage named.
    expect(checkpoint.spec.storage).toBeUndefined();
    expect(checkpoint.spec.storageClassName).toBeUndefined();
  });

  it('counter-restored.yaml restores from that Checkpoint: its annotation names it, its container is named and based as the original', () => {
    expect(restored.metadata.annotations?.[RESTORE_FROM]).toBe(checkpoint.metadata?.name);
    expect(restored.metadata.name).not.toBe(original.metadata.name);
    expect(restored.spec!.containers.map((c) => [c.name, c.image])).toEqual(original.spec!.containers.map((c) => [c.name, c.image]));
  });

  it("the README's five commands apply these files, in this order, and wait on what they make", () => {
    const commands = readmeCommands('## First checkpoint and restore');
    expect(commands).toHaveLength(5);
    const applied = commands.flatMap((line) => [...line.matchAll(/kubectl apply -f (\S+)/g)].map((m) => m[1]));
    expect(applied).toEqual(['docs/examples/counter.yaml', 'docs/examples/counter-checkpoint.yaml', 'docs/examples/counter-restored.yaml']);
    expect(commands.join('\n')).toContain(`kubectl wait --for=condition=Ready ckpt/${checkpoint.metadata?.name}`);
    expect(commands.join('\n')).toContain(`kubectl logs ${restored.metadata.name}`);
  });
});
