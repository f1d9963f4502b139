import { build } from "esbuild";
import { gzipSync } from "node:zlib";
import { iife } from "./build.mjs";
const r = await build({ ...iife, banner: {js: process.argv[2] || ""}, write: false, outfile: "x.js" });
const c = r.outputFiles[0].contents;
console.log(c.length, gzipSync(c, { level: 9 }).length);
