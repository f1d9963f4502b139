// dist/ and the copy the server serves must be exactly what a fresh build of src/ gives.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { buildAll } from "../scripts/build.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const FILES = ["gateway.js", "gateway.mjs", "gateway.d.ts"];

test("dist/ and gateway/static/gateway.js match a fresh build (run `npm run build`)", async () => {
  const tmp = await mkdtemp(join(tmpdir(), "gateway-dist-"));
  try {
    await buildAll(join(tmp, "dist"), join(tmp, "static", "gateway.js"));
    for (const name of FILES) {
      const fresh = await readFile(join(tmp, "dist", name), "utf8");
      const committed = await readFile(join(root, "dist", name), "utf8").catch(() => "(missing)");
      assert.ok(committed === fresh, `dist/${name} is stale: run \`npm run build\` in js/`);
    }
    const served = await readFile(join(root, "..", "gateway", "static", "gateway.js"), "utf8").catch(() => "(missing)");
    assert.ok(served === (await readFile(join(tmp, "dist", "gateway.js"), "utf8")), "gateway/static/gateway.js is stale: run `npm run build` in js/");
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
});

test("the IIFE defines the global Gateway with the public names", async () => {
  const code = await readFile(join(root, "dist", "gateway.js"), "utf8");
  const sandbox = {};
  new Function("globalThis", "window", `${code}; globalThis.Gateway = Gateway;`)(sandbox, sandbox);
  for (const name of ["HubConnection", "HubConnectionState", "TRANSPORTS", "WebSockets", "ServerSentEvents", "ForeverFrame", "LongPolling"]) {
    assert.ok(sandbox.Gateway[name], `Gateway.${name} is missing`);
  }
  assert.deepEqual(sandbox.Gateway.TRANSPORTS.map((T) => T.transportName), ["WebSockets", "ServerSentEvents", "ForeverFrame", "LongPolling"]);
});
