// Node --require preload: force every TCP server in this process onto loopback.
//
// The Microsoft 365 Agents Playground (and its port probe) call `server.listen(port)` with no host,
// which binds every interface. Tests must never expose it, so this rewrites the host argument of
// net.Server.prototype.listen (http.Server inherits it) to LOOPBACK_HOST (default 127.0.0.1)
// unless the caller already asked for a loopback address. Unix-socket and handle/fd listens are
// left alone.
"use strict";

const net = require("net");

const HOST = process.env.LOOPBACK_HOST || "127.0.0.1";
const LOOPBACK = new Set(["127.0.0.1", "::1", "localhost", HOST]);

function isLoopback(host) {
  return typeof host === "string" && (LOOPBACK.has(host) || host.startsWith("127."));
}

function isPort(value) {
  return typeof value === "number" || (typeof value === "string" && /^\d+$/.test(value));
}

const originalListen = net.Server.prototype.listen;

net.Server.prototype.listen = function listen(...args) {
  const first = args[0];
  if (first !== null && typeof first === "object" && !Array.isArray(first)) {
    // listen(options[, cb]); leave {path}, {fd} and {handle}/{_handle} alone.
    const isTcp = first.path === undefined && first.fd === undefined && first.handle === undefined &&
      first._handle === undefined;
    if (isTcp && !isLoopback(first.host)) {
      args[0] = { ...first, host: HOST };
    }
  } else if (first === undefined || typeof first === "function") {
    // listen() or listen(cb): an ephemeral port on every interface.
    args = [0, HOST, ...args.slice(first === undefined && args.length > 0 ? 1 : 0)];
  } else if (isPort(first)) {
    // listen(port[, host][, backlog][, cb])
    if (typeof args[1] === "string") {
      if (!isLoopback(args[1])) args[1] = HOST;
    } else {
      args.splice(1, 0, HOST);
    }
  }
  return originalListen.apply(this, args);
};

// Orphan guard: when the test process that started us dies without cleaning up (SIGKILL, crash),
// exit instead of lingering. Opt-in through PLAYGROUND_PARENT_PID (set by tests/support/playground.py).
const parentPid = Number.parseInt(process.env.PLAYGROUND_PARENT_PID || "", 10);
if (Number.isInteger(parentPid) && parentPid > 1) {
  setInterval(() => {
    try {
      process.kill(parentPid, 0);
    } catch (err) {
      if (err && err.code === "ESRCH") process.exit(0);
    }
  }, 1000).unref();
}
