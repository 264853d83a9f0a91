/**
 * Flags as users write them, read the same way by every process: sizes as Kubernetes quantities,
 * booleans alone, negated or with `=`, durations shown as they are written; URLs and addresses
 * checked at start; the docs' table made from the same specs.
 */
import { describe, expect, it } from 'vitest';
import {
  describeOptions,
  describeSettings,
  formatByteSize,
  formatDuration,
  optionTable,
  parseBoolean,
  parseByteSize,
  parseDurationSeconds,
  parseHttpsUrl,
  parseIpAddress,
  parseString,
  readCommandLine,
  readOptions,
  type OptionSpec,
} from './options.ts';

const specs = {
  insecure: { flag: '--insecure', env: 'T_INSECURE', default: false, parse: parseBoolean, description: 'a boolean' } satisfies OptionSpec<boolean>,
  size: { flag: '--size', env: 'T_SIZE', default: 0, parse: parseByteSize(0, 2 ** 40), format: formatByteSize, description: 'a size' } satisfies OptionSpec<number>,
  every: { flag: '--every', env: 'T_EVERY', default: 7200, parse: parseDurationSeconds, format: formatDuration, description: 'a duration' } satisfies OptionSpec<number>,
  name: { flag: '--name', default: '', parse: parseString, description: 'a | piped <name>' } satisfies OptionSpec<string>,
};

describe('readOptions', () => {
  it('reads a boolean flag alone as true, --no-<flag> as false, and a value after =', () => {
    expect(readOptions(specs, ['--insecure'], {}).insecure).toBe(true);
    expect(readOptions(specs, ['--insecure', '--size', '1'], {})).toMatchObject({ insecure: true, size: 1 });
    expect(readOptions(specs, ['--size', '1', '--insecure'], {})).toMatchObject({ insecure: true, size: 1 });
    expect(readOptions(specs, ['--insecure=false'], {}).insecure).toBe(false);
    expect(readOptions(specs, ['--insecure=true'], {}).insecure).toBe(true);
    expect(readOptions(specs, ['--no-insecure'], { T_INSECURE: 'true' }).insecure).toBe(false);
    expect(readOptions(specs, [], { T_INSECURE: 'yes' }).insecure).toBe(true);
    expect(() => readOptions(specs, ['--insecure=maybe'], {})).toThrow('--insecure (env T_INSECURE): expected true or false, got "maybe"');
  });

  it('refuses a boolean with a separate value, naming the ways to write it, rather than reading true and a stray "false"', () => {
    expect(() => readOptions(specs, ['--insecure', 'false'], {})).toThrow('--insecure takes no separate value: write --insecure or --insecure=false (--no-insecure for false)');
    expect(() => readCommandLine(specs, ['run', '--insecure', 'true'], {}, { positionals: true })).toThrow(/--insecure takes no separate value/);
  });

  it('refuses unknown flags, --no- on a flag that is no boolean, a missing value and stray arguments, naming each', () => {
    expect(() => readOptions(specs, ['--bogus=1'], {})).toThrow('unknown flag --bogus; run with --help for the list of flags');
    expect(() => readOptions(specs, ['-x'], {})).toThrow('unknown flag -x');
    expect(() => readOptions(specs, ['--no-size'], {})).toThrow('unknown flag --no-size');
    expect(() => readOptions(specs, ['--no-insecure=true'], {})).toThrow('unknown flag --no-insecure');
    expect(() => readOptions(specs, ['--size'], {})).toThrow('--size needs a value: --size <value> or --size=<value>');
    expect(() => readOptions(specs, ['--size', '--insecure'], {})).toThrow('--size needs a value');
    expect(() => readOptions(specs, ['extra'], {})).toThrow('unexpected argument "extra"');
  });

  it('takes positional arguments where a command has them, and flags between them', () => {
    expect(readCommandLine(specs, ['checkpoint', '--size=1Ki', 'web', '--', '--every'], {}, { positionals: true })).toEqual({
      values: { insecure: false, size: 1024, every: 7200, name: '' },
      positionals: ['checkpoint', 'web', '--every'],
    });
  });

  it('reads a flag without an env var from the command line only', () => {
    expect(readOptions(specs, ['--name', ' web '], {}).name).toBe('web');
  });

  it('reads sizes as Kubernetes quantities, binary and decimal, and refuses others naming the form', () => {
    const size = (raw: string) => readOptions(specs, ['--size', raw], {}).size;
    expect(size('1048576')).toBe(1048576);
    expect(size('512Mi')).toBe(512 * 2 ** 20);
    expect(size('10Gi')).toBe(10 * 2 ** 30);
    expect(size('1G')).toBe(1e9);
    expect(size('1.5Ki')).toBe(1536);
    expect(() => size('10GB')).toThrow('--size (env T_SIZE): expected a size in bytes from 0 to 1Ti such as 1048576, 512Mi or 10Gi, got "10GB"');
    expect(() => size('0.5')).toThrow(/expected a size in bytes/);
    expect(() => size('2Ti')).toThrow(/expected a size in bytes/);
  });

  it('shows a duration default in --help as it would be written, a boolean as a bare flag', () => {
    expect(describeOptions(specs)).toContain('--every <value>   env T_EVERY, default 2h');
    expect(describeOptions(specs)).toContain('  --insecure   env T_INSECURE, default false\n');
    expect(describeOptions(specs)).toContain('  --name <value>   default (none)\n');
  });
});

describe('values checked at start', () => {
  it('takes https URLs only, without credentials, query or fragment', () => {
    expect(parseHttpsUrl('https://10.0.0.5:10250/')).toBe('https://10.0.0.5:10250');
    for (const bad of ['http://10.0.0.5:10250', '10.0.0.5:10250', 'https://user:pw@node:10250', 'https://node:10250/?x=1', 'not a url']) {
      expect(() => parseHttpsUrl(bad), bad).toThrow(`expected an https:// URL such as https://10.0.0.5:10250, got "${bad}"`);
    }
  });

  it('takes IPv4 and IPv6 addresses, not names', () => {
    expect(parseIpAddress('10.0.0.5')).toBe('10.0.0.5');
    expect(parseIpAddress('fd00::5')).toBe('fd00::5');
    expect(() => parseIpAddress('node-a')).toThrow('expected an IPv4 or IPv6 address, got "node-a"');
  });
});

describe('durations and sizes as written', () => {
  it('formats what the parsers read back to the same value', () => {
    for (const raw of ['100ms', '90s', '10m', '2h', '7d']) expect(formatDuration(parseDurationSeconds(raw))).toBe(raw);
    expect(formatDuration(7200)).toBe('2h');
    expect(formatDuration(0)).toBe('0s');
    for (const raw of ['4Mi', '10Gi', '1000', '1536']) expect(formatByteSize(parseByteSize(0, 2 ** 40)(raw))).toBe(raw);
  });

  it('shows the settings a process runs with by flag name, durations and sizes as written', () => {
    expect(describeSettings(specs, readOptions(specs, ['--every', '5400', '--size', '10Gi'], {}))).toEqual({ insecure: false, size: '10Gi', every: '90m', name: '' });
  });
});

describe('optionTable', () => {
  it('makes the docs table from the specs: defaults as written, no env where there is none, Markdown escaped', () => {
    expect(optionTable(specs).split('\n')).toEqual([
      '| flag | env | default | meaning |',
      '|---|---|---|---|',
      '| `--insecure` | `T_INSECURE` | false | a boolean |',
      '| `--size` | `T_SIZE` | 0 | a size |',
      '| `--every` | `T_EVERY` | 2h | a duration |',
      '| `--name` |  | (none) | a \\| piped \\<name> |',
    ]);
  });
});
