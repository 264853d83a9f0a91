/**
 * Whether this node's container runtime can restore a container from a checkpoint image, decided
 * from its version (node.status.nodeInfo.containerRuntimeVersion) and, where the version alone
 * cannot tell, its config files, read from the host read-only:
 * - containerd 2.1.0 up to 2.2.6 and 2.3.3 restores by default; 2.2.7+ and 2.3.4+ only with
 *   `enable_experimental_restore_via_create = true` in the CRI runtime config (deprecated), and
 *   not with `enable_criu = false` there; 2.4 removed it; 2.0 and before have none (restore
 *   through the CRI came in 2.1.0). Verified in containerd's source at v2.0.0, v2.1.9, v2.2.7,
 *   v2.3.4 and v2.4.0-beta.0.
 * - CRI-O with the `[crio.checkpoint_restore]` switch (newer releases and backports) restores only
 *   with `container_level_enabled = "checkpoint_restore"` (the default "checkpoint_only" never
 *   does); before it, CRI-O 1.34 restores with `enable_criu_support = true` in `[crio.runtime]`.
 *   `enable_criu_support = false` switches restore off in every release, the new switch
 *   notwithstanding (CRI-O sets the level to "none" then).
 * A config file that is missing or unreadable means "cannot tell", which counts as "cannot
 * restore": a pod sent to a node that cannot restore would start fresh or crash-loop, one kept
 * Pending says why. The operator's --runtime-restore wins over all of it.
 */
import { readdir, readFile } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join } from 'node:path';
import type { ContainerRuntime } from '@cryo/common';
import { tomlSettings, type TomlValue } from './toml-settings.ts';

export const RUNTIME_RESTORE_FLAG = '--runtime-restore';
export const RUNTIME_RESTORE_SETTINGS = ['auto', 'enabled', 'disabled'] as const;
/** `auto`: detect; `enabled`/`disabled`: the operator's statement, which wins over detection. */
export type RuntimeRestoreSetting = (typeof RUNTIME_RESTORE_SETTINGS)[number];

export interface RestoreCapability {
  runtime: ContainerRuntime | 'other';
  /** The runtime restores checkpoints of its own kind (`runtime`) on this node. */
  restore: boolean;
  /** In words an operator can act on: what was found, and what would switch restore on. */
  why: string;
}

/** Where the runtimes' config files are (on the host, mounted read-only at the same paths). */
export interface RuntimeConfigPaths {
  containerdConfig: string;
  crioConfig: string;
  /** CRI-O's drop-in directory: its *.conf files override crio.conf, in name order. */
  crioConfigDir: string;
}

/** What a runtime's config files say: each setting with the file it came from, in the order they apply. */
export interface RuntimeConfig {
  settings: Array<{ path: readonly string[]; value: TomlValue; file: string }>;
  /** Files that were read. */
  read: string[];
  /** Files that should have been read and could not be, each with the reason (`/etc/crio/crio.conf (ENOENT)`). */
  unreadable: string[];
}

export interface Version {
  major: number;
  minor: number;
  patch: number;
}

export interface RuntimeVersion {
  runtime: ContainerRuntime | 'other';
  /** As the kubelet reports it: `containerd://2.1.9+unknown`. */
  reported: string;
  /** major.minor.patch, when the version parses. */
  version?: Version;
}

export function parseRuntimeVersion(containerRuntimeVersion: string): RuntimeVersion {
  const match = /^([A-Za-z0-9.-]+):\/\/v?(\d+)\.(\d+)(?:\.(\d+))?/.exec(containerRuntimeVersion);
  const scheme = /^([A-Za-z0-9.-]+):\/\//.exec(containerRuntimeVersion)?.[1].toLowerCase();
  const runtime = scheme === 'containerd' ? 'containerd' : scheme === 'cri-o' ? 'cri-o' : 'other';
  if (match === null) return { runtime, reported: containerRuntimeVersion };
  return { runtime, reported: containerRuntimeVersion, version: { major: Number(match[2]), minor: Number(match[3]), patch: Number(match[4] ?? 0) } };
}

/** Detects what this node's runtime restores: reads its config files only when the version cannot tell. */
export async function detectRestoreCapability(containerRuntimeVersion: string, setting: RuntimeRestoreSetting, paths: RuntimeConfigPaths): Promise<RestoreCapability> {
  const runtime = parseRuntimeVersion(containerRuntimeVersion);
  let config: RuntimeConfig | undefined;
  if (setting === 'auto' && configDecides(runtime)) {
    config = runtime.runtime === 'containerd' ? await readContainerdConfig(paths.containerdConfig) : await readCrioConfig(paths.crioConfig, paths.crioConfigDir);
  }
  return decideRestoreCapability(runtime, setting, config ?? { settings: [], read: [], unreadable: [] });
}

/** Whether the decision needs the runtime's config files (the version alone cannot tell). */
function configDecides(runtime: RuntimeVersion): boolean {
  const v = runtime.version;
  if (v === undefined) return false;
  if (runtime.runtime === 'cri-o') return !(v.major === 1 && v.minor < CRIO_FIRST_RESTORING_MINOR);
  return runtime.runtime === 'containerd' && containerdNeedsOptIn(v);
}

/** The decision, from the version and what the config files say (no I/O). */
export function decideRestoreCapability(runtime: RuntimeVersion, setting: RuntimeRestoreSetting, config: RuntimeConfig): RestoreCapability {
  const kind = runtime.runtime;
  const name = runtimeName(runtime);
  if (setting === 'disabled') return { runtime: kind, restore: false, why: `restore switched off by ${RUNTIME_RESTORE_FLAG}=disabled (${name})` };
  if (kind === 'other') {
    const what = `${name} is neither containerd nor CRI-O, the runtimes whose checkpoints Cryo restores`;
    return { runtime: kind, restore: false, why: setting === 'enabled' ? `${RUNTIME_RESTORE_FLAG}=enabled, but ${what}` : what };
  }
  if (setting === 'enabled') return { runtime: kind, restore: true, why: `restore switched on by ${RUNTIME_RESTORE_FLAG}=enabled (${name})` };
  if (runtime.version === undefined) {
    return { runtime: kind, restore: false, why: `cannot tell whether ${name} restores: its version does not parse; set ${RUNTIME_RESTORE_FLAG}` };
  }
  const decided = kind === 'containerd' ? containerdRestores(name, runtime.version, config) : crioRestores(name, runtime.version, config);
  return { runtime: kind, ...decided };
}

type Decision = { restore: boolean; why: string };
const yes = (why: string): Decision => ({ restore: true, why });
const no = (why: string): Decision => ({ restore: false, why });

function runtimeName(runtime: RuntimeVersion): string {
  const label = runtime.runtime === 'containerd' ? 'containerd' : runtime.runtime === 'cri-o' ? 'CRI-O' : undefined;
  if (label === undefined) return runtime.reported === '' ? 'an unreported runtime' : `the runtime ${JSON.stringify(runtime.reported)}`;
  const v = runtime.version;
  return v === undefined ? `${label} ${JSON.stringify(runtime.reported)}` : `${label} ${v.major}.${v.minor}.${v.patch}`;
}

// ---------------------------------------------------------------------------------- containerd

const CONTAINERD_RESTORE_SWITCH = 'enable_experimental_restore_via_create';
/** Came with the opt-in (2.2.7, 2.3.4); false refuses every restore ("criu support is disabled by configuration"). */
const CONTAINERD_CRIU_SWITCH = 'enable_criu';
/** The CRI plugin's runtime config: config version 3 (containerd 2) and version 2 spell it differently. */
const CONTAINERD_CRI_PLUGINS = ['io.containerd.cri.v1.runtime', 'io.containerd.grpc.v1.cri'];

/** 2.2.7+ and 2.3.4+ restore only when opted in (restore through CreateContainer is deprecated there). */
function containerdNeedsOptIn(v: Version): boolean {
  return v.major === 2 && ((v.minor === 2 && v.patch >= 7) || (v.minor === 3 && v.patch >= 4));
}

function containerdRestores(name: string, v: Version, config: RuntimeConfig): Decision {
  if (v.major < 2 || (v.major === 2 && v.minor < 1)) return no(`${name} cannot restore a container from a checkpoint image: that needs containerd 2.1 or later`);
  if (v.major > 2 || v.minor >= 4) return no(`${name} cannot restore a container from a checkpoint image: containerd 2.4 removed it, ${CONTAINERD_RESTORE_SWITCH} included`);
  if (!containerdNeedsOptIn(v)) return yes(`${name} restores checkpoint images by default (containerd 2.1.0 up to 2.2.6 and 2.3.3)`);
  const criSetting = (key: string) => lastSetting(config, (path) => path[0] === 'plugins' && CONTAINERD_CRI_PLUGINS.includes(path[1]) && path[path.length - 1] === key);
  const criu = criSetting(CONTAINERD_CRIU_SWITCH);
  if (criu !== undefined && criu.value === false) return no(`${name} does not restore: ${CONTAINERD_CRIU_SWITCH} = false in ${criu.file} switches CRIU off; remove it (the default is true)`);
  const found = criSetting(CONTAINERD_RESTORE_SWITCH);
  if (found?.value === true) return yes(`${name} restores: ${CONTAINERD_RESTORE_SWITCH} = true in ${found.file}`);
  const needs = `${name} restores only with ${CONTAINERD_RESTORE_SWITCH} = true in its CRI runtime config ([plugins.'${CONTAINERD_CRI_PLUGINS[0]}'])`;
  if (found !== undefined) return no(`${needs}; ${found.file} sets ${CONTAINERD_RESTORE_SWITCH} = ${JSON.stringify(found.value)}`);
  if (config.unreadable.length > 0) return no(`cannot tell whether ${name} restores: it does only with ${CONTAINERD_RESTORE_SWITCH} = true, and ${config.unreadable.join(', ')} could not be read`);
  return no(needs);
}

// ---------------------------------------------------------------------------------- CRI-O

/** CRI-O restores from checkpoint images since 1.25 (with the kubelet's checkpoint API). */
const CRIO_FIRST_RESTORING_MINOR = 25;
/**
 * The first patch release of each minor that has `[crio.checkpoint_restore]` with
 * "checkpoint_only" as default (released 2026-09-21 by a secondary source; the backport PRs to
 * release-1.34 and release-1.36 are merged, none to release-1.35 was found, so 1.35.9 is the
 * cautious reading: it makes such a node need the new switch), and the first minor that has it
 * from its start. Earlier minors (1.30 to 1.33) got backports whose patch versions are not known
 * here: for them, `enable_criu_support` is believed unless the new switch is set.
 */
const CRIO_RESTORE_LEVEL_SINCE_PATCH: Readonly<Record<number, number>> = { 34: 14, 35: 9, 36: 6 };
const CRIO_RESTORE_LEVEL_SINCE_MINOR = 37;

function crioHasRestoreLevel(v: Version): boolean {
  if (v.major > 1 || v.minor >= CRIO_RESTORE_LEVEL_SINCE_MINOR) return true;
  const since = CRIO_RESTORE_LEVEL_SINCE_PATCH[v.minor];
  return since !== undefined && v.patch >= since;
}

const CRIO_RESTORE_LEVEL = ['crio', 'checkpoint_restore', 'container_level_enabled'];
const CRIO_RESTORE_LEVEL_ON = 'checkpoint_restore';
const CRIO_CRIU_SUPPORT = ['crio', 'runtime', 'enable_criu_support'];

function crioRestores(name: string, v: Version, config: RuntimeConfig): Decision {
  if (v.major === 1 && v.minor < CRIO_FIRST_RESTORING_MINOR) return no(`${name} cannot restore a container from a checkpoint image: that needs CRI-O 1.${CRIO_FIRST_RESTORING_MINOR} or later`);
  const switchOn = `[crio.checkpoint_restore] container_level_enabled = "${CRIO_RESTORE_LEVEL_ON}"`;
  if (config.read.length === 0) {
    return no(`cannot tell whether ${name} restores: none of its config files could be read (${config.unreadable.join(', ')})`);
  }
  const criu = lastSetting(config, (path) => samePath(path, CRIO_CRIU_SUPPORT));
  // CRI-O sets the level to "none" when CRIU support is off, whatever the new switch says.
  if (criu !== undefined && criu.value === false) return no(`${name} does not restore: enable_criu_support = false in [crio.runtime] of ${criu.file}`);
  const level = lastSetting(config, (path) => samePath(path, CRIO_RESTORE_LEVEL));
  if (level !== undefined) {
    return level.value === CRIO_RESTORE_LEVEL_ON
      ? yes(`${name} restores: ${switchOn} in ${level.file}`)
      : no(`${name} does not restore: [crio.checkpoint_restore] container_level_enabled = ${JSON.stringify(level.value)} in ${level.file}; "${CRIO_RESTORE_LEVEL_ON}" switches restore on`);
  }
  if (crioHasRestoreLevel(v)) return no(`${name} restores only with ${switchOn}; its default "checkpoint_only" never restores`);
  if (criu?.value === true) return yes(`${name} restores: enable_criu_support = true in [crio.runtime] of ${criu.file}`);
  if (criu !== undefined) return no(`${name} does not restore: enable_criu_support = ${JSON.stringify(criu.value)} in [crio.runtime] of ${criu.file}`);
  const unread = config.unreadable.length > 0 ? ` (${config.unreadable.join(', ')} could not be read)` : '';
  return no(
    `cannot tell whether ${name} restores: ${config.read.join(', ')}${unread} set neither enable_criu_support in [crio.runtime] nor ` +
      `container_level_enabled in [crio.checkpoint_restore], and their defaults differ between releases; set the one this CRI-O has ` +
      `(enable_criu_support = true, or ${switchOn}), or ${RUNTIME_RESTORE_FLAG}=enabled`,
  );
}

function samePath(path: readonly string[], expected: readonly string[]): boolean {
  return path.length === expected.length && path.every((segment, i) => segment === expected[i]);
}

function lastSetting(config: RuntimeConfig, matches: (path: readonly string[]) => boolean): RuntimeConfig['settings'][number] | undefined {
  return config.settings.findLast((setting) => matches(setting.path));
}

// ---------------------------------------------------------------------------------- the files

/** Reads one file's settings into `config` and returns them; undefined when it could not be read (noted in `unreadable` unless `optional` and missing). */
async function readInto(config: RuntimeConfig, file: string, optional: boolean): Promise<{ path: readonly string[]; value: TomlValue }[] | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    if (!optional || code !== 'ENOENT') config.unreadable.push(`${file} (${code})`);
    return undefined;
  }
  config.read.push(file);
  const settings = tomlSettings(text);
  for (const setting of settings) config.settings.push({ ...setting, file });
  return settings;
}

/** Most files containerd reads through `imports` (they import more): a loop or a glob run wild stops here. */
const MAX_CONTAINERD_FILES = 32;

/**
 * containerd's config.toml and the files its top-level `imports` name (relative to the importing
 * file, `*` and `?` in the file name matched in name order), each applied after the one that
 * imports it, as containerd merges them.
 */
export async function readContainerdConfig(mainPath: string): Promise<RuntimeConfig> {
  const config: RuntimeConfig = { settings: [], read: [], unreadable: [] };
  const pending = [mainPath];
  const seen = new Set<string>();
  while (pending.length > 0 && seen.size < MAX_CONTAINERD_FILES) {
    const file = pending.shift()!;
    if (seen.has(file)) continue;
    seen.add(file);
    const settings = await readInto(config, file, false);
    const imports = settings?.filter((s) => samePath(s.path, ['imports'])).at(-1)?.value;
    if (!Array.isArray(imports)) continue;
    for (const entry of imports) {
      if (typeof entry !== 'string' || entry === '') continue;
      pending.push(...(await expandImport(isAbsolute(entry) ? entry : join(dirname(file), entry), config)));
    }
  }
  return config;
}

async function expandImport(pattern: string, config: RuntimeConfig): Promise<string[]> {
  const name = basename(pattern);
  if (!/[*?]/.test(name)) return [pattern];
  const dir = dirname(pattern);
  const matcher = new RegExp(`^${name.replace(/[.+^${}()|[\]\\]/g, '\\$&').replaceAll('*', '[^/]*').replaceAll('?', '[^/]')}$`);
  try {
    return (await readdir(dir)).filter((entry) => matcher.test(entry)).sort().map((entry) => join(dir, entry));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT') config.unreadable.push(`${dir} (${code ?? (error as Error).message})`);
    return [];
  }
}

/** CRI-O's crio.conf, then each *.conf of its drop-in directory in name order (later ones win), as CRI-O reads them. */
export async function readCrioConfig(mainPath: string, dropInDir: string): Promise<RuntimeConfig> {
  const config: RuntimeConfig = { settings: [], read: [], unreadable: [] };
  // CRI-O runs with its defaults when crio.conf is missing, so only other errors count as unreadable.
  await readInto(config, mainPath, true);
  let dropIns: string[] = [];
  try {
    dropIns = (await readdir(dropInDir)).filter((entry) => entry.endsWith('.conf')).sort();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT') config.unreadable.push(`${dropInDir} (${code ?? (error as Error).message})`);
  }
  for (const entry of dropIns) await readInto(config, join(dropInDir, entry), false);
  if (config.read.length === 0 && config.unreadable.length === 0) config.unreadable.push(`${mainPath} (ENOENT)`, `${join(dropInDir, '*.conf')} (none)`);
  return config;
}
