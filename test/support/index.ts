// The shared test helpers, one import for the suites (`from './support'`):
//   cleanup.ts   defer / runCleanup (afterEach)
//   events.ts    until, delay, Collector (a `method` that records)
//   objects.ts   newServer/newClient, startServer, connectClient, a good
//                connection kept busy beside hostile peers
//   payloads.ts  checkable bytes and text
//   wire.ts      handshake keys and heads, frame encode/decode, close payloads
//                (handshake.cjs, frames.cjs: the same in plain CommonJS, for
//                child processes and node scripts such as fuzz/make-corpus.js)
//   raw.ts       RawPeer (a hand-made client), rawServer (a hand-made server)
//   ports.ts     a loopback port with nothing listening, port probes
//   ws.ts        what a `ws` peer receives
// peers.ts (system peers) and compile.ts (the package built for child
// processes) are imported on their own.
export * from './cleanup';
export * from './events';
export * from './objects';
export * from './payloads';
export * from './ports';
export * from './raw';
export * from './wire';
export * from './ws';
