/**
 * Keeps the catalog of the webhook's refusals in docs/operations.md ("What the webhook refuses")
 * true: every AdmissionDenial the webhook's sources can raise is listed there with its code, and
 * the table lists nothing else.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts') ? [full] : [];
  });
}

/** `reason → code` of every `new AdmissionDenial(code, 'reason', …)` in the webhook's sources. */
function raisedDenials(): Map<string, number> {
  const raised = new Map<string, number>();
  for (const file of sourceFiles(path.join(repoRoot, 'webhook/src'))) {
    for (const match of readFileSync(file, 'utf8').matchAll(/new AdmissionDenial\(\s*(\d{3}),\s*'([a-z0-9-]+)'/g)) {
      raised.set(match[2], Number(match[1]));
    }
  }
  return raised;
}

/** `reason → code` of the catalog table in docs/operations.md. */
function documentedDenials(): Map<string, number> {
  const doc = readFileSync(path.join(repoRoot, 'docs/operations.md'), 'utf8');
  const start = doc.indexOf('### What the webhook refuses');
  expect(start, 'the catalog section in docs/operations.md').toBeGreaterThan(0);
  const section = doc.slice(start, doc.indexOf('\n### ', start + 1));
  const documented = new Map<string, number>();
  for (const match of section.matchAll(/^\| `([a-z0-9-]+)` \| (\d{3}) \|/gm)) documented.set(match[1], Number(match[2]));
  return documented;
}

describe('the catalog of admission refusals (docs/operations.md)', () => {
  it('lists every reason the webhook can refuse a pod with, with its code, and nothing else', () => {
    const raised = raisedDenials();
    expect(raised.size).toBeGreaterThan(10);
    expect(raised.get('checkpoint-stored-as-archive')).toBe(409);
    expect(Object.fromEntries(documentedDenials())).toEqual(Object.fromEntries(raised));
  });
});
