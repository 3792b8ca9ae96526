// The transport compliance suite, unchanged, over the verbs backend (runs in the Soft-RoCE VM: pnpm test:rdma).
// Listeners bind TCP on the VM's 10.0.2.15 for the IBConnect handshake; both ends' QPs live on rxe0, whose GID
// (::ffff:10.0.2.15) rxe loops back locally.
import { IBManager } from '@ffnet/device';
import { type Address, rdmaAddress } from '@ffnet/transport';
import { beforeAll, describe } from 'vitest';
import { transportCompliance } from '../../../transport/test/compliance.js';
import { rdma } from '../../src/index.js';

const HOST = process.env.FFNET_RDMA_HOST ?? '10.0.2.15';

describe('rdma', () => {
  beforeAll(() => {
    IBManager.start();
  });
  // Emulated (TCG) rxe moves data far slower than loopback TCP, and slower still on a shared, loaded host (the 1000
  // connections case took 73-100 s alone, 240+ s at a load average of 11): more time per case, the same checks.
  transportCompliance(rdma(), { address: (): Address => rdmaAddress(HOST, 0), timeoutScale: 8 });
});
