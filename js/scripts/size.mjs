// Prints the min+gzip size of the IIFE bundles: the core (the figure the client's size budget is about),
// the optional entries (MessagePack, trace context, the job view, shared mode) and the SharedWorker script.
import { gzipSync } from "node:zlib";
import { bundle, iife, jobIife, msgpackIife, sharedIife, traceIife, workerIife } from "./build.mjs";

const ENTRIES = [
  ["gateway.js", iife, " (budget 6144)"],
  ["gateway.msgpack.js", msgpackIife, ""],
  ["gateway.trace.js", traceIife, ""],
  ["gateway.job.js", jobIife, ""],
  ["gateway.shared.js", sharedIife, ""],
  ["gateway.worker.js", workerIife, ""],
];
for (const [name, options, budget] of ENTRIES) {
  const code = Buffer.from((await bundle(options, name)).code);
  const gz = gzipSync(code, { level: 9 }).length;
  console.log(`${name}: ${code.length} bytes minified, ${gz} bytes min+gzip${budget}`);
}
