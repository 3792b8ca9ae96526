// The built-in services of a group with envelope '3fs', as 3FS serves them: serde's echo service (10000) and
// Core (10001) with its echo. ffnet's Echo and Core take msgpack values with no schema; these carry 3FS's own
// structs, so a 3FS process (or `peer call`) can reach them. Core's other methods are not offered over 3fs
// (their 3FS schemas live with the generated 3FS services): a call to one is answered kInvalidMethodID (2009).
import { defineService, type Infer, method, s } from '@ffnet/serde';
import { implement, type Service } from './service.js';

/** 3FS's `serde::echo::Message`. */
export const EchoMessage3fs = s.struct('hf3fs::serde::echo::Message', { str: s.string });
/** 3FS's `core::EchoMessage`. */
export const CoreEchoMessage3fs = s.struct('hf3fs::core::EchoMessage', { str: s.string });

export const EchoService3fs = defineService({
  name: 'Echo',
  id: 10000,
  methods: { echo: method(1, { request: EchoMessage3fs, response: EchoMessage3fs }) },
});

export const CoreService3fs = defineService({
  name: 'Core',
  id: 10001,
  methods: { echo: method(1, { request: CoreEchoMessage3fs, response: CoreEchoMessage3fs }) },
});

export const echoService3fs: Service<typeof EchoService3fs> = implement(EchoService3fs, {
  echo: (_ctx, req: Infer<typeof EchoMessage3fs>) => ({ str: req.str }),
});

export const coreService3fs: Service<typeof CoreService3fs> = implement(CoreService3fs, {
  echo: (_ctx, req: Infer<typeof CoreEchoMessage3fs>) => ({ str: req.str }),
});
