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
  env?: Env;
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
  on(name: string, fn: (...args: any[]) => any): void;
  off(name: string, fn?: (...args: any[]) => any): void;
  start(): Promise<void>;
  invoke<T = any>(name: string, ...args: any[]): Promise<T>;
  send(name: string, ...args: any[]): Promise<void>;
  stop(): Promise<void>;
  onclose(fn: (error?: Error) => void): void;
  onreconnecting(fn: (error?: Error) => void): void;
  onreconnected(fn: (connectionId: string | null) => void): void;
  onattempt(fn: (attempt: Attempt) => void): void;
}

/** The transport interface shared by the four transports. */
export interface Transport {
  onreceive: (data: string) => void;
  onclose: (error: Error) => void;
  connect(url: string): Promise<void>;
  send(data: string): void;
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
  env: Env
): { name: string; T: TransportClass | undefined; skip: string }[];

export declare const RS: "\x1e";
export declare const HANDSHAKE: string;
export declare const PING: string;
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

/** Splits text into records; keeps an unterminated tail for the next push. */
export declare class RecordSplitter {
  push(text: string): string[];
}

/** Stateful-reconnect bookkeeping (sequence ids, unacked records, duplicates). */
export declare class MessageBuffer {
  constructor(enabled: boolean);
  readonly latest: number;
  sending(message: object, record: string): void;
  ack(id: number): void;
  received(message: { type?: number }): boolean;
  sequence(id: number): void;
  replay(): string;
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
  send(records: string): void;
  deliver(): void;
  drop(error: Error): void;
  stop(): void;
}
