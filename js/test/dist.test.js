// dist/ and the copy the server serves must be exactly what a fresh build of src/ gives.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { buildAll, OUTPUTS, STATIC } from "../scripts/build.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

test("dist/ and the IIFEs in gateway/static/ match a fresh build (run `npm run build`)", async () => {
  const tmp = await mkdtemp(join(tmpdir(), "gateway-dist-"));
  try {
    await buildAll(join(tmp, "dist"), join(tmp, "static"));
    for (const name of Object.keys(OUTPUTS)) {
      const fresh = await readFile(join(tmp, "dist", name), "utf8");
      const committed = await readFile(join(root, "dist", name), "utf8").catch(() => "(missing)");
      assert.ok(committed === fresh, `dist/${name} is stale: run \`npm run build\` in js/`);
    }
    for (const name of STATIC) {
      const served = await readFile(join(root, "..", "gateway", "static", name), "utf8").catch(() => "(missing)");
      assert.ok(served === (await readFile(join(tmp, "dist", name), "utf8")), `gateway/static/${name} is stale: run \`npm run build\` in js/`);
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
});

test("the IIFE defines the global Gateway with the public names", async () => {
  const code = await readFile(join(root, "dist", "gateway.js"), "utf8");
  const sandbox = {};
  new Function("globalThis", code)(sandbox);
  for (const name of ["HubConnection", "HubConnectionState", "Subject", "TRANSPORTS"]) {
    assert.ok(sandbox.Gateway[name], `Gateway.${name} is missing`);
  }
  assert.deepEqual(sandbox.Gateway.TRANSPORTS.map((T) => T.transportName), ["WebSockets", "ServerSentEvents", "ForeverFrame", "LongPolling"]);
});

test("the MessagePack IIFE adds Gateway.MessagePackHubProtocol to the core's global", async () => {
  const core = await readFile(join(root, "dist", "gateway.js"), "utf8");
  const extra = await readFile(join(root, "dist", "gateway.msgpack.js"), "utf8");
  const sandbox = {};
  new Function("globalThis", `${core}; ${extra}`)(sandbox);
  const protocol = new sandbox.Gateway.MessagePackHubProtocol();
  assert.ok(sandbox.Gateway.HubConnection, "the core's names stay");
  assert.deepEqual([protocol.name, protocol.version, protocol.transferFormat], ["messagepack", 1, "Binary"]);
  assert.deepEqual([...protocol.write({ type: 6 })], [0x02, 0x91, 0x06]);
});

test("the job view IIFE defines <gateway-job> over the core's Gateway.HubConnection, and adds its names", async () => {
  const core = await readFile(join(root, "dist", "gateway.js"), "utf8");
  const extra = await readFile(join(root, "dist", "gateway.job.js"), "utf8");
  const defined = [];
  const sandbox = { HTMLElement: class {}, customElements: { get: () => undefined, define: (...args) => defined.push(args) } };
  new Function("globalThis", "HTMLElement", `${core}; ${extra}`)(sandbox, sandbox.HTMLElement);
  for (const name of ["HubConnection", "JobProgress", "JobWatch", "defineGatewayJob"]) {
    assert.ok(sandbox.Gateway[name], `Gateway.${name} is missing`);
  }
  assert.deepEqual(defined.map(([name]) => name), ["gateway-job"]);
  assert.deepEqual(defined[0][1].observedAttributes, ["job-id", "hub", "transports"]);
});

test("the shared-mode IIFE makes {shared: true} use a SharedWorker at the hub's client.worker.js", async () => {
  const core = await readFile(join(root, "dist", "gateway.js"), "utf8");
  const extra = await readFile(join(root, "dist", "gateway.shared.js"), "utf8");
  const workers = [];
  const sandbox = {
    location: { href: "https://app.test/page" },
    addEventListener() {},
    SharedWorker: class {
      constructor(url) {
        workers.push(url);
        this.port = { postMessage() {}, start() {} };
      }
    },
  };
  new Function("globalThis", `${core}; ${extra}`)(sandbox);
  const hub = new sandbox.Gateway.HubConnection("/hubs/jobs", { shared: true });
  assert.equal(hub.shared, true);
  assert.equal(typeof hub.invoke, "function");
  assert.deepEqual(workers, ["https://app.test/hubs/jobs/client.worker.js"]);
  assert.ok(sandbox.Gateway.SharedHubConnection && sandbox.Gateway.TRANSPORTS, "the core's names stay");
});

test("the worker IIFE is self-contained: it sets onconnect without the core loaded", async () => {
  const code = await readFile(join(root, "dist", "gateway.worker.js"), "utf8");
  const sandbox = { setInterval() {} };
  new Function("globalThis", "setInterval", code)(sandbox, sandbox.setInterval);
  assert.equal(typeof sandbox.onconnect, "function");
});

test("the shipped bundles work together: two tabs' client.shared.js share one connection in client.worker.js", async () => {
  const { FakeServer, FakeClock } = await import("../testing/fakes.js");
  const read = (name) => readFile(join(root, "dist", name), "utf8");
  const [core, extra, workerCode] = await Promise.all([read("gateway.js"), read("gateway.shared.js"), read("gateway.worker.js")]);
  const server = new FakeServer();
  const clock = new FakeClock();
  const worker = { ...server.env(clock) };
  const timers = [];
  new Function("globalThis", "setInterval", workerCode)(worker, (fn, ms) => timers.push([fn, ms]));
  const ports = [];
  const tab = () => {
    const g = {
      location: { href: "https://app.test/page" },
      addEventListener() {},
      SharedWorker: class {
        constructor() {
          const { port1, port2 } = new MessageChannel();
          ports.push(port1, port2);
          worker.onconnect({ ports: [port2] });
          this.port = port1;
        }
      },
    };
    new Function("globalThis", `${core}; ${extra}`)(g);
    return new g.Gateway.HubConnection("https://app.test/hubs/echo", { shared: true, transports: ["WebSockets"] });
  };
  const settle = async () => {
    for (let i = 0; i < 5; i++) {
      await new Promise((resolve) => setTimeout(resolve, 5));
      await clock.advance(10);
    }
  };
  try {
    const [a, b] = [tab(), tab()];
    const started = Promise.all([a.start(), b.start()]);
    await settle();
    await started;
    assert.equal(server.count, 1, "one connection for both tabs");
    const got = [];
    b.on("echo", (x) => got.push(x));
    const result = a.invoke("Echo", "hi");
    await settle();
    assert.equal(await result, "hi");
    server.last.invoke("echo", 42);
    await settle();
    assert.deepEqual(got, [42]);
    assert.equal(timers[0][1], 10000, "the worker pings its tabs every 10 s");
  } finally {
    ports.forEach((port) => port.close());
  }
});
