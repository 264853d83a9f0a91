/**
 * The CheckpointSchedules the docs show: docs/examples/counter-schedule.yaml and the YAML blocks
 * of kind CheckpointSchedule in README.md and docs/operations.md. Each must be one the CRD
 * accepts and whose schedule, time zone and selector the controller can use.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ICustomResourceDefinition } from 'kubernetes-models/apiextensions.k8s.io/v1';
import type { IPod } from 'kubernetes-models/v1';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { CHECKPOINT_SCHEDULE_KIND, CHECKPOINT_SCHEDULE_PLURAL, CHECKPOINT_GROUP, type CheckpointSchedule } from '@cryo/common';
import { labelSelectorString, parseCronSchedule } from '@cryo/controller';
import { compileSchema, formatErrors, type SchemaNode } from './crd-schema.ts';
import { REPO_ROOT, manifestObject } from './load-manifests.ts';

const read = (file: string) => readFileSync(join(REPO_ROOT, file), 'utf8');
const crd = manifestObject<ICustomResourceDefinition>('CustomResourceDefinition', `${CHECKPOINT_SCHEDULE_PLURAL}.${CHECKPOINT_GROUP}`);
const validate = compileSchema(crd.spec.versions[0].schema!.openAPIV3Schema as SchemaNode);

/** The CheckpointSchedules in a Markdown file's ```yaml blocks. */
function schedulesIn(file: string): CheckpointSchedule[] {
  return [...read(file).matchAll(/```yaml\n([\s\S]*?)```/g)]
    .map((block) => parse(block[1]) as { kind?: string })
    .filter((object) => object.kind === CHECKPOINT_SCHEDULE_KIND) as CheckpointSchedule[];
}

const example = parse(read('docs/examples/counter-schedule.yaml')) as CheckpointSchedule;
const shown: [string, CheckpointSchedule][] = [
  ['docs/examples/counter-schedule.yaml', example],
  ...['README.md', 'docs/operations.md'].flatMap((file) => schedulesIn(file).map((s) => [`${file}: ${s.metadata?.name}`, s] as [string, CheckpointSchedule])),
];

describe('the CheckpointSchedules the docs show', () => {
  it('are found: the example file and one in each of README.md and docs/operations.md', () => {
    expect(shown.map(([where]) => where.split(':')[0])).toEqual(['docs/examples/counter-schedule.yaml', 'README.md', 'docs/operations.md']);
  });

  it.each(shown)('%s is one the CRD accepts and the controller can use', (_, schedule) => {
    expect(validate(schedule), formatErrors(validate.errors)).toBe(true);
    expect(() => parseCronSchedule(schedule.spec.schedule, schedule.spec.timeZone)).not.toThrow();
    expect(() => labelSelectorString(schedule.spec.selector)).not.toThrow();
  });

  it('counter-schedule.yaml selects the pod counter.yaml makes, in the namespace kubectl is set to', () => {
    const pod = parse(read('docs/examples/counter.yaml')) as IPod;
    expect(example.metadata?.namespace).toBeUndefined();
    for (const [key, value] of Object.entries(example.spec.selector.matchLabels ?? {})) expect(pod.metadata?.labels?.[key]).toBe(value);
    expect(example.spec.selector.matchExpressions).toBeUndefined();
  });
});
