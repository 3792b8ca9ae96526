// The 3FS services and their schemas, generated from the kit (src/generated), plus the few facts the schemas do not
// carry (Storage's feature flag bits).
export * from './generated/schemas.js';
export * from './generated/services.js';
export { FeatureFlags, fromInlineBuf, hasFeature, toInlineBuf } from './storage.js';
