// Types of the shared-mode entry (hand-written; copied to dist/gateway.shared.d.ts by the build).
import type { HubConnection, HubConnectionOptions } from "./gateway";

/** A subclass of the core's HubConnection whose constructor honours `{shared: true}`. */
export declare function withShared(core: typeof HubConnection): typeof HubConnection;

/** The HubConnection a tab gets in shared mode: the same API, over the host of the shared connection. */
export declare class SharedHubConnection extends HubConnection {
  readonly shared: true;
  /** Says hello again to the host (after the back/forward cache, or to a new leader tab). */
  rejoin(): void;
}

/** Hold methods and the calls that release them, counted per argument list. Default {Subscribe: "Unsubscribe"}. */
export declare const RELEASES: Record<string, string>;

/** The HubConnection of a page in shared mode, or its own connection where nothing can be shared. */
export declare function shared(core: typeof HubConnection, url: string, options: HubConnectionOptions, globals?: any): HubConnection;
