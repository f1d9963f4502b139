// Prints the min+gzip size of the IIFE bundle, the figure the client's size budget is about.
import { build } from "esbuild";
import { gzipSync } from "node:zlib";
import { iife } from "./build.mjs";

const result = await build({ ...iife, write: false, outfile: "gateway.min.js" });
const code = result.outputFiles[0].contents;
const gz = gzipSync(code, { level: 9 }).length;
console.log(`gateway.js: ${code.length} bytes minified, ${gz} bytes min+gzip (budget 6144)`);
