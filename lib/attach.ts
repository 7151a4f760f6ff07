// Attaching to an existing Node HTTP server (noServer + handleUpgrade): the
// engine takes over a plain-TCP connection Node's `http` server has parsed.
//
// What happens, in one synchronous run (Node's event loop reads nothing in
// between, so no byte can be lost):
//  1. the socket is checked: a plain TCP socket with a file descriptor (an
//     `https` server's TLSSocket, a pipe, or a platform without descriptors
//     is refused with a status that says what to do instead);
//  2. the bytes Node read beyond the request (`head`, and whatever an
//     asynchronous caller let pile up in the socket's buffer) are collected
//     and Node stops reading the descriptor;
//  3. the request is written back as the bytes Node parsed (method, target,
//     version, raw headers in their order and case) and, with those bytes,
//     handed to the engine together with the descriptor, which the native
//     side duplicates: the engine adopts the duplicate on an IO thread and
//     parses the request itself, so its validation, limits, deflate
//     negotiation and everything else of its server handshake apply;
//  4. Node's socket is destroyed: that closes Node's descriptor only (no
//     shutdown(), so no FIN); the connection lives on in the duplicate.
import type { IncomingMessage } from 'http';
import * as net from 'net';
import type { Duplex } from 'stream';
import * as tls from 'tls';
import { binding } from './binding';
import type { ServerArg, UpgradeStatus } from './types';

/** What the socket lacks when it cannot be adopted (an HTTP answer is due). */
interface Refusal {
  status: number;
  message: string;
}

const TLS_REFUSAL =
  "handleUpgrade: this socket is encrypted by Node's TLS (an https server) and its connection cannot be " +
  'handed to ix-websocket. Terminate TLS in front of Node (a reverse proxy or load balancer that forwards ' +
  'plain HTTP), or let ix-websocket serve wss:// itself on a port of its own (websocketServer with the tls option).';

const noAdoption = (why: string): string =>
  `handleUpgrade: ${why}: ix-websocket adopts the file descriptor of a TCP connection, which is not possible ` +
  'here. Let ix-websocket listen on a port of its own (websocketServer without noServer).';

/** The descriptor of a plain TCP socket Node owns, or why there is none. */
function socketFd(socket: net.Socket): number | Refusal {
  if (socket instanceof tls.TLSSocket || (socket as { encrypted?: boolean }).encrypted === true)
    return { status: 501, message: TLS_REFUSAL };
  if (process.platform === 'win32') return { status: 501, message: noAdoption('Windows sockets have no file descriptor to duplicate') };
  const handle = (socket as unknown as { _handle?: { fd?: unknown; constructor?: { name?: string } } | null })._handle;
  if (!handle || socket.destroyed) return { status: 0, message: 'handleUpgrade: the socket is already closed' };
  const kind = handle.constructor?.name;
  if (kind !== 'TCP')
    return { status: 501, message: noAdoption(`the socket is not a TCP socket (its handle is ${kind ?? 'unknown'})`) };
  const fd = handle.fd;
  if (typeof fd !== 'number' || !Number.isInteger(fd) || fd < 0)
    return { status: 501, message: noAdoption('the socket has no file descriptor on this platform') };
  return fd;
}

/**
 * The request as Node parsed it, written back as HTTP/1.x bytes: the engine
 * parses and validates it as if it had read it from the socket itself.
 */
export function requestBytes(req: IncomingMessage): Buffer {
  const lines = [`${req.method} ${req.url} HTTP/${req.httpVersion}`];
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) lines.push(`${raw[i]}: ${raw[i + 1]}`);
  // latin1: Node decoded the header bytes one to one (obs-text included).
  return Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
}

function answer(socket: net.Socket, refusal: Refusal): void {
  if (socket.destroyed) return;
  if (refusal.status === 0 || !socket.writable) {
    socket.destroy();
    return;
  }
  const reasons: Record<number, string> = { 500: 'Internal Server Error', 501: 'Not Implemented', 503: 'Service Unavailable' };
  // Read (and drop) what the peer still sends, so that its FIN is seen and
  // the socket closes as soon as the peer has read the answer.
  socket.resume();
  const body = `${refusal.message}\n`;
  socket.end(
    `HTTP/1.1 ${refusal.status} ${reasons[refusal.status] ?? 'Error'}\r\nConnection: close\r\n` +
      `Content-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
  // A peer that never reads must not hold the socket open.
  socket.setTimeout(5000, () => socket.destroy());
}

function isSocket(x: unknown): x is net.Socket {
  return x instanceof net.Socket;
}

/**
 * Hands `socket` (from an `http.Server`'s 'upgrade' event, with its request
 * `req` and the bytes `head` read beyond it) to the noServer server `server`.
 * TypeError for arguments of the wrong kind or a server that is not noServer;
 * otherwise a status. On `success: false` the peer has been answered with an
 * HTTP error and the socket is closed.
 */
// `socket` is typed as @types/node types the 'upgrade' event's (a Duplex);
// what it must be at run time is checked below.
export function handleUpgrade(server: ServerArg, req: IncomingMessage, socket: Duplex, head: Buffer | Uint8Array): UpgradeStatus {
  if (server === null || typeof server !== 'object') throw new TypeError('server must be an object with a ref');
  if (req === null || typeof req !== 'object' || typeof req.method !== 'string' || typeof req.url !== 'string' || !Array.isArray(req.rawHeaders) || typeof req.httpVersion !== 'string')
    throw new TypeError("req must be the http.IncomingMessage of the 'upgrade' event");
  if (!isSocket(socket)) throw new TypeError("socket must be the net.Socket of the 'upgrade' event");
  if (head === undefined || head === null) head = Buffer.alloc(0);
  if (!(head instanceof Uint8Array)) throw new TypeError("head must be a Buffer (the 'upgrade' event's third argument)");

  const fd = socketFd(socket);
  if (typeof fd !== 'number') {
    answer(socket, fd);
    return { success: false, message: fd.message };
  }
  if (socket.writableLength > 0) {
    const message = 'handleUpgrade: the socket has unsent data of its own; it cannot be handed over';
    answer(socket, { status: 500, message });
    return { success: false, message };
  }

  // Everything Node read that is not the request: head, then what sits in
  // the socket's buffer (a caller that awaited something before calling us).
  const parts: Buffer[] = [requestBytes(req), Buffer.from(head.buffer, head.byteOffset, head.byteLength)];
  const buffered: Buffer[] = [];
  if (socket.readableLength > 0) {
    for (let chunk = socket.read(); chunk !== null; chunk = socket.read())
      buffered.push(typeof chunk === 'string' ? Buffer.from(chunk, (socket.readableEncoding as BufferEncoding) ?? 'utf8') : chunk);
  }
  // read() may have asked the handle to read again; stop it before anything
  // returns to the event loop (nothing is read in this synchronous run).
  const handle = (socket as unknown as { _handle: { readStop(): number; readStart(): number; reading?: boolean } })._handle;
  const wasReading = handle.reading === true;
  handle.readStop();
  handle.reading = false;

  // Gives the socket back to Node as it was (nothing was handed over).
  const restore = () => {
    for (let i = buffered.length - 1; i >= 0; i--) socket.unshift(buffered[i]);
    if (wasReading) {
      handle.reading = true;
      handle.readStart();
    }
  };
  let status: UpgradeStatus;
  try {
    status = binding.websocketServerAdopt(server, fd, Buffer.concat([...parts, ...buffered]));
  } catch (e) {
    // Misuse (a server that is not noServer, a bad ref object).
    restore();
    throw e;
  }
  if (!status.success) {
    // Not started, unknown ref, not a TCP socket: the engine took nothing.
    restore();
    answer(socket, { status: 503, message: status.message });
    return status;
  }
  // The engine owns a duplicate: closing Node's descriptor leaves the
  // connection open (destroy() closes; only end() would shut it down).
  socket.destroy();
  return status;
}
