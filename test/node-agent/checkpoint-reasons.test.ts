/**
 * Keeps the catalog of checkpoint failure reasons true: every reason the node agent's checkpoint
 * code can fail a Checkpoint with is in common/src/api/checkpoint-reasons.ts, every one there is
 * raised somewhere, and docs/operations.md ("Why a checkpoint failed") lists exactly those, with
 * the same retryability and meaning. The same for the reasons of the Events about a Checkpoint's
 * data (CHECKPOINT_DATA_REASONS, "Why data stays").
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CHECKPOINT_DATA_REASONS, CHECKPOINT_FAILURE_REASONS } from '@cryo/common';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const checkpointsDir = path.join(repoRoot, 'node-agent/src/checkpoints');

/** Every `reason: 'Code'` literal in the agent's checkpoint sources (tests left out). */
function raisedReasons(): Set<string> {
  const raised = new Set<string>();
  for (const file of readdirSync(checkpointsDir).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))) {
    for (const match of readFileSync(path.join(checkpointsDir, file), 'utf8').matchAll(/reason: '([A-Z][A-Za-z]+)'/g)) raised.add(match[1]);
  }
  return raised;
}

/** `reason → [retryable, meaning]` of the table in docs/operations.md. */
function documentedReasons(): Record<string, [boolean, string]> {
  const doc = readFileSync(path.join(repoRoot, 'docs/operations.md'), 'utf8');
  const start = doc.indexOf('### Why a checkpoint failed');
  expect(start, 'the section in docs/operations.md').toBeGreaterThan(0);
  const section = doc.slice(start, doc.indexOf('\n### ', start + 1));
  const documented: Record<string, [boolean, string]> = {};
  for (const match of section.matchAll(/^\| `([A-Za-z]+)` \| (yes|no) \| (.+) \|$/gm)) documented[match[1]] = [match[2] === 'yes', match[3]];
  return documented;
}

/** The rows `| \`Reason\` | cells… |` of the table under `heading` in docs/operations.md. */
function documentedRows(heading: string): Record<string, string[]> {
  const doc = readFileSync(path.join(repoRoot, 'docs/operations.md'), 'utf8');
  const start = doc.indexOf(heading);
  expect(start, `the section ${heading} in docs/operations.md`).toBeGreaterThan(0);
  const section = doc.slice(start, doc.indexOf('\n### ', start + 1));
  return Object.fromEntries([...section.matchAll(/^\| `([A-Za-z]+)` \| (.+) \|$/gm)].map((match) => [match[1], match[2].split(' | ')]));
}

/** The agent's checkpoint sources (tests left out), as one text. */
function checkpointSources(): string {
  return readdirSync(checkpointsDir).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts')).map((file) => readFileSync(path.join(checkpointsDir, file), 'utf8')).join('\n');
}

describe('the catalog of reasons of the Events about a Checkpoint\'s data', () => {
  it('holds only reasons the agent records', () => {
    const sources = checkpointSources();
    expect(Object.keys(CHECKPOINT_DATA_REASONS).filter((reason) => !sources.includes(`'${reason}'`))).toEqual([]);
  });

  it('is the table in docs/operations.md, type and meaning included', () => {
    const catalog = Object.fromEntries(Object.entries(CHECKPOINT_DATA_REASONS).map(([reason, info]) => [reason, [info.type, info.meaning]]));
    expect(documentedRows('### Why data stays')).toEqual(catalog);
  });
});

describe('the catalog of checkpoint failure reasons', () => {
  it('holds every reason the agent fails a Checkpoint with, and no reason it never raises', () => {
    const raised = raisedReasons();
    expect(raised.size).toBeGreaterThan(8);
    expect([...raised].sort()).toEqual(Object.keys(CHECKPOINT_FAILURE_REASONS).sort());
  });

  it('is the table in docs/operations.md, retryability and meaning included', () => {
    const catalog = Object.fromEntries(Object.entries(CHECKPOINT_FAILURE_REASONS).map(([reason, info]) => [reason, [info.retryable, info.meaning]]));
    expect(documentedReasons()).toEqual(catalog);
  });
});
