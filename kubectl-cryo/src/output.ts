/** How results are printed: kubectl's tables, ages and -o json|yaml|name. */
import { dumpYaml, type KubernetesObject } from '@kubernetes/client-node';
import type { OutputFormat } from './args.ts';
import { line, type Output } from './io.ts';
import type { ResourceInfo } from './resources.ts';

/** Columns separated by three spaces, each as wide as its widest cell (kubectl's printer). */
export function table(rows: readonly (readonly string[])[]): string {
  if (rows.length === 0) return '';
  const widths = rows[0].map((_, column) => Math.max(...rows.map((row) => (row[column] ?? '').length)));
  return rows.map((row) => row.map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column]))).join('   ').trimEnd()).join('\n') + '\n';
}

/** kubectl's HumanDuration: 45s, 5m12s, 3h, 2d4h, 400d. */
export function humanDuration(seconds: number): string {
  if (seconds < -1) return '<invalid>';
  if (seconds < 0) return '0s';
  const s = Math.floor(seconds);
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 10) return s % 60 === 0 ? `${m}m` : `${m}m${s % 60}s`;
  if (m < 180) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 8) return m % 60 === 0 ? `${h}h` : `${h}h${m % 60}m`;
  if (h < 48) return `${h}h`;
  const d = Math.floor(h / 24);
  if (h < 24 * 8) return h % 24 === 0 ? `${d}d` : `${d}d${h % 24}h`;
  if (h < 24 * 365 * 2) return `${d}d`;
  const y = Math.floor(d / 365);
  if (y < 8) return d % 365 === 0 ? `${y}y` : `${y}y${d % 365}d`;
  return `${y}y`;
}

/** Age of a timestamp (a string from JSON, or a Date client-node made of it); `<unknown>` without one. */
export function age(timestamp: string | Date | undefined, now = Date.now()): string {
  if (timestamp === undefined) return '<unknown>';
  const time = timestamp instanceof Date ? timestamp.getTime() : Date.parse(timestamp);
  return Number.isNaN(time) ? '<unknown>' : humanDuration((now - time) / 1000);
}

/** `checkpoint.cryo.dev/web-1`, as `kubectl get -o name` prints it. */
export function qualifiedName(resource: ResourceInfo, obj: KubernetesObject): string {
  return `${resource.singularQualified}/${obj.metadata?.name ?? ''}`;
}

/**
 * -o json / yaml / name for one object or a list. A list prints as kubectl prints one: a `List`
 * whose items keep their apiVersion and kind.
 */
export function printStructured(out: Output, format: 'json' | 'yaml' | 'name', items: readonly KubernetesObject[], single: boolean, nameOf: (obj: KubernetesObject) => string): void {
  if (format === 'name') {
    for (const item of items) line(out, nameOf(item));
    return;
  }
  const document = single && items.length === 1 ? items[0] : { apiVersion: 'v1', kind: 'List', metadata: { resourceVersion: '' }, items };
  out.write(format === 'json' ? `${JSON.stringify(document, null, 4)}\n` : dumpYaml(document));
}

export function isStructured(format: OutputFormat | undefined): format is 'json' | 'yaml' | 'name' {
  return format === 'json' || format === 'yaml' || format === 'name';
}
