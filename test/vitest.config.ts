import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    root: new URL('..', import.meta.url).pathname,
    include: ['test/unit/**/*.test.ts', 'test/integration/**/*.test.ts'],
    // Guests are real QEMU processes on a 2-core machine: one test file at a time.
    fileParallelism: false,
    // Generous: on a fresh machine the first test to boot a guest also fetches the kernel and probes KVM.
    testTimeout: 240_000,
    hookTimeout: 600_000,
    reporters: ['default', 'json'],
    // Read by .ci/run to print a plain 'N passed, N failed' closing line.
    outputFile: { json: 'test-results/vitest.json' },
  },
});
