/**
 * One RegistryStore push in a process of its own, so that the benchmark (and the memory test)
 * can read this process's peak RSS (VmHWM in /proc/<pid>/status) around nothing but the push.
 *
 *   node test/bench/registry-push-child.ts '{"repository":"127.0.0.1:5000/bench/a","archive":"/tmp/a.tar"}'
 *
 * Prints one JSON line (the StoredCheckpoint, or {"error": ...}), then waits for stdin to close
 * before it exits, so the parent reads /proc/<pid>/status of a live process. With `"idle": true`
 * it loads everything and makes the store but pushes nothing: the baseline peak.
 */
import { randomUUID } from 'node:crypto';
import { RegistryStore } from '../../node-agent/src/storage/registry/registry-store.ts';
import type { LayerCompression } from '../../node-agent/src/storage/registry/layer-compression.ts';
import { archiveInfoOf } from '../storage/registry-test-archives.ts';

interface ChildArgs {
  repository: string;
  archive: string;
  chunkSizeBytes?: number;
  layerCompression?: LayerCompression;
  idle?: boolean;
}

const args = JSON.parse(process.argv[2] ?? '{}') as ChildArgs;
const store = new RegistryStore({ repository: args.repository, insecure: true, chunkSizeBytes: args.chunkSizeBytes, layerCompression: args.layerCompression });
const archive = await archiveInfoOf(args.archive);
let answer: unknown;
try {
  answer = args.idle
    ? { idle: true }
    : await store.store({
        archive,
        checkpoint: { namespace: 'bench', name: `bench-${archive.sizeBytes}`, uid: randomUUID() },
        pod: { namespace: 'bench', name: archive.pod.name || 'bench-0', uid: randomUUID() },
        containerName: archive.containerName,
      });
} catch (err) {
  answer = { error: String(err) };
}
store.close();
process.stdout.write(`${JSON.stringify(answer)}\n`);
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
