// Builds dist/ (IIFE global `Gateway`, ESM, .d.ts; the same for the optional MessagePack and job view entries) and copies
// the IIFEs to the server's static folder.
// Usage: node scripts/build.mjs [outdir] [static-dir]; test/dist.test.js builds into a temp dir.
import { build } from "esbuild";
import { minify } from "terser";
import { copyFile, mkdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const src = (name) => join(root, "src", name);
// No banner: every byte of the IIFE counts against its budget (the license is in package.json).
const common = { entryPoints: [src("index.js")], bundle: true, target: "es2020", logLevel: "warning" };

// Members no page reaches through the global (a leading underscore, and the internals of the classes it
// does not expose) get short names too: the IIFE is what every page downloads.
const INTERNAL = ["options", "connection", "stopped", "binary", "onreceive", "resumeQuery", "token", "stateful", "deliver", "hard", "ondrop", "url", "pooled", "drop", "sent", "enabled", "latest", "unacked"];
const mangleProps = new RegExp(`^(_.*|${INTERNAL.join("|")})$`);

/** esbuild options of the IIFE that pages load with a <script> tag: it sets the global `Gateway`. */
export const iife = { ...common, entryPoints: [src("global.js")], format: "iife", minify: true, mangleProps };

/** The MessagePack entry's IIFE: it adds `Gateway.MessagePackHubProtocol` to the core's global. */
export const msgpackIife = { ...iife, entryPoints: [src("msgpack-entry.js")] };

/** The trace entry's IIFE: it adds `Gateway.traced` (invocations carrying the page's trace context). */
export const traceIife = { ...iife, entryPoints: [src("trace-entry.js")] };
/** The job view's IIFE (<gateway-job>): it uses the core's global, so only its own underscored members are renamed. */
export const jobIife = { ...common, entryPoints: [src("job-entry.js")], format: "iife", minify: true, mangleProps: /^_/ };
/**
 * The shared-mode entry (load it after the core): replaces `Gateway.HubConnection` with a subclass that
 * honours {shared: true}. Its leader-tab handover reads the core's private members, so it is built with the
 * core's table of renamed members (`coreRenames`): the same source name gets the same short name.
 */
export const sharedIife = { ...iife, entryPoints: [src("shared-entry.js")], coreRenames: true };

/** The SharedWorker script: the core client and the host that multiplexes the tabs over it, in one file. */
export const workerIife = { ...iife, entryPoints: [src("worker-entry.js")] };

// terser after esbuild: more compress passes find what one esbuild pass leaves (about 150 bytes gzipped of
// the core). Property names are already mangled by esbuild (mangleProps), so terser keeps them.
const TERSER = { ecma: 2020, compress: { passes: 3, unsafe_arrows: true, pure_getters: true, unsafe: true }, mangle: true };

/** The code of one output: esbuild's bundle, then terser for the minified ones. */
export async function bundle({ coreRenames, ...options }, outfile, terserOptions = {}) {
  if (coreRenames) options.mangleCache = await renames();
  const result = await build({ ...options, write: false, outfile });
  const code = result.outputFiles[0].text;
  return { code: options.minify ? (await minify(code, { ...TERSER, ...terserOptions })).code : code, result };
}

/** The core IIFE's renames of private members: {sourceName: shortName}. */
async function renames() {
  const result = await build({ ...iife, write: false, outfile: "gateway.js", mangleCache: {} });
  return result.mangleCache;
}

/** The files of dist/, each with the esbuild options that make it (or the src/ file it is a copy of). */
export const OUTPUTS = {
  "gateway.js": iife,
  "gateway.mjs": { ...common, format: "esm" },
  "gateway.msgpack.js": msgpackIife,
  "gateway.msgpack.mjs": { ...common, entryPoints: [src("msgpack.js")], format: "esm" },
  "gateway.trace.js": traceIife,
  "gateway.trace.mjs": { ...common, entryPoints: [src("trace.js")], format: "esm" },
  "gateway.shared.js": sharedIife,
  "gateway.shared.mjs": { ...common, entryPoints: [src("shared/index.js")], format: "esm" },
  "gateway.worker.js": workerIife,
  "gateway.shared.d.ts": "shared.d.ts",
  "gateway.d.ts": "gateway.d.ts",
  "gateway.msgpack.d.ts": "msgpack.d.ts",
  "gateway.trace.d.ts": "trace.d.ts",
  "gateway.job.js": jobIife,
  "gateway.job.mjs": { ...common, entryPoints: [src("job-element.js")], format: "esm" },
  "gateway.job.d.ts": "job.d.ts",
};

/** The IIFEs the server serves, copied into gateway/static/. */
export const STATIC = ["gateway.js", "gateway.msgpack.js", "gateway.trace.js", "gateway.job.js", "gateway.shared.js", "gateway.worker.js"];

export async function buildAll(outdir = join(root, "dist"), staticDir = join(root, "..", "gateway", "static")) {
  await mkdir(outdir, { recursive: true });
  for (const [name, options] of Object.entries(OUTPUTS)) {
    if (typeof options == "string") await copyFile(src(options), join(outdir, name));
    else await writeFile(join(outdir, name), (await bundle(options, join(outdir, name))).code);
  }
  await mkdir(staticDir, { recursive: true });
  for (const name of STATIC) await copyFile(join(outdir, name), join(staticDir, name));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await buildAll(process.argv[2], process.argv[3]);
}
