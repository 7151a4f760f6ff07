// TypeScript's classic resolution (module commonjs, moduleResolution node10:
// the repository's own setting and many projects'), which reads neither
// "exports" nor its conditions: the main entry comes from "types" and the
// ix-websocket/redis subpath from "typesVersions".
import { WebSocketServer } from 'ix-websocket';
import { redisBus, type RedisBusOptions } from 'ix-websocket/redis';

const options: RedisBusOptions = { url: 'redis://127.0.0.1:6379', maxMessageSize: 1024 };
export const server = new WebSocketServer({ port: 0, bus: redisBus(options) });
// @ts-expect-error maxMessageSize is a number
redisBus({ maxMessageSize: '1' });
