// `node --import ./testing/minified.mjs --test test/` runs the suite against a minified build of src/:
// the same esbuild settings as the shipped IIFE (private members renamed), in ESM form so that the tests
// can import it. Every import of a src/ module resolves to that one build.
import { mkdtempSync, writeFileSync } from "node:fs";
import { register } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { bundle, iife } from "../scripts/build.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const outfile = join(mkdtempSync(join(tmpdir(), "gateway-min-")), "gateway.min.mjs");
const { entryPoints, ...settings } = iife;
const { code, result } = await bundle({ ...settings, format: "esm", entryPoints: [join(here, "all.js")], mangleCache: {} }, outfile, { module: true });
writeFileSync(outfile, code);

/** The minified names of private members, for the few tests that look at one (see testing/private.js). */
globalThis.gatewayMangled = result.mangleCache;

register("./minified-hooks.mjs", import.meta.url, {
  data: { src: pathToFileURL(join(here, "..", "src")).href + "/", bundle: pathToFileURL(outfile).href },
});
