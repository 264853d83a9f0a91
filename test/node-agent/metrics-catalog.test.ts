/**
 * Keeps the metrics docs and the Grafana dashboard true: every metric a component declares
 * (metrics.counter/gauge/histogram in the agent, controller and webhook sources) is described in
 * docs/operations.md or docs/migration.md, and every `cryo_…` metric those docs or
 * docs/grafana-dashboard.json name is one that is declared.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { METRIC_PREFIX } from '@cryo/common';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const read = (file: string) => readFileSync(path.join(repoRoot, file), 'utf8');

function sourceFiles(dir: string): string[] {
  return readdirSync(path.join(repoRoot, dir), { withFileTypes: true }).flatMap((entry) => {
    const relative = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(relative);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts') ? [relative] : [];
  });
}

/** Every metric the components declare, with the prefix. */
function declaredMetrics(): Set<string> {
  const declared = new Set<string>();
  for (const file of ['node-agent/src', 'controller/src', 'webhook/src'].flatMap(sourceFiles)) {
    for (const match of read(file).matchAll(/\.(?:counter|gauge|histogram)(?:<[^>]*>)?\(\s*'([a-z_]+)'/g)) declared.add(METRIC_PREFIX + match[1]);
  }
  return declared;
}

/** `cryo_…` names in a text, without a histogram's series suffix; process metrics (prom-client's defaults) left out. */
function namedMetrics(text: string): Set<string> {
  const named = new Set<string>();
  for (const match of text.matchAll(/\bcryo_[a-z_]*[a-z]/g)) {
    const name = match[0].replace(/_(bucket|count|sum)$/, '');
    if (!/^cryo_(process|nodejs)(_|$)/.test(name)) named.add(name);
  }
  return named;
}

describe('the metrics catalog', () => {
  const declared = declaredMetrics();
  const docs = read('docs/operations.md') + read('docs/migration.md');

  it('describes every metric the components declare', () => {
    expect(declared.size).toBeGreaterThan(20);
    expect([...declared].filter((name) => !new RegExp(`\`${name}(\\{[a-z_,]*\\})?\``).test(docs))).toEqual([]);
  });

  it('names, in the docs and the Grafana dashboard, only metrics that exist', () => {
    expect([...namedMetrics(docs)].filter((name) => !declared.has(name))).toEqual([]);
    const dashboard = JSON.parse(read('docs/grafana-dashboard.json')) as { panels: { targets?: { expr: string }[] }[] };
    const queried = namedMetrics(dashboard.panels.flatMap((panel) => panel.targets ?? []).map((target) => target.expr).join('\n'));
    expect(queried.size).toBeGreaterThan(15);
    expect([...queried].filter((name) => !declared.has(name))).toEqual([]);
  });
});
