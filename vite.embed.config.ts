// Vite library build of the script-tag bundle (`npm run build` runs it after the pages):
// src/embed.ts -> dist/forkwise.iife.js, a classic script that defines the global `forkwise`
// (the API of src/index.ts) and the <forkwise-generate> element; plus dist/forkwise.js (ESM).
// `.wgsl?raw` imports are inlined as strings, so the bundle is self-contained.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const root = dirname(fileURLToPath(import.meta.url));

export default defineConfig({
  root,
  publicDir: false, // the models stay out of the bundle's folder
  build: {
    outDir: join(root, 'dist'),
    emptyOutDir: false, // dist/ also holds the built pages (vite.config.ts)
    target: 'es2022',
    sourcemap: true,
    lib: {
      entry: join(root, 'src', 'embed.ts'),
      name: 'forkwise',
      formats: ['iife', 'es'],
      fileName: (format) => (format === 'iife' ? 'forkwise.iife.js' : 'forkwise.js'),
    },
  },
});
