/**
 * Flags as users write them: sizes as Kubernetes quantities, booleans alone or with a value,
 * durations shown in --help as they are written.
 */
import { describe, expect, it } from 'vitest';
import { describeOptions, parseBoolean, parseByteSize, parseDurationSeconds, readOptions, type OptionSpec } from './options.ts';

const specs = {
  insecure: { flag: '--insecure', env: 'T_INSECURE', default: false, parse: parseBoolean, description: 'a boolean' } satisfies OptionSpec<boolean>,
  size: { flag: '--size', env: 'T_SIZE', default: 0, parse: parseByteSize(0, 2 ** 40), description: 'a size' } satisfies OptionSpec<number>,
  every: { flag: '--every', env: 'T_EVERY', default: 7200, parse: parseDurationSeconds, description: 'a duration' } satisfies OptionSpec<number>,
};

describe('readOptions', () => {
  it('reads a boolean flag alone as true, before another flag or at the end, and takes an explicit value', () => {
    expect(readOptions(specs, ['--insecure'], {}).insecure).toBe(true);
    expect(readOptions(specs, ['--insecure', '--size', '1'], {})).toMatchObject({ insecure: true, size: 1 });
    expect(readOptions(specs, ['--insecure', 'false'], {}).insecure).toBe(false);
    expect(readOptions(specs, ['--insecure=false'], {}).insecure).toBe(false);
    expect(() => readOptions(specs, ['--size'], {})).toThrow('--size needs a value');
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

  it('shows a duration default in --help as it would be written', () => {
    expect(describeOptions(specs)).toContain('--every <value>   env T_EVERY, default 2h');
  });
});
