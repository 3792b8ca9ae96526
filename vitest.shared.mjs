// One test layout for every workspace package. Verbs suites live under test/rdma/ and need a real
// verbs device: `pnpm test` leaves them to `pnpm test:rdma`, which runs them inside the Soft-RoCE VM
// (FFNET_RDMA_SUITE=1 is set there) so no suite is silently skipped on a machine without RDMA.
export function shared(overrides = {}) {
  const rdma = process.env.FFNET_RDMA_SUITE === '1';
  return {
    test: {
      include: rdma ? ['test/rdma/**/*.spec.ts'] : ['test/**/*.spec.ts'],
      exclude: rdma ? ['**/node_modules/**'] : ['**/node_modules/**', 'test/rdma/**'],
      pool: 'forks',
      testTimeout: 30_000,
      hookTimeout: 30_000,
      passWithNoTests: false,
      ...overrides,
    },
  };
}
