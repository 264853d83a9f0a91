/**
 * The shell commands the README gives under a heading, so that tests run (or check) exactly what
 * a reader is told to type: the lines of the first ```sh block between `heading` and the next
 * heading of the same or a higher level, comments and blank lines dropped.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './option-docs.ts';

export function readmeCommands(heading: string, file = 'README.md'): string[] {
  const lines = readFileSync(join(REPO_ROOT, file), 'utf8').split('\n');
  const at = lines.indexOf(heading);
  if (at === -1) throw new Error(`${file} has no heading "${heading}"`);
  const level = /^#+/.exec(heading)?.[0].length ?? 0;
  const end = lines.findIndex((line, i) => i > at && /^#+ /.test(line) && (/^#+/.exec(line)?.[0].length ?? 0) <= level);
  const section = lines.slice(at + 1, end === -1 ? undefined : end);
  const open = section.indexOf('```sh');
  const close = section.indexOf('```', open + 1);
  if (open === -1 || close === -1) throw new Error(`${file} has no \`\`\`sh block under "${heading}"`);
  return section
    .slice(open + 1, close)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
}
