/**
 * labelSelector and fieldSelector as the apiserver parses them. Field selectors are limited to
 * the fields a resource declares selectable: the real apiserver refuses others with 400, and
 * code that relies on an unsupported field must fail here too rather than only in a cluster.
 */
import { isValidLabelKey, isValidLabelValue } from './kube-apiserver-resources.ts';

export class SelectorError extends Error {}

export type LabelMatcher = (labels: Readonly<Record<string, string>> | undefined) => boolean;
export type FieldMatcher = (obj: unknown) => boolean;

/** Splits on commas outside `in (...)` parentheses. */
function splitLabelTerms(selector: string): string[] {
  const terms: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < selector.length; i++) {
    const c = selector[i];
    if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === ',' && depth === 0) {
      terms.push(selector.slice(start, i));
      start = i + 1;
    }
  }
  terms.push(selector.slice(start));
  return terms.map((t) => t.trim()).filter((t) => t !== '');
}

function checkKey(key: string, term: string): string {
  if (!isValidLabelKey(key)) throw new SelectorError(`unable to parse requirement: invalid label key "${key}" in "${term}"`);
  return key;
}

function checkValue(value: string, term: string): string {
  if (!isValidLabelValue(value)) throw new SelectorError(`unable to parse requirement: invalid label value "${value}" in "${term}"`);
  return value;
}

type LabelRequirement = (labels: Readonly<Record<string, string>>) => boolean;

function parseLabelTerm(term: string): LabelRequirement {
  const set = /^(\S+)\s+(in|notin)\s*\(([^()]*)\)$/.exec(term);
  if (set !== null) {
    const key = checkKey(set[1], term);
    const values = new Set(set[3].split(',').map((v) => checkValue(v.trim(), term)));
    return set[2] === 'in'
      ? (labels) => key in labels && values.has(labels[key])
      : (labels) => !(key in labels) || !values.has(labels[key]);
  }
  const absent = /^!\s*([^\s!=()]+)$/.exec(term);
  if (absent !== null) {
    const key = checkKey(absent[1], term);
    return (labels) => !(key in labels);
  }
  const equality = /^([^\s!=()]+)\s*(==|=|!=)\s*([^\s!=(),]*)$/.exec(term);
  if (equality !== null) {
    const key = checkKey(equality[1], term);
    const value = checkValue(equality[3], term);
    return equality[2] === '!='
      ? (labels) => labels[key] !== value
      : (labels) => labels[key] === value;
  }
  if (/^[^\s!=()]+$/.test(term)) {
    const key = checkKey(term, term);
    return (labels) => key in labels;
  }
  throw new SelectorError(`unable to parse requirement: "${term}"`);
}

/** `k=v`, `k==v`, `k!=v`, `k`, `!k`, `k in (a,b)`, `k notin (a,b)`; comma means AND; '' matches all. */
export function parseLabelSelector(selector: string): LabelMatcher {
  const requirements = splitLabelTerms(selector).map(parseLabelTerm);
  return (labels) => {
    const present = labels ?? {};
    return requirements.every((matches) => matches(present));
  };
}

/** Splits on unescaped commas; `\,`, `\=` and `\\` escape as in fields.ParseSelector. */
function splitFieldTerms(selector: string): string[] {
  const terms: string[] = [];
  let current = '';
  for (let i = 0; i < selector.length; i++) {
    const c = selector[i];
    if (c === '\\' && i + 1 < selector.length) {
      current += c + selector[++i];
    } else if (c === ',') {
      terms.push(current);
      current = '';
    } else {
      current += c;
    }
  }
  terms.push(current);
  return terms.filter((t) => t.trim() !== '');
}

function unescapeFieldValue(value: string): string {
  return value.replace(/\\(.)/g, '$1');
}

/** The string a field compares as: '' when absent, so `spec.nodeName=` selects unscheduled pods. */
export function fieldValue(obj: unknown, path: string): string {
  let value: unknown = obj;
  for (const part of path.split('.')) {
    if (typeof value !== 'object' || value === null) return '';
    value = (value as Record<string, unknown>)[part];
  }
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return '';
}

type FieldRequirement = (obj: unknown) => boolean;

function parseFieldTerm(term: string, selectable: ReadonlySet<string>): FieldRequirement {
  // The operator is the first unescaped `!=`, `==` or `=`.
  for (let i = 0; i < term.length; i++) {
    if (term[i] === '\\') {
      i++;
      continue;
    }
    const op = term.startsWith('!=', i) ? '!=' : term.startsWith('==', i) ? '==' : term[i] === '=' ? '=' : undefined;
    if (op === undefined) continue;
    const field = term.slice(0, i).trim();
    const value = unescapeFieldValue(term.slice(i + op.length).trim());
    if (!selectable.has(field)) throw new SelectorError(`field label not supported: ${field}`);
    return op === '!=' ? (obj) => fieldValue(obj, field) !== value : (obj) => fieldValue(obj, field) === value;
  }
  throw new SelectorError(`invalid selector: '${term}'; can't understand '${term}'`);
}

export function parseFieldSelector(selector: string, selectable: ReadonlySet<string>): FieldMatcher {
  const requirements = splitFieldTerms(selector).map((term) => parseFieldTerm(term, selectable));
  return (obj) => requirements.every((matches) => matches(obj));
}
