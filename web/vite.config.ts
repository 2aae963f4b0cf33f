import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

// The API serves dist/ at `/` (api/playground.py); `npm run dev` proxies /api to a `make run` API on :3003.
export default defineConfig({
  plugins: [react()],
  base: "/",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: false,
    chunkSizeWarningLimit: 6000,
    // Inline nothing as data: URLs that a script would load (the worker must be a file: CSP worker-src 'self').
    assetsInlineLimit: 0,
    // The bundler's timing report is noise in `make` output.
    rolldownOptions: { checks: { bundlerTimings: false } },
  },
  worker: { format: "es" },
  server: { proxy: { "/api": "http://127.0.0.1:3003" } },
});
