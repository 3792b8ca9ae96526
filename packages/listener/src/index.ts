export {
  Listener,
  nodeSupportsReusePort,
  type ListenerConfig,
  type ResolvedListenerConfig,
  type ListenerNetworkType,
  type BoundAddress,
  type AcceptCallback,
} from './listener.js';
export { classifyInterface, type InterfaceKind } from './interfaces.js';
