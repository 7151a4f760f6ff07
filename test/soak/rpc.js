// Request/response over a child's IPC channel, with a deadline on every call.
'use strict';

/** In a child: answer { id, op, args } with handlers[op](args); exit when the parent goes away. */
function serve(handlers) {
  process.on('message', async (msg) => {
    if (!msg || typeof msg.id !== 'number') return;
    let reply;
    try {
      const h = handlers[msg.op];
      if (!h) throw new Error(`unknown op ${msg.op}`);
      reply = { id: msg.id, result: await h(msg.args || {}) };
    } catch (e) {
      reply = { id: msg.id, error: String((e && e.stack) || e) };
    }
    if (process.connected) process.send(reply);
  });
  // The orchestrator died or closed the channel: nothing may outlive it.
  process.on('disconnect', () => process.exit(3));
}

/** In the parent: a caller for one child. */
function client(child, name) {
  let next = 1;
  const pending = new Map();
  child.on('message', (msg) => {
    const p = msg && pending.get(msg.id);
    if (!p) return;
    pending.delete(msg.id);
    clearTimeout(p.timer);
    if (msg.error) p.reject(new Error(`${name}.${p.op}: ${msg.error}`));
    else p.resolve(msg.result);
  });
  child.on('exit', (code, signal) => {
    for (const p of pending.values()) {
      clearTimeout(p.timer);
      p.reject(new Error(`${name} exited (code ${code}, signal ${signal}) during ${p.op}`));
    }
    pending.clear();
  });
  return (op, args, timeoutMs = 30000) =>
    new Promise((resolve, reject) => {
      if (!child.connected) {
        reject(new Error(`${name} is not running (${op})`));
        return;
      }
      const id = next++;
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error(`${name}.${op}: no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      pending.set(id, { resolve, reject, timer, op });
      child.send({ id, op, args });
    });
}

module.exports = { serve, client };
