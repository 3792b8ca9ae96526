// ffnet as a user with Prometheus runs it: @ffnet/prometheus on both sides, each with its own prom-client
// registry, read once a second as a scrape would (more often than Prometheus's usual 15 s, to count the reading
// too). Everything else is the ffnet peer.
import { prometheusMetrics } from '@ffnet/prometheus';
import { Registry } from 'prom-client';
import { ffnetPeer } from './ffnet.js';

const SCRAPE_MS = 1000;

export const peer = ffnetPeer('ffnet+prom', () => {
  const registry = new Registry();
  const timer = setInterval(() => {
    registry.metrics().catch(() => undefined);
  }, SCRAPE_MS);
  timer.unref();
  return { metrics: prometheusMetrics({ registry }), stop: () => clearInterval(timer) };
});
