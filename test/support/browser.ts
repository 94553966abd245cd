// Browser harness for the Playwright tests and the benchmark runner: a Vite dev server on
// 127.0.0.1 (a secure context, so navigator.gpu exists) plus headless Debian Chromium with
// WebGPU enabled (SwiftShader on a machine without a GPU).
//
//   const session = await startBrowserSession();
//   const page = await session.newPage('/test/browser/pages/webgpu-smoke.html');
//   await waitForGlobal(page, 'runWebgpuSmoke');
//   const result = await page.evaluate(() => window.runWebgpuSmoke());
//   await session.close();
//
// Page console errors/warnings, uncaught page errors, failed requests and HTTP errors are
// forwarded to the Node test output (stderr); all but warnings are collected in `session.errors`.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { createServer, type ViteDevServer } from 'vite';

/** The project root (where vite.config.ts lives). */
export const PROJECT_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Chromium flags that give WebGPU on this kind of machine (Vulkan → SwiftShader without a GPU). */
export const CHROMIUM_ARGS: readonly string[] = [
  '--enable-unsafe-webgpu',
  '--enable-features=Vulkan',
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

export const DEFAULT_CHROMIUM_PATH = '/usr/bin/chromium';

export type ConsoleForwarding = 'errors' | 'all' | 'none';

export interface BrowserSessionOptions {
  /** Chromium binary; default $CHROMIUM_PATH or /usr/bin/chromium. */
  executablePath?: string;
  /** Default true. FORKWISE_HEADED=1 in the environment also turns it off (for debugging). */
  headless?: boolean;
  /** Extra Chromium flags, appended to CHROMIUM_ARGS. */
  extraArgs?: string[];
  /** Which page console messages reach stderr: 'errors' (errors and warnings, default), 'all', 'none'. */
  console?: ConsoleForwarding;
  /** Vite log level; default 'warn'. */
  logLevel?: 'error' | 'warn' | 'info' | 'silent';
  /** Milliseconds a navigation may take in newPage (default 60 s: first compiles are slow). */
  navigationTimeoutMs?: number;
}

export interface BrowserSession {
  /** e.g. http://127.0.0.1:41234 (no trailing slash). */
  baseUrl: string;
  browser: Browser;
  server: ViteDevServer;
  /** Every console error, uncaught page error, failed request, HTTP error status (favicon
   *  aside) and crash so far, as "[browser path] kind: message". Warnings are not included. */
  errors: string[];
  /** Opens `path` (relative to the project root, e.g. '/bench/pages/llama2c.html') in a fresh
   *  browser context and waits for its load event. */
  newPage(path: string): Promise<Page>;
  /** Closes every page, the browser and the dev server. Safe to call twice. */
  close(): Promise<void>;
}

/** Starts the dev server and Chromium (in parallel) and returns a session. */
export async function startBrowserSession(options: BrowserSessionOptions = {}): Promise<BrowserSession> {
  const executablePath = options.executablePath ?? process.env.CHROMIUM_PATH ?? DEFAULT_CHROMIUM_PATH;
  if (!existsSync(executablePath)) {
    throw new Error(
      `Chromium not found at ${executablePath}: install Debian's chromium (apt-get install chromium) ` +
        'or set CHROMIUM_PATH. Never run `npx playwright install` here.',
    );
  }
  const headless = options.headless ?? process.env.FORKWISE_HEADED !== '1';
  const forwarding = options.console ?? 'errors';

  const serverPromise = startDevServer(options.logLevel ?? 'warn');
  const browserPromise = chromium.launch({
    executablePath,
    headless,
    args: [...CHROMIUM_ARGS, ...(options.extraArgs ?? [])],
    // Playwright gives every launch a fresh temporary profile and removes it on close.
  });
  const [serverResult, browserResult] = await Promise.allSettled([serverPromise, browserPromise]);
  if (serverResult.status === 'rejected' || browserResult.status === 'rejected') {
    if (serverResult.status === 'fulfilled') await serverResult.value.server.close().catch(() => {});
    if (browserResult.status === 'fulfilled') await browserResult.value.close().catch(() => {});
    throw serverResult.status === 'rejected' ? serverResult.reason : (browserResult as PromiseRejectedResult).reason;
  }
  const { server, baseUrl } = serverResult.value;
  const browser = browserResult.value;

  const errors: string[] = [];
  const contexts = new Set<BrowserContext>();
  let closed = false;

  type Level = 'error' | 'warning' | 'info';
  const report = (path: string, kind: string, text: string, level: Level) => {
    const line = `[browser ${path}] ${kind}: ${text}`;
    if (level === 'error') errors.push(line);
    if (forwarding === 'all' || (forwarding === 'errors' && level !== 'info')) process.stderr.write(line + '\n');
  };

  async function newPage(path: string): Promise<Page> {
    if (closed) throw new Error('browser session is closed');
    const context = await browser.newContext();
    contexts.add(context);
    context.on('close', () => contexts.delete(context));
    // Functions passed to page.evaluate are compiled by tsx (esbuild keepNames), which wraps
    // named inner functions in __name(...); give the page a no-op __name so they run there.
    await context.addInitScript({ content: 'globalThis.__name ??= (fn) => fn;' });
    const page = await context.newPage();
    page.on('console', (msg) => {
      const type = msg.type();
      // Failed requests are reported below with their URL, which this message lacks.
      if (type === 'error' && msg.text().startsWith('Failed to load resource')) return;
      const level: Level = type === 'error' || type === 'assert' ? 'error' : type === 'warning' ? 'warning' : 'info';
      report(path, `console.${type}`, msg.text(), level);
    });
    page.on('pageerror', (err) => report(path, 'pageerror', err.stack ?? String(err), 'error'));
    page.on('response', (res) => {
      if (res.status() >= 400 && !res.url().endsWith('/favicon.ico')) {
        report(path, 'http', `${res.status()} ${res.request().method()} ${res.url()}`, 'error');
      }
    });
    page.on('requestfailed', (req) => {
      report(path, 'requestfailed', `${req.method()} ${req.url()}: ${req.failure()?.errorText ?? ''}`, 'error');
    });
    page.on('crash', () => report(path, 'crash', 'the page crashed', 'error'));
    page.on('close', () => void context.close().catch(() => {}));
    const url = new URL(path, baseUrl + '/').href;
    const response = await page.goto(url, { waitUntil: 'load', timeout: options.navigationTimeoutMs ?? 60_000 });
    if (!response || !response.ok()) {
      throw new Error(`GET ${url} -> ${response ? response.status() : 'no response'}`);
    }
    return page;
  }

  async function close(): Promise<void> {
    if (closed) return;
    closed = true;
    await Promise.allSettled([...contexts].map((c) => c.close()));
    await Promise.allSettled([browser.close(), server.close()]);
  }

  return { baseUrl, browser, server, errors, newPage, close };
}

/** The dev server alone, on an ephemeral port (also the bench matrix's globalSetup). */
export async function startDevServer(logLevel: NonNullable<BrowserSessionOptions['logLevel']>) {
  const server = await createServer({
    root: PROJECT_ROOT,
    configFile: join(PROJECT_ROOT, 'vite.config.ts'),
    logLevel,
    clearScreen: false,
    server: {
      host: '127.0.0.1',
      port: 0, // an ephemeral free port
      strictPort: true,
      // Other engineers edit the tree while tests run: no file watcher and no HMR, so a page
      // under test is never reloaded behind our back. (The websocket stays: Vite's client
      // always tries to connect and logs an error without it.)
      watch: null,
      hmr: false,
    },
    // No dependency pre-bundling scan (it crawls every HTML file at start-up and may trigger
    // a full reload when it discovers something). Pages that need an npm CJS dependency list
    // it in vite.config.ts `optimizeDeps.include`.
    optimizeDeps: { noDiscovery: true },
  });
  try {
    await server.listen();
  } catch (err) {
    await server.close().catch(() => {});
    throw err;
  }
  const address = server.httpServer?.address();
  if (!address || typeof address === 'string') throw new Error('vite dev server has no TCP address');
  return { server, baseUrl: `http://127.0.0.1:${address.port}` };
}

/** Waits until `window[name]` is defined in the page (module scripts may finish after `load`). */
export async function waitForGlobal(page: Page, name: string, timeoutMs = 60_000): Promise<void> {
  await page.waitForFunction((n) => (window as unknown as Record<string, unknown>)[n] !== undefined, name, {
    timeout: timeoutMs,
  });
}
