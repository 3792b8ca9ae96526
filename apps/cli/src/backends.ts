import { rdma } from '@ffnet/rdma';
import { type Backend, tcp, unix } from '@ffnet/transport';

/** The CLI dials and serves every scheme: rdma() only touches libibverbs when an rdma:// address is used. */
export function allBackends(): readonly Backend[] {
  return [tcp(), unix(), rdma()];
}
