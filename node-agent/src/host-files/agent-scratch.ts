/**
 * Agent-only scratch directories beside the host paths the agent manages: `<parent>/.cryo-agent-XXXXXX`,
 * made by mkdtemp (mode 0700, a fresh name: mkdir never reuses or follows an existing one). Being in
 * the same directory as what they serve, they are on the same filesystem, so rename() moves things
 * in and out of them atomically. Nothing but the agent can create, rename or replace a name inside
 * one, as long as `parent` itself is the agent's (the hooks directory: pods mount only their own
 * subdirectory of it, never it).
 *
 * They exist only while an operation uses them; one left behind (the agent died mid-way, or a
 * removal ran out of budget) is drained again by whoever lists `parent` next (hook-server.ts sync).
 */
import { mkdtemp } from 'node:fs/promises';
import path from 'node:path';

export const SCRATCH_PREFIX = '.cryo-agent-';

/** Scratch directories an operation of this process is using now: never drained as leftovers. */
const inUse = new Set<string>();

export async function createScratchDir(parent: string): Promise<string> {
  const dir = await mkdtemp(path.join(parent, SCRATCH_PREFIX));
  inUse.add(dir);
  return dir;
}

/** The operation is done with it (whether or not it still exists). */
export function releaseScratchDir(dir: string): void {
  inUse.delete(dir);
}

/** Marks a leftover as being drained; false if some operation already uses it. */
export function claimScratchDir(dir: string): boolean {
  if (inUse.has(dir)) return false;
  inUse.add(dir);
  return true;
}

export function isScratchName(name: string): boolean {
  return name.startsWith(SCRATCH_PREFIX);
}
