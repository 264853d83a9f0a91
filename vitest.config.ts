import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['{common,webhook,node-agent,controller,hook-sdk,kubectl-cryo}/src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Two cores: servers under test and the tests themselves share them.
    maxWorkers: 2,
  },
});
