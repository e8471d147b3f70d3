// Vitest configuration: unit tests next to the code, cross-cutting tests in test/.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'connectors/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    env: { ALLOW_PRIVATE_HOSTS: 'true', LOG_LEVEL: 'silent' },
  },
});
