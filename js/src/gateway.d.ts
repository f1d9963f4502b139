// Types of the gateway browser client (hand-written; copied to dist/gateway.d.ts by the build).

/** The names of the four transports, best first. */
export type TransportName = "WebSockets" | "ServerSentEvents" | "ForeverFrame" | "LongPolling";

export type HubConnectionStateName = "Disconnected" | "Connecting" | "Connected" | "Reconnecting" | "Disconnecting";

export declare const HubConnectionState: { readonly [K in HubConnectionStateName]: K };

/** One transport attempt, reported by `onattempt` and kept in `HubConnection.attempts`. */
export interface Attempt {
  transport: string;
  outcome: "connected" | "failed" | "skipped";
  /** Why it failed or was skipped; "" when connected. */
  reason: string;
  /** Time from the start of the attempt to its outcome. */
  ms: number;
  /** True when the attempt resumed an existing connection (stateful reconnect). */
  resume: boolean;
}

/** What the client takes from its surroundings; each member defaults to the browser global. */
export interface Env {
  WebSocket?: any;
  EventSource?: any;
  fetch?: (url: string, init?: any) => Promise<any>;
  setTimeout?: (fn: () => void, ms: number) => any;
  clearTimeout?: (id: any) => void;
  document?: any;
  window?: any;
  location?: { href: string; origin: string };
  /** Milliseconds, for `Attempt.ms`. */
  now?: () => number;
}

export interface HubConnectionOptions {
  /** Restricts and orders the transports; default: the server's list, in the server's order. */
  transports?: TransportName[] | string[];
  /** Send cookies on cross-origin requests (fetch `credentials: "include"`, EventSource `withCredentials`). */
  withCredentials?: boolean;
  /** How long a transport has to deliver the handshake (or, on a resume, the Sequence). Default 5000. */
  startTimeout?: number;
  /** Ping the server after this long without sending. Default 15000. */
  keepAliveInterval?: number;
  /** Treat the server as gone after this long with nothing received. Default 30000. */
  serverTimeout?: number;
  /** Delays before each reconnect round; [] disables automatic reconnect. Default [0, 2000, 10000, 30000]. */
  reconnectDelays?: number[];
  /** Delay between receiving a message and acking it. Default 1000. */
  ackDelay?: number;
  /** The hub protocol; default JSON. `new MessagePackHubProtocol()` (the optional entry) speaks MessagePack. */
  protocol?: HubProtocol;
  env?: Env;
  /**
   * Share one physical connection among all the tabs of this browser on this origin (load client.shared.js
   * after client.js; without it the constructor throws). Hosted in a SharedWorker, else in a leader tab
   * (Web Locks + BroadcastChannel), else the tab connects on its own.
   */
  shared?: boolean;
  /** Shared mode: the SharedWorker script. Default: `{hub url}/client.worker.js`, which the gateway serves. */
  workerUrl?: string;
}

/** A hub message, in the JSON protocol's shape whatever the protocol. */
export interface HubMessage {
  type: number;
  headers?: Record<string, string>;
  invocationId?: string;
  target?: string;
  arguments?: any[];
  streamIds?: string[];
  item?: any;
  result?: any;
  error?: string;
  allowReconnect?: boolean;
  sequenceId?: number;
}

/**
 * A hub protocol. The handshake is `{"protocol": name, "version": version}` as JSON text; a "Binary"
 * protocol is only tried on transports negotiate lists with Binary (WebSockets, LongPolling).
 */
export interface HubProtocol {
  readonly name: string;
  readonly version: number;
  readonly transferFormat: "Text" | "Binary";
  /** One message as a record (text) or a frame (bytes). */
  write(message: HubMessage): string | Uint8Array;
  /** The messages `data` completes; an incomplete tail waits in `state.rest` for the next call. */
  parse(data: string | ArrayBuffer | Uint8Array, state?: { rest?: any }): HubMessage[];
}

/** The JSON hub protocol (records ended by 0x1E); `new JsonHubProtocol()` gives the shared instance. */
export declare const JsonHubProtocol: { new (): HubProtocol; (): HubProtocol };

/** What `subscribe` takes: each member optional. */
export interface StreamSubscriber<T> {
  next?(item: T): void;
  error?(error: any): void;
  complete?(): void;
}

export interface Subscription {
  /** Stops delivery to this observer; the last one's dispose cancels a server stream (CancelInvocation). */
  dispose(): void;
}

/**
 * A stream of values: `HubConnection.stream` returns one the server feeds; pass one as an argument of
 * invoke/send/stream to stream values to the server (each `next` is a StreamItem, `complete` or `error`
 * its Completion).
 */
export declare class Subject<T = any> {
  constructor();
  subscribe(observer: StreamSubscriber<T>): Subscription;
  next(item: T): void;
  error(error: any): void;
  complete(): void;
}

/** An error from start or reconnect, with every attempt made. */
export interface ConnectError extends Error {
  attempts?: Attempt[];
  /** Set when a resume learnt that the server no longer knows the connection. */
  gone?: boolean;
}

export declare class HubConnection {
  constructor(url: string, options?: HubConnectionOptions);
  /** The name of the transport in use while connected, else null. */
  readonly transport: TransportName | null;
  readonly state: HubConnectionStateName;
  readonly connectionId: string | null;
  /** The attempts of the latest start or reconnect. */
  readonly attempts: Attempt[];
  /**
   * Handles server calls of `name`. When the server waits for a result (a client-result invocation), the
   * first handler's return value, or what its promise resolves to, is the answer; a throw or rejection is
   * sent as the error; with no handler the error is "Client didn't provide a result.".
   */
  on(name: string, fn: (...args: any[]) => any): void;
  off(name: string, fn?: (...args: any[]) => any): void;
  start(): Promise<void>;
  invoke<T = any>(name: string, ...args: any[]): Promise<T>;
  send(name: string, ...args: any[]): Promise<void>;
  /** Calls a streaming hub method; throws when not connected. Subject arguments stream to the server. */
  stream<T = any>(name: string, ...args: any[]): Subject<T>;
  stop(): Promise<void>;
  onclose(fn: (error?: Error) => void): void;
  onreconnecting(fn: (error?: Error) => void): void;
  onreconnected(fn: (connectionId: string | null) => void): void;
  onattempt(fn: (attempt: Attempt) => void): void;
}

/** The transport interface shared by the four transports. */
export interface Transport {
  /** Text, or under a Binary protocol an ArrayBuffer (the handshake response may still be text). */
  onreceive: (data: string | ArrayBuffer) => void;
  onclose: (error: Error) => void;
  connect(url: string): Promise<void>;
  send(data: string | Uint8Array): void;
  stop(): void;
}

export interface TransportClass {
  new (env: Env, options: HubConnectionOptions): Transport;
  readonly transportName: TransportName;
  /** Query appended to the URL of a resuming stream ("" for most transports). */
  readonly resumeQuery: string;
  supported(env: Env): boolean;
}

export declare const WebSockets: TransportClass;
export declare const ServerSentEvents: TransportClass;
export declare const ForeverFrame: TransportClass;
export declare const LongPolling: TransportClass;
/** The transports in priority order. */
export declare const TRANSPORTS: TransportClass[];
/** The transports to try, in order, each with why it cannot be tried ("" if it can). */
export declare function plan(
  available: { transport: string; transferFormats?: string[] }[],
  requested: string[] | null | undefined,
  env: Env,
  format: "Text" | "Binary"
): { name: string; T: TransportClass | undefined; skip: string }[];

export declare const RS: "\x1e";
export declare const MessageType: {
  readonly Invocation: 1;
  readonly StreamItem: 2;
  readonly Completion: 3;
  readonly StreamInvocation: 4;
  readonly CancelInvocation: 5;
  readonly Ping: 6;
  readonly Close: 7;
  readonly Ack: 8;
  readonly Sequence: 9;
};
export declare function write(message: object): string;
export declare function parse(record: string): any;
export declare function isTrackable(message: { type?: number }): boolean;

/** Stateful-reconnect bookkeeping (sequence ids, unacked records, duplicates). */
export declare class MessageBuffer {
  constructor(enabled: boolean);
  readonly latest: number;
  sending(message: object, record: string | Uint8Array): void;
  ack(id: number): void;
  received(message: { type?: number }): boolean;
  sequence(id: number): void;
  /** Our Sequence (encoded by `encode`, JSON by default), then every unacked record. */
  replay(encode?: (message: HubMessage) => string | Uint8Array): (string | Uint8Array)[];
}

/** Negotiate, transport fallback and resume; HubConnection sits on top of it. */
export declare class Connection {
  constructor(url: string, options: HubConnectionOptions & { env: Env });
  readonly connectionId: string | null;
  readonly stateful: boolean;
  readonly transportName: TransportName | undefined;
  onattempt: (attempt: Attempt) => void;
  onmessage: (message: any) => void;
  ondrop: (error: Error) => void;
  start(): Promise<void>;
  resume(): Promise<void>;
  send(records: string | Uint8Array): void;
  deliver(): void;
  drop(error: Error): void;
  stop(): void;
}
