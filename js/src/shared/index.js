// Shared mode: one physical connection per browser, hosted in a SharedWorker or a leader tab.
export { Host, RELEASES, EVICT_AFTER, BEAT } from "./host.js";
export { SharedHubConnection } from "./tab.js";
export { shared, withShared, workerChannel, leaderChannel } from "./channels.js";
