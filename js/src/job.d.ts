// Types of the optional job view entry (dist/gateway.job.mjs; the IIFE defines <gateway-job> and adds
// Gateway.defineGatewayJob, Gateway.JobWatch and Gateway.JobProgress).
import type { HubConnection } from "./gateway";

export type JobStateName = "Pending" | "Processing" | "Completed" | "Failed" | "Cancelled";

/** What the hub method `progress` carries (and each entry of a snapshot's `log`). */
export interface JobEvent {
  jobId: string;
  state: JobStateName | string;
  percent: number;
  step?: number;
  total?: number;
  message?: string;
  seq: number;
  error?: string | null;
  result?: any;
  ts?: number;
  [field: string]: any;
}

/** What `Subscribe(jobId)` returns: the current event, and the step log, oldest first. */
export interface JobSnapshot extends JobEvent {
  log?: JobEvent[];
  logTruncated?: boolean;
}

/** The states after which a job changes no more. */
export declare const FINAL: JobStateName[];

/** One job as a page applied it: each seq once, in order; live events wait while a snapshot is awaited. */
export declare class JobProgress {
  constructor(jobId: string, maxLog?: number);
  readonly jobId: string;
  readonly maxLog: number;
  readonly seq: number;
  readonly current: JobEvent | null;
  readonly log: JobEvent[];
  /** The log lost its oldest entries (capped by the server or by maxLog). */
  readonly truncated: boolean;
  waiting: boolean;
  readonly done: boolean;
  /** Applies a snapshot, then the live events held meanwhile; returns the events applied. */
  snapshot(snapshot: JobSnapshot): JobEvent[];
  /** A live event: [event] if applied, [] if old, another job's, or held. */
  live(event: JobEvent): JobEvent[];
}

export interface JobWatchCallbacks {
  event?(event: JobEvent): void;
  done?(event: JobEvent): void;
  error?(error: Error): void;
}

/** Keeps a JobProgress subscribed over a HubConnection (again after a reconnect with a new connection id). */
export declare class JobWatch {
  constructor(hub: HubConnection, jobId: string, on?: JobWatchCallbacks,
              options?: { maxLog?: number; retryMs?: number; quietMs?: number; timers?: { setTimeout: any; clearTimeout: any } });
  readonly hub: HubConnection;
  readonly jobId: string;
  readonly progress: JobProgress;
  start(): this;
  stop(unsubscribe?: boolean): void;
  cancel(): Promise<boolean>;
}

/** `<gateway-job job-id hub transports cancellable max-log>`; events `progress` and `done` (detail: the event), `error`. */
export interface GatewayJobElement extends HTMLElement {
  jobId: string | null;
  connection: HubConnection | null;
  readonly current: JobEvent | null;
  readonly state: string | null;
  readonly percent: number;
  readonly seq: number;
  readonly log: JobEvent[];
  readonly done: boolean;
  cancel(): Promise<boolean>;
}

/** Defines the element (default name "gateway-job") over the core client's HubConnection class. */
export declare function defineGatewayJob(
  hubConnection: typeof HubConnection, name?: string, registry?: CustomElementRegistry,
): { new (): GatewayJobElement };
