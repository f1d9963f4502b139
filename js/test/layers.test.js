// The client's layers: the hub (and the message buffer it uses) import no transport file; transports
// import nothing from the hub or the connection.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";

const SRC = new URL("../src/", import.meta.url);

function imports(path) {
  const text = readFileSync(new URL(path, SRC), "utf8");
  return [...text.matchAll(/^import[^"']*["']([^"']+)["']/gm)].map((match) => match[1]);
}

test("the hub and its buffer import no transport file", () => {
  for (const file of ["hub.js", "buffer.js"]) {
    const found = imports(file).filter((path) => path.includes("transports/"));
    assert.deepEqual(found, [], `${file} imports ${found}`);
  }
});

test("transports import neither the hub nor the connection", () => {
  for (const file of readdirSync(new URL("transports/", SRC))) {
    const found = imports(`transports/${file}`).filter((path) => /(hub|connection|buffer)\.js$/.test(path));
    assert.deepEqual(found, [], `transports/${file} imports ${found}`);
  }
});

test("the job view imports nothing of the core client: it is given a HubConnection", () => {
  for (const file of ["job.js", "job-element.js", "job-entry.js"]) {
    const found = imports(file).filter((path) => !/^\.\/job(-element)?\.js$/.test(path));
    assert.deepEqual(found, [], `${file} imports ${found}`);
  }
});
