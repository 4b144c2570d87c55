/**
 * The console is served by the control plane at /console/ (control-plane/src/console-assets.ts):
 * everything it loads is built here, nothing comes from a CDN at run time.
 */
import { defineConfig } from 'vite';

export default defineConfig({
  base: '/console/',
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  build: {
    outDir: 'dist/public',
    emptyOutDir: true,
    // The CSP allows no inline code: Vite's module preload polyfill and inlined assets would need it.
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    target: 'es2022',
    reportCompressedSize: false,
  },
  server: { proxy: { '/v1': 'http://127.0.0.1:8080', '/console/api': 'http://127.0.0.1:8080' } },
});
