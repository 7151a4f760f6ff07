// The same package seen from CommonJS TypeScript (the "require" condition).
import ix = require('ix-websocket');

export const server: ix.WebSocketServer = new ix.WebSocketServer({ port: 0 });
// @ts-expect-error websocketClientSend needs the client object and the data
ix.websocketClientSend();
