// The IIFE entry of the trace option: adds Gateway.traced to the core's global (loaded before or after the core).
import { traced } from "./trace.js";

(globalThis.Gateway ||= {}).traced = traced;
