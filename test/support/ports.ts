// Loopback ports: one with nothing listening, and probes of a port.
import * as net from 'net';

/** A port with nothing listening on 127.0.0.1 (bound, then released). */
export function closedPort(): Promise<number> {
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
