// A strict TypeScript consumer (module: nodenext), compiled against the
// installed package's types: named and default imports resolve through the
// "import" condition, and the types are real (the @ts-expect-error lines
// fail to compile if any of them degrades to `any`).
import ix, { WebSocketServer, WebSocketClient, websocketServer, websocketServerStart } from 'ix-websocket';
import type { ServerOptions, DataContext, ServerObject, ClientStartStatus } from 'ix-websocket';

const options: ServerOptions = { port: 0, perMessageDeflate: { enabled: true, threshold: 1024 } };
const server: WebSocketServer = new ix.WebSocketServer(options);
server.on('message', (client: number, ctx: DataContext) => {
  const data: string | Buffer = ctx.data;
  server.send(data, { clients: [client] });
});
const obj: ServerObject = websocketServer({ port: 0 });
const started: { success: boolean; message: string } = websocketServerStart(obj);
export async function connect(url: string): Promise<boolean> {
  const client = new WebSocketClient(url);
  const st: ClientStartStatus = await client.start();
  return st.success && started.success;
}

// @ts-expect-error port is a number
websocketServer({ port: 'eighty' });
// @ts-expect-error the class has no such method
server.listen();

// The ./redis entry point and the bus types.
import { redisBus } from 'ix-websocket/redis';
import type { Bus, PublishStatus } from 'ix-websocket';
const bus: Bus = redisBus({ url: 'redis://127.0.0.1:6379' });
const busServer = new WebSocketServer({ port: 0, reusePort: true, bus });
const published: PublishStatus = busServer.publish('news', 'hello');
export const busOk: boolean | undefined = published.bus?.success;
// @ts-expect-error a bus is an object with open/subscribe/publish/…, not a url
new WebSocketServer({ bus: 'redis://127.0.0.1:6379' });
