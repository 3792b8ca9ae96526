import { defineService, method } from '@ffnet/serde';

/** `RDMATransmissionReq`: the uuid of the request whose response data the server is about to RDMA-write. */
export interface RDMATransmissionReq {
  uuid: number;
}

/** 3FS's RDMAControl (id 10, apply = 1). Clients that opt in serve it; servers call it back on the request's connection. */
export const RDMAControlService = defineService({
  name: 'RDMAControl',
  id: 10,
  methods: {
    apply: method<RDMATransmissionReq, Record<string, never>>(1),
  },
});
