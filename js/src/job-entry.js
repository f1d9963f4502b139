// The IIFE entry of the job view: defines <gateway-job> over the core's Gateway.HubConnection (load it after
// the core client) and adds Gateway.defineGatewayJob, Gateway.JobWatch and Gateway.JobProgress.
import { JobProgress, JobWatch } from "./job.js";
import { defineGatewayJob } from "./job-element.js";

const Gateway = (globalThis.Gateway ||= {});
Object.assign(Gateway, { JobProgress, JobWatch, defineGatewayJob });
if (Gateway.HubConnection && globalThis.customElements) defineGatewayJob(Gateway.HubConnection);
