/**
 * The default store an install gives the node agent, and what the agent and a Checkpoint say
 * without one: the whole agent (startNodeAgent) on the fakes (agent-on-fakes.ts), once with
 * --directory as manifests/ sets it (CRYO_DIRECTORY) and once with none.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { NO_DEFAULT_STORE_WARNING } from '@cryo/node-agent';
import { buildCheckpointArchive, captureLogger } from '@cryo/test';
import { startAgentOnFakes, type AgentOnFakes } from './agent-on-fakes.ts';

describe('the node agent’s default store', () => {
  let fakes: AgentOnFakes | undefined;
  afterEach(async () => {
    await fakes?.stop();
    fakes = undefined;
  });

  it('with none, warns at start naming the flags, and a Checkpoint naming no storage fails StorageNotConfigured, naming them too', async () => {
    const log = captureLogger();
    fakes = await startAgentOnFakes('cryo-agent-no-store-', ['--directory', ''], { logger: log.logger });
    expect(log.messages('warn')).toContain(NO_DEFAULT_STORE_WARNING);
    expect(NO_DEFAULT_STORE_WARNING).toMatch(/--directory .*--registry-repository/);

    const archive = await buildCheckpointArchive({ dir: fakes.checkpointsDir, pod: fakes.pod, containerName: 'app', fileName: 'unstored.tar' });
    const checkpoint = await fakes.checkpointAnswering('unstored', archive.path);
    expect(checkpoint.status).toMatchObject({ phase: 'Failed', reason: 'StorageNotConfigured' });
    expect(checkpoint.status?.message).toMatch(/no default store.*--directory \(env CRYO_DIRECTORY; manifests\/ sets \/var\/lib\/cryo\/checkpoints\) or --registry-repository/);
    expect(checkpoint.status?.conditions?.find((c) => c.type === 'Failed')).toMatchObject({ status: 'True', reason: 'StorageNotConfigured' });
  });

  it('with --directory, as the DaemonSet sets it, says nothing of it and stores there', async () => {
    const log = captureLogger();
    fakes = await startAgentOnFakes('cryo-agent-dir-store-', [], { logger: log.logger });
    expect(log.messages('warn')).not.toContain(NO_DEFAULT_STORE_WARNING);

    const archive = await buildCheckpointArchive({ dir: fakes.checkpointsDir, pod: fakes.pod, containerName: 'app', fileName: 'stored.tar' });
    const checkpoint = await fakes.checkpointAnswering('stored', archive.path);
    expect(checkpoint.status?.phase, checkpoint.status?.message).toBe('Succeeded');
    expect(checkpoint.status?.storage).toMatchObject({ type: 'directory' });
    expect(checkpoint.status?.containers?.[0]?.restoreReference).toContain(fakes.storeDir);
  });
});
