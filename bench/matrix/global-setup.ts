// Starts the Vite dev server (test/support/browser.ts: 127.0.0.1, a secure context; no watcher,
// no HMR) on an ephemeral port for this Playwright process, so shards running in parallel on one
// machine never compete for a port. Workers read the URL from BENCH_BASE_URL (Playwright passes
// the environment globalSetup leaves to the workers it starts afterwards).
import { startDevServer } from '../../test/support/browser.ts';

export default async function globalSetup(): Promise<() => Promise<void>> {
  const { server, baseUrl } = await startDevServer('warn');
  process.env.BENCH_BASE_URL = baseUrl;
  return () => server.close();
}
