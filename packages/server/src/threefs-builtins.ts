// The built-in services of a group with envelope '3fs', as 3FS serves them: serde's echo service (10000) and
// Core (10001) with its echo. Echo is ffnet's own (its schema is 3FS's struct). Core's other methods have no
// schemas in ffnet and are not offered over 3fs (their 3FS schemas live with the generated 3FS services): a call
// to one is answered kInvalidMethodID (2009).
import { defineService, type Infer, method } from '@ffnet/serde';
import { CoreEchoMessageSchema, EchoMessageSchema, EchoService, echoService } from './builtins.js';
import { implement, type Service } from './service.js';

/** 3FS's `serde::echo::Message` (the schema of ffnet's Echo). */
export const EchoMessage3fs = EchoMessageSchema;
/** 3FS's `core::EchoMessage` (the schema of ffnet's Core.echo). */
export const CoreEchoMessage3fs = CoreEchoMessageSchema;

/** ffnet's Echo, which serves both envelopes. */
export const EchoService3fs = EchoService;

export const CoreService3fs = defineService({
  name: 'Core',
  id: 10001,
  methods: { echo: method(1, { request: CoreEchoMessage3fs, response: CoreEchoMessage3fs }) },
});

export const echoService3fs: Service<typeof EchoService3fs> = echoService;

export const coreService3fs: Service<typeof CoreService3fs> = implement(CoreService3fs, {
  echo: (_ctx, req: Infer<typeof CoreEchoMessage3fs>) => ({ str: req.str }),
});
