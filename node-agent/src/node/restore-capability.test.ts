import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { detectRestoreCapability, parseRuntimeVersion, type RuntimeConfigPaths, type RuntimeRestoreSetting } from './restore-capability.ts';

let dir: string;
let paths: RuntimeConfigPaths;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cryo-runtime-config-'));
  paths = { containerdConfig: join(dir, 'containerd/config.toml'), crioConfig: join(dir, 'crio/crio.conf'), crioConfigDir: join(dir, 'crio/crio.conf.d') };
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function write(path: string, text: string): void {
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, text);
}

const detect = (version: string, setting: RuntimeRestoreSetting = 'auto') => detectRestoreCapability(version, setting, paths);

/** containerd 2 (config version 3) with the opt-in, as its docs spell the CRI runtime table. */
const CONTAINERD_OPT_IN = "version = 3\n[plugins.'io.containerd.cri.v1.runtime']\n  enable_experimental_restore_via_create = true\n";
const CONTAINERD_PLAIN = "version = 3\n[plugins.'io.containerd.cri.v1.runtime']\n  restrict_oom_score_adj = true\n";

describe('parseRuntimeVersion', () => {
  it.each([
    ['containerd://2.1.9+unknown', 'containerd', { major: 2, minor: 1, patch: 9 }],
    ['containerd://v2.2.7', 'containerd', { major: 2, minor: 2, patch: 7 }],
    ['containerd://1.7.27-k3s1', 'containerd', { major: 1, minor: 7, patch: 27 }],
    ['cri-o://1.34.11', 'cri-o', { major: 1, minor: 34, patch: 11 }],
    ['docker://28.0.1', 'other', { major: 28, minor: 0, patch: 1 }],
    ['containerd://devel', 'containerd', undefined],
    ['', 'other', undefined],
  ])('%j → %s %j', (reported, runtime, version) => {
    expect(parseRuntimeVersion(reported)).toEqual({ runtime, reported, ...(version === undefined ? {} : { version }) });
  });
});

describe('containerd', () => {
  it('2.1.9 restores by default, whatever its config says (it is not read)', async () => {
    write(paths.containerdConfig, 'this is not TOML');
    expect(await detect('containerd://2.1.9+unknown')).toEqual({
      runtime: 'containerd',
      restore: true,
      why: 'containerd 2.1.9 restores checkpoint images by default (containerd 2.1.0 up to 2.2.6 and 2.3.3)',
    });
  });

  it.each(['containerd://2.1.0', 'containerd://2.2.6', 'containerd://2.3.3'])('%s restores by default', async (version) => {
    expect((await detect(version)).restore).toBe(true);
  });

  it('2.2.7 without enable_experimental_restore_via_create does not restore, and says what would switch it on', async () => {
    write(paths.containerdConfig, CONTAINERD_PLAIN);
    expect(await detect('containerd://2.2.7')).toEqual({
      runtime: 'containerd',
      restore: false,
      why: "containerd 2.2.7 restores only with enable_experimental_restore_via_create = true in its CRI runtime config ([plugins.'io.containerd.cri.v1.runtime'])",
    });
  });

  it('2.2.7 with enable_experimental_restore_via_create = true restores, naming the file', async () => {
    write(paths.containerdConfig, CONTAINERD_OPT_IN);
    expect(await detect('containerd://2.2.7')).toEqual({
      runtime: 'containerd',
      restore: true,
      why: `containerd 2.2.7 restores: enable_experimental_restore_via_create = true in ${paths.containerdConfig}`,
    });
  });

  it('2.2.7 opted in but with enable_criu = false does not restore (containerd refuses: criu support is disabled by configuration)', async () => {
    write(paths.containerdConfig, `${CONTAINERD_OPT_IN}  enable_criu = false\n`);
    expect(await detect('containerd://2.2.7')).toEqual({
      runtime: 'containerd',
      restore: false,
      why: `containerd 2.2.7 does not restore: enable_criu = false in ${paths.containerdConfig} switches CRIU off; remove it (the default is true)`,
    });
  });

  it('2.3.4 needs the opt-in too; false or a commented-out line is no opt-in', async () => {
    write(paths.containerdConfig, `${CONTAINERD_PLAIN}  enable_experimental_restore_via_create = false\n`);
    expect(await detect('containerd://2.3.4')).toMatchObject({ restore: false, why: expect.stringContaining(`${paths.containerdConfig} sets enable_experimental_restore_via_create = false`) });
    write(paths.containerdConfig, `${CONTAINERD_PLAIN}  # enable_experimental_restore_via_create = true\n`);
    expect((await detect('containerd://2.3.4')).restore).toBe(false);
    write(paths.containerdConfig, CONTAINERD_OPT_IN);
    expect((await detect('containerd://2.3.4')).restore).toBe(true);
  });

  it('counts the opt-in only in the CRI plugin: config version 2 spells it io.containerd.grpc.v1.cri', async () => {
    write(paths.containerdConfig, 'enable_experimental_restore_via_create = true\n[plugins."io.containerd.gc.v1.scheduler"]\nenable_experimental_restore_via_create = true\n');
    expect((await detect('containerd://2.2.8')).restore).toBe(false);
    write(paths.containerdConfig, 'version = 2\n[plugins."io.containerd.grpc.v1.cri"]\n  enable_experimental_restore_via_create = true\n');
    expect((await detect('containerd://2.2.8')).restore).toBe(true);
  });

  it("reads the files config.toml imports (globs in name order, relative to it), later ones winning", async () => {
    write(paths.containerdConfig, `imports = ["conf.d/*.toml"]\n${CONTAINERD_PLAIN}`);
    write(join(dir, 'containerd/conf.d/10-restore.toml'), CONTAINERD_OPT_IN);
    write(join(dir, 'containerd/conf.d/notes.txt'), 'enable_experimental_restore_via_create = false');
    expect(await detect('containerd://2.2.7')).toMatchObject({ restore: true, why: expect.stringContaining(join(dir, 'containerd/conf.d/10-restore.toml')) });
    write(join(dir, 'containerd/conf.d/20-off.toml'), "[plugins.'io.containerd.cri.v1.runtime']\nenable_experimental_restore_via_create = false\n");
    expect((await detect('containerd://2.2.7')).restore).toBe(false);
  });

  it('cannot tell, so does not restore, when config.toml cannot be read', async () => {
    expect(await detect('containerd://2.2.7')).toEqual({
      runtime: 'containerd',
      restore: false,
      why: `cannot tell whether containerd 2.2.7 restores: it does only with enable_experimental_restore_via_create = true, and ${paths.containerdConfig} (ENOENT) could not be read`,
    });
  });

  it('2.4.0 does not restore, even with the opt-in: 2.4 removed it', async () => {
    write(paths.containerdConfig, CONTAINERD_OPT_IN);
    expect(await detect('containerd://2.4.0')).toEqual({
      runtime: 'containerd',
      restore: false,
      why: 'containerd 2.4.0 cannot restore a container from a checkpoint image: containerd 2.4 removed it, enable_experimental_restore_via_create included',
    });
  });

  it.each(['containerd://1.7.27', 'containerd://2.0.0', 'containerd://2.0.11'])('%s does not restore: restore through the CRI came with 2.1.0', async (version) => {
    expect(await detect(version)).toMatchObject({ runtime: 'containerd', restore: false, why: expect.stringContaining('needs containerd 2.1 or later') });
  });

  it('cannot tell from a version that does not parse', async () => {
    expect(await detect('containerd://devel')).toMatchObject({ restore: false, why: expect.stringMatching(/^cannot tell whether containerd "containerd:\/\/devel" restores/) });
  });
});

describe('CRI-O', () => {
  it('1.34 with enable_criu_support = true restores', async () => {
    write(paths.crioConfig, '[crio.runtime]\ndefault_runtime = "crun"\nenable_criu_support = true\n');
    expect(await detect('cri-o://1.34.11')).toEqual({
      runtime: 'cri-o',
      restore: true,
      why: `CRI-O 1.34.11 restores: enable_criu_support = true in [crio.runtime] of ${paths.crioConfig}`,
    });
  });

  it('1.34 with enable_criu_support = false does not, and without it cannot tell (so does not)', async () => {
    write(paths.crioConfig, '[crio.runtime]\nenable_criu_support = false\n');
    expect(await detect('cri-o://1.34.11')).toMatchObject({ restore: false, why: `CRI-O 1.34.11 does not restore: enable_criu_support = false in [crio.runtime] of ${paths.crioConfig}` });
    write(paths.crioConfig, '[crio.runtime]\n# enable_criu_support = true\n[crio.api]\nenable_criu_support = true\n');
    expect(await detect('cri-o://1.34.11')).toMatchObject({
      restore: false,
      why: expect.stringMatching(/^cannot tell whether CRI-O 1\.34\.11 restores: .* set neither enable_criu_support in \[crio\.runtime\] nor container_level_enabled in \[crio\.checkpoint_restore\]/),
    });
  });

  it('restores with [crio.checkpoint_restore] container_level_enabled = "checkpoint_restore"', async () => {
    write(paths.crioConfig, '[crio.checkpoint_restore]\ncontainer_level_enabled = "checkpoint_restore"\n');
    expect(await detect('cri-o://1.34.14')).toEqual({
      runtime: 'cri-o',
      restore: true,
      why: `CRI-O 1.34.14 restores: [crio.checkpoint_restore] container_level_enabled = "checkpoint_restore" in ${paths.crioConfig}`,
    });
  });

  it('does not restore with enable_criu_support = false, container_level_enabled = "checkpoint_restore" notwithstanding (CRI-O sets the level to none)', async () => {
    write(paths.crioConfig, '[crio.runtime]\nenable_criu_support = false\n[crio.checkpoint_restore]\ncontainer_level_enabled = "checkpoint_restore"\n');
    expect(await detect('cri-o://1.36.6')).toMatchObject({ restore: false, why: `CRI-O 1.36.6 does not restore: enable_criu_support = false in [crio.runtime] of ${paths.crioConfig}` });
  });

  it('does not restore with container_level_enabled = "checkpoint_only", enable_criu_support notwithstanding', async () => {
    write(paths.crioConfig, '[crio.runtime]\nenable_criu_support = true\n[crio.checkpoint_restore]\ncontainer_level_enabled = "checkpoint_only"\n');
    expect(await detect('cri-o://1.36.6')).toMatchObject({
      restore: false,
      why: `CRI-O 1.36.6 does not restore: [crio.checkpoint_restore] container_level_enabled = "checkpoint_only" in ${paths.crioConfig}; "checkpoint_restore" switches restore on`,
    });
  });

  it('does not restore on a release with the switch left at its default, even with enable_criu_support = true', async () => {
    write(paths.crioConfig, '[crio.runtime]\nenable_criu_support = true\n');
    for (const version of ['cri-o://1.34.14', 'cri-o://1.35.9', 'cri-o://1.36.6', 'cri-o://1.37.0']) {
      expect(await detect(version), version).toMatchObject({ restore: false, why: expect.stringContaining('its default "checkpoint_only" never restores') });
    }
  });

  it('reads the drop-ins after crio.conf, in name order, later ones winning (crio.conf may be missing)', async () => {
    write(join(paths.crioConfigDir, '20-off.conf'), '[crio.checkpoint_restore]\ncontainer_level_enabled = "checkpoint_only"\n');
    write(join(paths.crioConfigDir, '10-on.conf'), '[crio.checkpoint_restore]\ncontainer_level_enabled = "checkpoint_restore"\n');
    expect((await detect('cri-o://1.35.9')).restore).toBe(false);
    write(join(paths.crioConfigDir, '30-on.conf'), '[crio.checkpoint_restore]\ncontainer_level_enabled = "checkpoint_restore"\n');
    write(join(paths.crioConfigDir, '99-ignored.conf.bak'), '[crio.checkpoint_restore]\ncontainer_level_enabled = "none"\n');
    expect(await detect('cri-o://1.35.9')).toMatchObject({ restore: true, why: expect.stringContaining(join(paths.crioConfigDir, '30-on.conf')) });
  });

  it('cannot tell, so does not restore, when no config file can be read', async () => {
    expect(await detect('cri-o://1.34.11')).toMatchObject({ restore: false, why: expect.stringMatching(/^cannot tell whether CRI-O 1\.34\.11 restores: none of its config files could be read/) });
  });

  it('before 1.25 does not restore', async () => {
    expect((await detect('cri-o://1.24.6')).restore).toBe(false);
  });
});

describe('--runtime-restore, the operator’s statement, wins over detection', () => {
  it('enabled: restores even where detection says no, for containerd and CRI-O', async () => {
    expect(await detect('containerd://2.4.0', 'enabled')).toEqual({ runtime: 'containerd', restore: true, why: 'restore switched on by --runtime-restore=enabled (containerd 2.4.0)' });
    expect(await detect('cri-o://1.34.11', 'enabled')).toMatchObject({ runtime: 'cri-o', restore: true });
  });

  it('disabled: never restores', async () => {
    expect(await detect('containerd://2.1.9+unknown', 'disabled')).toEqual({ runtime: 'containerd', restore: false, why: 'restore switched off by --runtime-restore=disabled (containerd 2.1.9)' });
  });

  it('enabled cannot make another runtime restore Cryo’s checkpoints', async () => {
    expect(await detect('docker://28.0.1', 'enabled')).toEqual({
      runtime: 'other',
      restore: false,
      why: '--runtime-restore=enabled, but the runtime "docker://28.0.1" is neither containerd nor CRI-O, the runtimes whose checkpoints Cryo restores',
    });
    expect(await detect('docker://28.0.1')).toMatchObject({ runtime: 'other', restore: false });
  });
});
