import { verbsAvailable } from '../../src/index.js';

/**
 * These suites need a real verbs device (rxe0 in the Soft-RoCE VM). Run anywhere else (FFNET_RDMA_SUITE=1 on a
 * host without RDMA) they fail at once with the reason, instead of with a confusing error deep in a test.
 */
export function requireVerbsDevice(): void {
  const a = verbsAvailable();
  if (!a.available) {
    throw new Error(`the verbs suites need an RDMA device (${a.reason}: ${a.detail}); run them in the Soft-RoCE VM with: pnpm test:rdma`);
  }
}
