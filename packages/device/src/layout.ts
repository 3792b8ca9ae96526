/**
 * Every struct size, field offset and enum value the binding relies on (x86-64, rdma-core ≥ 44), in one table.
 * Nothing else in the package hard-codes an offset: the code reads `S.<struct>.<field>`, and
 * test/layout.spec.ts compiles test/fixtures/verbs-layout.c against the installed <infiniband/verbs.h> and
 * compares this whole table with what gcc says, so a header change cannot silently shift a field.
 */

/** Struct layouts: `size` plus the byte offset of each field (dotted C paths for nested members). */
export const S = {
  ibv_context: { size: 328, device: 0, ops: 8, cmd_fd: 264, async_fd: 268, num_comp_vectors: 272, abi_compat: 320 },
  ibv_pd: { size: 16, context: 0, handle: 8 },
  ibv_mw: { size: 32, context: 0, pd: 8, rkey: 16, handle: 20, type: 24 },
  ibv_mr: { size: 48, context: 0, pd: 8, addr: 16, length: 24, handle: 32, lkey: 36, rkey: 40 },
  ibv_comp_channel: { size: 16, context: 0, fd: 8, refcnt: 12 },
  ibv_cq: { size: 128, context: 0, channel: 8, cq_context: 16, handle: 24, cqe: 28 },
  ibv_qp: { size: 160, context: 0, qp_context: 8, pd: 16, send_cq: 24, recv_cq: 32, srq: 40, handle: 48, qp_num: 52, state: 56, qp_type: 60 },
  ibv_sge: { size: 16, addr: 0, length: 8, lkey: 12 },
  ibv_send_wr: {
    size: 128,
    wr_id: 0,
    next: 8,
    sg_list: 16,
    num_sge: 24,
    opcode: 28,
    send_flags: 32,
    imm_data: 36,
    invalidate_rkey: 36,
    'wr.rdma.remote_addr': 40,
    'wr.rdma.rkey': 48,
    'wr.atomic.remote_addr': 40,
    'wr.atomic.compare_add': 48,
    'wr.atomic.swap': 56,
    'wr.atomic.rkey': 64,
    'bind_mw.mw': 80,
    'bind_mw.rkey': 88,
    'bind_mw.bind_info.mr': 96,
    'bind_mw.bind_info.addr': 104,
    'bind_mw.bind_info.length': 112,
    'bind_mw.bind_info.mw_access_flags': 120,
  },
  ibv_recv_wr: { size: 32, wr_id: 0, next: 8, sg_list: 16, num_sge: 24 },
  ibv_wc: {
    size: 48,
    wr_id: 0,
    status: 8,
    opcode: 12,
    vendor_err: 16,
    byte_len: 20,
    imm_data: 24,
    invalidated_rkey: 24,
    qp_num: 28,
    src_qp: 32,
    wc_flags: 36,
    pkey_index: 40,
    slid: 42,
    sl: 44,
    dlid_path_bits: 45,
  },
  ibv_qp_cap: { size: 20, max_send_wr: 0, max_recv_wr: 4, max_send_sge: 8, max_recv_sge: 12, max_inline_data: 16 },
  ibv_qp_init_attr: {
    size: 64,
    qp_context: 0,
    send_cq: 8,
    recv_cq: 16,
    srq: 24,
    'cap.max_send_wr': 32,
    'cap.max_recv_wr': 36,
    'cap.max_send_sge': 40,
    'cap.max_recv_sge': 44,
    'cap.max_inline_data': 48,
    qp_type: 52,
    sq_sig_all: 56,
  },
  ibv_qp_attr: {
    size: 144,
    qp_state: 0,
    cur_qp_state: 4,
    path_mtu: 8,
    path_mig_state: 12,
    qkey: 16,
    rq_psn: 20,
    sq_psn: 24,
    dest_qp_num: 28,
    qp_access_flags: 32,
    'cap.max_send_wr': 36,
    'cap.max_recv_wr': 40,
    'cap.max_send_sge': 44,
    'cap.max_recv_sge': 48,
    'cap.max_inline_data': 52,
    'ah_attr.grh.dgid': 56,
    'ah_attr.grh.flow_label': 72,
    'ah_attr.grh.sgid_index': 76,
    'ah_attr.grh.hop_limit': 77,
    'ah_attr.grh.traffic_class': 78,
    'ah_attr.dlid': 80,
    'ah_attr.sl': 82,
    'ah_attr.src_path_bits': 83,
    'ah_attr.static_rate': 84,
    'ah_attr.is_global': 85,
    'ah_attr.port_num': 86,
    pkey_index: 120,
    max_rd_atomic: 126,
    max_dest_rd_atomic: 127,
    min_rnr_timer: 128,
    port_num: 129,
    timeout: 130,
    retry_cnt: 131,
    rnr_retry: 132,
  },
  ibv_port_attr: {
    size: 52,
    state: 0,
    max_mtu: 4,
    active_mtu: 8,
    gid_tbl_len: 12,
    port_cap_flags: 16,
    max_msg_sz: 20,
    pkey_tbl_len: 32,
    lid: 34,
    sm_lid: 36,
    lmc: 38,
    active_width: 43,
    active_speed: 44,
    phys_state: 45,
    link_layer: 46,
  },
  ibv_device_attr: {
    size: 232,
    fw_ver: 0,
    node_guid: 64,
    sys_image_guid: 72,
    max_mr_size: 80,
    vendor_id: 96,
    vendor_part_id: 100,
    hw_ver: 104,
    max_qp: 108,
    max_qp_wr: 112,
    device_cap_flags: 116,
    max_sge: 120,
    max_cq: 128,
    max_cqe: 132,
    max_mr: 136,
    max_pd: 140,
    max_qp_rd_atom: 144,
    max_qp_init_rd_atom: 156,
    phys_port_cnt: 227,
  },
  ibv_gid_entry: { size: 32, gid: 0, gid_index: 16, port_num: 20, gid_type: 24, ndev_ifindex: 28 },
  ibv_async_event: { size: 16, element: 0, event_type: 8 },
} as const;

/**
 * The inline verbs (`ibv_post_send` & co. are static inline in verbs.h) jump through `ctx->ops`. These are the
 * offsets of those function pointers from the `struct ibv_context *` itself (= offsetof(ops) + offsetof(op)).
 */
export const OPS = { alloc_mw: 64, dealloc_mw: 80, poll_cq: 96, req_notify_cq: 104, post_srq_recv: 168, post_send: 208, post_recv: 216 } as const;

/**
 * The compat `ibv_query_port` export fills only the first 48 bytes (no port_cap_flags2); the buffer we pass
 * is still the full struct so a newer library writing more cannot overrun it.
 */
export const PORT_ATTR_COMPAT_SIZE = 48;

/** `struct ibv_send_wr.opcode`. */
export const WrOpcode = {
  RDMA_WRITE: 0,
  RDMA_WRITE_WITH_IMM: 1,
  SEND: 2,
  SEND_WITH_IMM: 3,
  RDMA_READ: 4,
  ATOMIC_CMP_AND_SWP: 5,
  ATOMIC_FETCH_AND_ADD: 6,
  LOCAL_INV: 7,
  BIND_MW: 8,
  SEND_WITH_INV: 9,
} as const;
export type WrOpcode = (typeof WrOpcode)[keyof typeof WrOpcode];

/** `struct ibv_wc.opcode`. Receive completions have bit 0x80 set. */
export const WcOpcode = {
  SEND: 0,
  RDMA_WRITE: 1,
  RDMA_READ: 2,
  COMP_SWAP: 3,
  FETCH_ADD: 4,
  BIND_MW: 5,
  LOCAL_INV: 6,
  RECV: 128,
  RECV_RDMA_WITH_IMM: 129,
} as const;
export type WcOpcode = (typeof WcOpcode)[keyof typeof WcOpcode];

/** `struct ibv_wc.status`. */
export const WcStatus = {
  SUCCESS: 0,
  LOC_LEN_ERR: 1,
  LOC_QP_OP_ERR: 2,
  LOC_EEC_OP_ERR: 3,
  LOC_PROT_ERR: 4,
  WR_FLUSH_ERR: 5,
  MW_BIND_ERR: 6,
  BAD_RESP_ERR: 7,
  LOC_ACCESS_ERR: 8,
  REM_INV_REQ_ERR: 9,
  REM_ACCESS_ERR: 10,
  REM_OP_ERR: 11,
  RETRY_EXC_ERR: 12,
  RNR_RETRY_EXC_ERR: 13,
  LOC_RDD_VIOL_ERR: 14,
  REM_INV_RD_REQ_ERR: 15,
  REM_ABORT_ERR: 16,
  INV_EECN_ERR: 17,
  INV_EEC_STATE_ERR: 18,
  FATAL_ERR: 19,
  RESP_TIMEOUT_ERR: 20,
  GENERAL_ERR: 21,
} as const;
export type WcStatus = (typeof WcStatus)[keyof typeof WcStatus];

/** `struct ibv_wc.wc_flags` bits. */
export const WcFlags = { GRH: 1, WITH_IMM: 2, IP_CSUM_OK: 4, WITH_INV: 8 } as const;

/** `struct ibv_send_wr.send_flags` bits. */
export const SendFlags = { FENCE: 1, SIGNALED: 2, SOLICITED: 4, INLINE: 8 } as const;

/** Memory-region and QP access bits. RELAXED_ORDERING is an "optional" bit: only `ibv_reg_mr_iova2` accepts it. */
export const Access = {
  LOCAL_WRITE: 1,
  REMOTE_WRITE: 2,
  REMOTE_READ: 4,
  REMOTE_ATOMIC: 8,
  MW_BIND: 16,
  ZERO_BASED: 32,
  ON_DEMAND: 64,
  HUGETLB: 128,
  RELAXED_ORDERING: 0x100000,
} as const;

/** `enum ibv_mw_type`. Type 2 windows are bound by a BIND_MW work request and usable only through that QP. */
export const MwType = { TYPE_1: 1, TYPE_2: 2 } as const;
export type MwType = (typeof MwType)[keyof typeof MwType];

export const QpState = { RESET: 0, INIT: 1, RTR: 2, RTS: 3, SQD: 4, SQE: 5, ERR: 6, UNKNOWN: 7 } as const;
export type QpState = (typeof QpState)[keyof typeof QpState];

/** `ibv_modify_qp` attribute mask bits (internal: QueuePair's helpers pick them). */
export const QpAttrMask = {
  STATE: 0x1,
  CUR_STATE: 0x2,
  ACCESS_FLAGS: 0x8,
  PKEY_INDEX: 0x10,
  PORT: 0x20,
  QKEY: 0x40,
  AV: 0x80,
  PATH_MTU: 0x100,
  TIMEOUT: 0x200,
  RETRY_CNT: 0x400,
  RNR_RETRY: 0x800,
  RQ_PSN: 0x1000,
  MAX_QP_RD_ATOMIC: 0x2000,
  MIN_RNR_TIMER: 0x8000,
  SQ_PSN: 0x10000,
  MAX_DEST_RD_ATOMIC: 0x20000,
  CAP: 0x80000,
  DEST_QPN: 0x100000,
} as const;

/** `enum ibv_mtu`: 1..5 = 256..4096 bytes. */
export const Mtu = { MTU_256: 1, MTU_512: 2, MTU_1024: 3, MTU_2048: 4, MTU_4096: 5 } as const;
export type Mtu = (typeof Mtu)[keyof typeof Mtu];

export const QpType = { RC: 2, UC: 3, UD: 4 } as const;
export type QpType = (typeof QpType)[keyof typeof QpType];

export const LinkLayer = { UNSPECIFIED: 0, INFINIBAND: 1, ETHERNET: 2 } as const;
export type LinkLayer = (typeof LinkLayer)[keyof typeof LinkLayer];

export const PortState = { NOP: 0, DOWN: 1, INIT: 2, ARMED: 3, ACTIVE: 4, ACTIVE_DEFER: 5 } as const;
export type PortState = (typeof PortState)[keyof typeof PortState];

export const GidType = { IB: 0, ROCE_V1: 1, ROCE_V2: 2 } as const;
export type GidType = (typeof GidType)[keyof typeof GidType];

/** `enum ibv_event_type` (async events on the context's async fd). */
export const AsyncEventType = {
  CQ_ERR: 0,
  QP_FATAL: 1,
  QP_REQ_ERR: 2,
  QP_ACCESS_ERR: 3,
  COMM_EST: 4,
  SQ_DRAINED: 5,
  PATH_MIG: 6,
  PATH_MIG_ERR: 7,
  DEVICE_FATAL: 8,
  PORT_ACTIVE: 9,
  PORT_ERR: 10,
  LID_CHANGE: 11,
  PKEY_CHANGE: 12,
  SM_CHANGE: 13,
  SRQ_ERR: 14,
  SRQ_LIMIT_REACHED: 15,
  QP_LAST_WQE_REACHED: 16,
  CLIENT_REREGISTER: 17,
  GID_CHANGE: 18,
} as const;
export type AsyncEventType = (typeof AsyncEventType)[keyof typeof AsyncEventType];

/** How each enum maps to its C spelling: the layout test prints `<prefix><KEY>` from verbs.h for every key. */
export const ENUM_PREFIXES: ReadonlyArray<readonly [string, Readonly<Record<string, number>>]> = [
  ['IBV_WR_', WrOpcode],
  ['IBV_WC_', WcOpcode],
  ['IBV_WC_', WcStatus],
  ['IBV_WC_', WcFlags],
  ['IBV_SEND_', SendFlags],
  ['IBV_ACCESS_', Access],
  ['IBV_QPS_', QpState],
  ['IBV_QP_', QpAttrMask],
  ['IBV_', Mtu],
  ['IBV_QPT_', QpType],
  ['IBV_MW_', MwType],
  ['IBV_LINK_LAYER_', LinkLayer],
  ['IBV_PORT_', PortState],
  ['IBV_GID_TYPE_', GidType],
  ['IBV_EVENT_', AsyncEventType],
];

/** Inverse lookup for diagnostics: `enumName(WcStatus, 10)` → `"REM_ACCESS_ERR"`. */
export function enumName(table: Readonly<Record<string, number>>, value: number): string {
  for (const k in table) if (table[k] === value) return k;
  return `UNKNOWN(${value})`;
}

/** 256 << (mtu - 1) for a valid `enum ibv_mtu`. */
export function mtuBytes(mtu: number): number {
  return mtu >= 1 && mtu <= 5 ? 128 << mtu : 0;
}
