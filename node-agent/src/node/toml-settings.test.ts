import { describe, expect, it } from 'vitest';
import { tomlSettings } from './toml-settings.ts';

const byPath = (text: string) => tomlSettings(text).map(({ path, value }) => [path.join(' > '), value]);

describe('tomlSettings', () => {
  it('reads keys under table headers, quoted segments (with dots) and dotted keys', () => {
    const text = [
      'version = 3',
      "[plugins.'io.containerd.cri.v1.runtime']",
      '  enable_experimental_restore_via_create = true',
      '  [plugins."io.containerd.cri.v1.runtime".containerd]',
      '    default_runtime_name = "runc"',
      '[crio]',
      'checkpoint_restore.container_level_enabled = "checkpoint_restore"',
      '[[crio.list]]',
      "name = 'literal \\n stays'",
    ].join('\n');
    expect(byPath(text)).toEqual([
      ['version', 3],
      ['plugins > io.containerd.cri.v1.runtime > enable_experimental_restore_via_create', true],
      ['plugins > io.containerd.cri.v1.runtime > containerd > default_runtime_name', 'runc'],
      ['crio > checkpoint_restore > container_level_enabled', 'checkpoint_restore'],
      ['crio > list > name', 'literal \\n stays'],
    ]);
  });

  it('ignores comments, also after a value, but not a # inside a string', () => {
    const text = [
      '# enable_criu_support = true',
      '[crio.runtime]  # the runtime table',
      '  # enable_criu_support = true',
      'enable_criu_support = false # true would switch restore on',
      'conmon = "/usr/bin/con#mon" # a path with a #',
    ].join('\n');
    expect(byPath(text)).toEqual([
      ['crio > runtime > enable_criu_support', false],
      ['crio > runtime > conmon', '/usr/bin/con#mon'],
    ]);
  });

  it('reads lists, also over several lines, with escapes in basic strings', () => {
    const text = ['imports = ["/etc/containerd/conf.d/*.toml", \'b.toml\']', 'multi = [', '  "a", # first', '  "b\\"c",', ']', 'after = 1'].join('\n');
    expect(byPath(text)).toEqual([
      ['imports', ['/etc/containerd/conf.d/*.toml', 'b.toml']],
      ['multi', ['a', 'b"c']],
      ['after', 1],
    ]);
  });

  it('skips what it does not read: inline tables, multi-line strings (whose lines look like settings), broken lines', () => {
    const text = [
      'inline = { a = 1 }',
      'doc = """',
      'enable_criu_support = true',
      '"""',
      'broken = "no end',
      '= 3',
      'x = yes',
      '[crio.runtime]',
      'enable_criu_support = true',
    ].join('\r\n');
    expect(byPath(text)).toEqual([['crio > runtime > enable_criu_support', true]]);
  });
});
