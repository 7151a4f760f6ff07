// Loopback ports: one with nothing listening, and probes of a port.
import * as net from 'net';

/**
 * A port with nothing listening on 127.0.0.1, for a test or a child process
 * to listen on (or to find closed). Chosen below Linux's ephemeral range
 * (32768-60999 by default): a port the kernel hands out for `listen(0)` is also
 * what it hands out as the local port of outgoing connections, so under a busy
 * parallel suite such a port was sometimes taken by some test's client socket
 * between this probe and the child's listen (an `examples.test` failure in CI
 * beside another run). Random ports from 20000-32767 are probed with a listen;
 * the ephemeral range is the fallback.
 */
export async function closedPort(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = 20000 + Math.floor(Math.random() * 12768);
    if (await canListen(port)) return port;
  }
  return new Promise((resolve, reject) => {
    const l = net.createServer();
    l.once('error', reject);
    l.listen(0, '127.0.0.1', () => {
      const port = (l.address() as net.AddressInfo).port;
      l.close(() => resolve(port));
    });
  });
}

/** Whether a TCP connection to 127.0.0.1:port is accepted. */
export function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** Whether 127.0.0.1:port can be listened on (nobody holds it). */
export function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const l = net.createServer();
    l.once('error', () => resolve(false));
    l.listen(port, '127.0.0.1', () => l.close(() => resolve(true)));
  });
}
