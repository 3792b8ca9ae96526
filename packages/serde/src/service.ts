import { InvalidArgError } from './errors.js';
import type { Infer, Schema } from './schema/types.js';

declare const requestType: unique symbol;
declare const responseType: unique symbol;

/**
 * One RPC method: its numeric id on the wire, plus the request and response types as compile-time
 * carriers (the two symbol keys never exist at run time). Write `method<Req, Rsp>(1)`, or a plain
 * `{ id: 1 }` for a method whose types are `unknown`.
 */
export interface MethodDef<Req = unknown, Rsp = unknown> {
  readonly id: number;
  /** Request schema: checked with `validate` and used by the 3fs envelope. Undefined for a types-only method. */
  readonly request?: Schema<Req> | undefined;
  /** Response schema (the `T` of `Result<T>` in 3fs mode). */
  readonly response?: Schema<Rsp> | undefined;
  readonly [requestType]?: Req;
  readonly [responseType]?: Rsp;
}

/** A method as it appears in a defined service: frozen, and knowing its own name. */
export interface MethodInfo<Req = unknown, Rsp = unknown> extends MethodDef<Req, Rsp> {
  readonly name: string;
}

export type MethodDefs = Record<string, MethodDef<unknown, unknown>>;

type ReqOf<D> = D extends MethodDef<infer R, unknown> ? R : never;
type RspOf<D> = D extends MethodDef<unknown, infer R> ? R : never;

export interface ServiceDef<M extends MethodDefs = MethodDefs> {
  readonly name: string;
  /** Service id on the wire (u16). */
  readonly id: number;
  readonly methods: { readonly [K in keyof M]: MethodInfo<ReqOf<M[K]>, RspOf<M[K]>> & { readonly name: K } };
  /** The method with this wire id, for dispatching a received request. */
  methodById(id: number): MethodInfo | undefined;
}

export interface ServiceSpec<M extends MethodDefs> {
  name: string;
  id: number;
  methods: M;
}

/** Names of a service's methods. */
export type MethodNames<S extends ServiceDef> = keyof S['methods'] & string;
/** Request type of method `M` of service `S`. */
export type RequestOf<S extends ServiceDef, M extends MethodNames<S>> = ReqOf<S['methods'][M]>;
/** Response type of method `M` of service `S`. */
export type ResponseOf<S extends ServiceDef, M extends MethodNames<S>> = RspOf<S['methods'][M]>;

export interface MethodSchemas<Q extends Schema, P extends Schema> {
  request: Q;
  response: P;
}

/**
 * A method definition: `method<EchoReq, EchoRsp>(1)` for compile-time types only, or
 * `method(1, { request: s.struct(...), response: ... })`, whose types are inferred from the schemas and whose
 * schemas stay on the defined method as `.request` / `.response`.
 */
export function method<Q extends Schema, P extends Schema>(id: number, schemas: MethodSchemas<Q, P>): MethodDef<Infer<Q>, Infer<P>>;
export function method<Req = unknown, Rsp = unknown>(id: number): MethodDef<Req, Rsp>;
export function method(id: number, schemas?: MethodSchemas<Schema, Schema>): MethodDef {
  if (schemas === undefined) return { id };
  const { request, response } = schemas;
  if (!isSchema(request) || !isSchema(response)) throw new InvalidArgError(`method ${id}: request and response must both be schemas`);
  return { id, request, response };
}

function isSchema(v: unknown): v is Schema {
  return typeof v === 'object' && v !== null && typeof (v as { kind?: unknown }).kind === 'string';
}

function isU16(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffff;
}

/**
 * Define a service once and share the definition between client and server. Ids are u16 as on the
 * wire; a method id may appear once per service. The result and its methods are frozen.
 */
export function defineService<M extends MethodDefs>(spec: ServiceSpec<M>): ServiceDef<M> {
  const { name, id, methods } = spec;
  if (typeof name !== 'string' || name.length === 0) throw new InvalidArgError('a service needs a non-empty name');
  if (!isU16(id)) throw new InvalidArgError(`service ${name}: id ${String(id)} is not an integer in 0..65535`);
  if (typeof methods !== 'object' || methods === null) throw new InvalidArgError(`service ${name}: methods must be an object`);
  const byId = new Map<number, MethodInfo>();
  const out: Record<string, MethodInfo> = {};
  for (const key of Object.keys(methods)) {
    const mid: unknown = methods[key]?.id;
    if (!isU16(mid)) throw new InvalidArgError(`service ${name}: method ${key} id ${String(mid)} is not an integer in 0..65535`);
    const clash = byId.get(mid);
    if (clash) throw new InvalidArgError(`service ${name}: methods ${clash.name} and ${key} both have id ${mid}`);
    const def = methods[key] as MethodDef;
    const info: MethodInfo = Object.freeze({ id: mid, name: key, request: def.request, response: def.response });
    byId.set(mid, info);
    out[key] = info;
  }
  return Object.freeze({
    name,
    id,
    methods: Object.freeze(out) as ServiceDef<M>['methods'],
    methodById: (mid: number) => byId.get(mid),
  });
}
