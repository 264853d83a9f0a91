#!/usr/bin/env node
/** The node agent process (a DaemonSet): common/src/run-daemon.ts gives it `--help`, flags, signals and errors. */
import { runDaemon } from '@cryo/common';
import { nodeAgentOptionSpecs, readNodeAgentConfig } from './config.ts';
import { startNodeAgent } from './node-agent.ts';

await runDaemon({ name: 'cryo-node-agent', specs: nodeAgentOptionSpecs, readConfig: readNodeAgentConfig, start: startNodeAgent });
