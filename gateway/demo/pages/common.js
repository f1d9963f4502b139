// Shared by the demo pages: start a connection (optionally forced onto one transport) and show its trace.
function gatewayConnect(path, transport, on) {
  const options = transport ? {transports: [transport]} : {};
  const c = new Gateway.HubConnection(path, options);
  c.onattempt((a) => on.attempt && on.attempt(a));
  c.onreconnecting(() => { on.state && on.state("Reconnecting"); on.reconnecting && on.reconnecting(); });
  c.onreconnected(() => { on.state && on.state("Connected"); on.transport && on.transport(c.transport, c.connectionId);
                          on.reconnected && on.reconnected(); });
  c.onclose((e) => { on.state && on.state("Disconnected"); on.closed && on.closed(e); });
  on.state && on.state("Connecting");
  c.ready = c.start().then(() => {
    on.state && on.state("Connected"); on.transport && on.transport(c.transport, c.connectionId);
  }, (e) => { on.state && on.state("Disconnected"); on.failed && on.failed(e); throw e; });
  c.ready.catch(() => {});
  return c;
}
function addTrace(list, a) {
  const li = document.createElement("li");
  li.innerHTML = `<span class="badge ${a.outcome}">${a.outcome}</span> ${a.transport}${a.resume ? " (resume)" : ""}` +
    ` <span class="mute">${Math.round(a.ms)} ms</span> ${a.reason ? "— " + escapeHtml(a.reason) : ""}`;
  list.appendChild(li);
}
function escapeHtml(s) { return String(s).replace(/[&<>"]/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"})[c]); }
function quantile(xs, q) { if (!xs.length) return NaN; const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(q * s.length))]; }
