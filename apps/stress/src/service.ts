import { defineService, method } from '@ffnet/serde';

/** The largest reply the test service's `bytes` method produces; larger asks are refused with InvalidArg. */
export const MAX_REPLY_BYTES = 1024 * 1024;

/** The service the stress server hosts next to the built-ins: a small echo, and a reply of N bytes. */
export const StressService = defineService({
  name: 'Stress',
  id: 900,
  methods: {
    echo: method<{ s: string }, { s: string }>(1),
    bytes: method<{ n: number }, Uint8Array>(2),
  },
});

export const ECHO_SERVICE_ID = 10000;
export const CORE_SERVICE_ID = 10001;
