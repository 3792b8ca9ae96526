import type { Backend } from '@ffnet/transport';
import type { Waiter } from '@ffnet/worker';
import type { Service } from './service.js';

/**
 * What a backend may add to a Client that dials with it, beyond connections: services the client answers on its
 * own connections and flags on its requests. @ffnet/rdma's `rdma({ control })` brings RDMAControl this way, so
 * neither server nor worker knows about RDMA.
 */
export interface ClientExtension {
  /** OR-ed into the flags of every request of the client (e.g. ControlRDMA). */
  readonly requestFlags?: number;
  /** Services to answer on the client's connections; called once per Client, with its Waiter. */
  clientServices?(client: { readonly waiter: Waiter }): readonly Service[];
}

/** The ClientExtension side of a backend, if it has one. */
export function clientExtensionOf(b: Backend): ClientExtension | undefined {
  const e = b as Backend & ClientExtension;
  return e.requestFlags !== undefined || typeof e.clientServices === 'function' ? e : undefined;
}
