// Status codes live in @ffnet/common; re-exported for serde's files and its public index.
export { StatusCode, statusName, type StatusCodeName, type StatusCodeValue } from '@ffnet/common';
