// Raw TCP peers for what a well-behaved peer never does: RawPeer is a client
// that writes hand-made HTTP and frames and reads the server's back;
// rawServer answers the opening handshake itself and then hands the socket
// over (a server that stops reading, never answers, floods, ...).
import * as crypto from 'crypto';
import * as net from 'net';
import { defer } from './cleanup';
import { until } from './events';
import { acceptKey, decodeFrame, encodeFrame, parseHead, requestKey, switchingProtocols, upgradeRequest } from './wire';
import type { Frame, FrameSpec } from './wire';

/** A frame as RawPeer reads it. */
export type RawFrame = Frame;

export interface HttpHead {
  status: number;
  statusLine: string;
  headers: Record<string, string>;
  raw: string;
}

/** A TCP connection with a byte buffer and bounded reads of HTTP heads and frames. */
export class RawPeer {
  private buf = Buffer.alloc(0);
  ended = false;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
    });
    socket.on('end', () => (this.ended = true));
    socket.on('close', () => (this.ended = true));
    socket.on('error', () => (this.ended = true));
  }

  /** localAddress: the address to connect from (e.g. 127.0.0.2: another peer address on loopback). */
  static connect(port: number, host = '127.0.0.1', localAddress?: string): Promise<RawPeer> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ port, host, ...(localAddress ? { localAddress } : {}) });
      const t = setTimeout(() => reject(new Error('raw connect timed out')), 5000);
      s.once('connect', () => {
        clearTimeout(t);
        const p = new RawPeer(s);
        defer(() => s.destroy());
        resolve(p);
      });
      s.once('error', (e) => {
        clearTimeout(t);
        reject(e);
      });
    });
  }

  write(b: Buffer | string): void {
    this.socket.write(b);
  }

  send(spec: FrameSpec): void {
    this.socket.write(encodeFrame(spec));
  }

  /** Reads an HTTP response head (up to the blank line). */
  readHead(timeoutMs = 5000): Promise<HttpHead> {
    return until(
      () => {
        const end = this.buf.indexOf('\r\n\r\n');
        if (end < 0) {
          if (this.ended) throw new Error(`connection ended before an HTTP head: ${JSON.stringify(this.buf.toString('latin1'))}`);
          return undefined;
        }
        const raw = this.buf.subarray(0, end).toString('latin1');
        this.buf = this.buf.subarray(end + 4);
        const { line, headers } = parseHead(raw);
        return { status: Number(line.split(' ')[1]), statusLine: line, headers, raw };
      },
      timeoutMs,
      'an HTTP response head',
    );
  }

  /** Reads one frame as sent by the server. */
  readFrame(timeoutMs = 5000): Promise<RawFrame> {
    return until(
      () => {
        const f = this.parseFrame();
        if (f === undefined && this.ended) throw new Error('connection ended before a frame');
        return f;
      },
      timeoutMs,
      'a frame',
    );
  }

  /** Reads frames until a close frame; returns it and the frames before it. */
  async readUntilClose(timeoutMs = 5000): Promise<{ close: RawFrame; before: RawFrame[]; code: number }> {
    const before: RawFrame[] = [];
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const f = await this.readFrame(Math.max(1, deadline - Date.now()));
      if (f.opcode === 0x8) {
        return { close: f, before, code: f.payload.length >= 2 ? f.payload.readUInt16BE(0) : 1005 };
      }
      before.push(f);
    }
  }

  /** Waits for the server to close the TCP connection. */
  waitEnd(timeoutMs = 5000): Promise<true> {
    return until(() => (this.ended ? true : undefined), timeoutMs, 'the connection to end');
  }

  /** Performs the opening handshake (no extensions) and checks the 101 and the accept key. */
  async upgrade(path = '/', extra: Record<string, string> = {}): Promise<HttpHead> {
    const key = crypto.randomBytes(16).toString('base64');
    this.write(upgradeRequest(path, key, extra));
    const head = await this.readHead();
    if (head.status !== 101) throw new Error(`upgrade refused: ${head.raw}`);
    if (head.headers['sec-websocket-accept'] !== acceptKey(key)) throw new Error(`bad accept key: ${head.raw}`);
    return head;
  }

  private parseFrame(): RawFrame | undefined {
    const d = decodeFrame(this.buf);
    if (!d) return undefined;
    this.buf = this.buf.subarray(d.size);
    return d.frame;
  }
}

/**
 * A TCP server on 127.0.0.1 that answers every opening handshake with a 101
 * (plus `extra` headers) and then hands the socket to onUpgrade with the
 * bytes that followed the request. A listener added in onUpgrade (or a
 * pause there) sees every later byte. The server and its sockets are closed
 * after the test; `server` also emits 'connection' for every socket.
 */
export async function rawServer(
  onUpgrade: (sock: net.Socket, rest: Buffer, head: string) => void,
  extra: Record<string, string> = {},
): Promise<{ port: number; server: net.Server }> {
  const server = net.createServer((sock) => {
    defer(() => sock.destroy());
    sock.on('error', () => {});
    let buf = Buffer.alloc(0);
    const onHead = (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      sock.off('data', onHead);
      const head = buf.subarray(0, end).toString('latin1');
      sock.write(switchingProtocols(requestKey(head), extra));
      onUpgrade(sock, buf.subarray(end + 4), head);
    };
    sock.on('data', onHead);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  defer(() => new Promise((resolve) => server.close(resolve)));
  return { port: (server.address() as net.AddressInfo).port, server };
}
