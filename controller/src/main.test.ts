/** The controller process as it starts: the entry point run as a child process. */
import { describe } from 'vitest';
import { itExitsWithoutACluster } from '@cryo/test';

describe('controller/src/main.ts', () => {
  itExitsWithoutACluster('controller/src/main.ts');
});
