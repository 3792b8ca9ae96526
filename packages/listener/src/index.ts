export { classifyInterface, type InterfaceKind } from './interfaces.js';
export {
  type AcceptCallback,
  type BoundAddress,
  Listener,
  type ListenerConfig,
  type ListenerNetworkType,
  nodeSupportsReusePort,
  type ResolvedListenerConfig,
} from './listener.js';
