/** The webhook process as it starts: the entry point run as a child process. */
import { describe } from 'vitest';
import { itExitsWithoutACluster } from '@cryo/test';

describe('webhook/src/main.ts', () => {
  itExitsWithoutACluster('webhook/src/main.ts');
});
