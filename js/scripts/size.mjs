// Prints the min+gzip size of the IIFE bundles: the core (the figure the client's size budget is about)
// and the optional entries (MessagePack, the job view).
import { build } from "esbuild";
import { gzipSync } from "node:zlib";
import { iife, jobIife, msgpackIife, traceIife } from "./build.mjs";

for (const [name, options, budget] of [["gateway.js", iife, " (budget 6144)"], ["gateway.msgpack.js", msgpackIife, ""], ["gateway.trace.js", traceIife, ""], ["gateway.job.js", jobIife, ""]]) {
  const result = await build({ ...options, write: false, outfile: name });
  const code = result.outputFiles[0].contents;
  const gz = gzipSync(code, { level: 9 }).length;
  console.log(`${name}: ${code.length} bytes minified, ${gz} bytes min+gzip${budget}`);
}
