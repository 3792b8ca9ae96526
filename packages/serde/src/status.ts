// Status codes live in @ffnet/common; re-exported for serde's files and its public index.
export { StatusCode, type StatusCodeName, type StatusCodeValue, statusName } from '@ffnet/common';
