// Builds dist/ (IIFE global `Gateway`, ESM, .d.ts) and copies the IIFE to the server's static folder.
// Usage: node scripts/build.mjs [outdir] [static-copy]; test/dist.test.js builds into a temp dir.
import { build } from "esbuild";
import { copyFile, mkdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const entry = join(root, "src", "index.js");
const banner = { js: "/*! gateway browser client | MIT */" };
const common = { entryPoints: [entry], bundle: true, target: "es2020", banner, logLevel: "warning" };

/** esbuild options of the IIFE that pages load with a <script> tag. */
// Private members (a leading underscore) get short names too: the IIFE is what every page downloads.
export const iife = { ...common, format: "iife", globalName: "Gateway", minify: true, mangleProps: /^_/ };

export async function buildAll(outdir = join(root, "dist"), staticCopy = join(root, "..", "gateway", "static", "gateway.js")) {
  await mkdir(outdir, { recursive: true });
  await build({ ...iife, outfile: join(outdir, "gateway.js") });
  await build({ ...common, format: "esm", outfile: join(outdir, "gateway.mjs") });
  await copyFile(join(root, "src", "gateway.d.ts"), join(outdir, "gateway.d.ts"));
  await mkdir(dirname(staticCopy), { recursive: true });
  await copyFile(join(outdir, "gateway.js"), staticCopy);
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  await buildAll(process.argv[2], process.argv[3]);
}
