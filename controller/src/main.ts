#!/usr/bin/env node
/**
 * The controller process (a Deployment of two, one leading): common/src/run-daemon.ts gives it
 * `--help`, flags, signals and errors. Stopping releases the Lease, so the other replica takes
 * over at once rather than after the lease duration.
 */
import { runDaemon } from '@cryo/common';
import { controllerOptionSpecs, readControllerConfig } from './config.ts';
import { startController } from './controller.ts';

await runDaemon({ name: 'cryo-controller', specs: controllerOptionSpecs, readConfig: readControllerConfig, start: startController });
