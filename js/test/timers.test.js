// Timers: a connection that stops or drops leaves none armed, on every transport, in the source and in the
// minified build alike (`npm test` runs this file both ways: the build renames private members).
import { test } from "node:test";
import assert from "node:assert/strict";
import { ALL, setup, start } from "../testing/helpers.js";

for (const name of ALL) {
  test(`${name}: stop leaves no timer armed, and nothing happens after the close`, async () => {
    const { clock, hub, events } = setup({ transports: [name] });
    assert.equal(await start(hub, clock), null);
    await clock.advance(20_000); // a few keep-alive pings go out meanwhile
    await hub.stop();
    const closed = events.length;
    assert.deepEqual([...clock.timers.values()].map((t) => t.fn.toString()), []);
    await clock.advance(120_000); // past any keep-alive and server timeout
    assert.equal(events.length, closed, `events after the close: ${JSON.stringify(events.slice(closed))}`);
    assert.deepEqual(clock.errors, []);
  });

  test(`${name}: a drop with no reconnect leaves no ping or server timer armed`, async () => {
    const { server, clock, hub, events } = setup({ transports: [name], reconnectDelays: [] });
    assert.equal(await start(hub, clock), null);
    server.drop();
    await clock.advance(10);
    assert.equal(events.at(-1)[0], "close");
    const closed = events.length;
    assert.equal(clock.timers.size, 0);
    await clock.advance(120_000);
    assert.equal(events.length, closed);
  });
}
