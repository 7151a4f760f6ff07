// websocketServerSend to one connection ({ ref, clients: [client] }, binary
// allowed) reads its arguments in the facade and calls the native
// websocketServerSendTo; everything else takes the general native path. The
// two must answer alike: same statuses (keys in the same order), same frames,
// same TypeErrors, and options carried by the object still applied.
import { afterEach, describe, expect, test, vi } from 'vitest';
import { websocketServerSend, websocketServerStop } from '../lib/index';
import { binding } from '../lib/binding';
import { connectClient, runCleanup, startServer } from './support';

afterEach(() => {
  vi.restoreAllMocks();
  return runCleanup();
});

describe('websocketServerSend fast path (one target)', () => {
  test('the same statuses as the general path, and the frames arrive as sent', async () => {
    const srv = startServer();
    const a = await connectClient(srv);
    const ref = srv.server.ref;
    const fast = vi.spyOn(binding, 'websocketServerSendTo');
    const cases: Array<[Record<string, unknown>, string | Buffer | Uint16Array, unknown, boolean]> = [
      // [object beside ref/clients, data, what arrives, binary]
      [{}, 'héllo', 'héllo', false],
      [{}, Buffer.from([1, 2, 3]), [1, 2, 3], true],
      [{ binary: true }, 'as bytes', [...Buffer.from('as bytes')], true],
      [{ binary: false }, Buffer.from('as text'), 'as text', false],
      [{}, new Uint16Array([0x4241]), [0x41, 0x42], true],
    ];
    for (const [extra, data, arrives, binary] of cases) {
      const viaFast = websocketServerSend({ ref, clients: [a.conn], ...extra }, data);
      const m1 = await a.events.waitType('message');
      a.events.events.length = 0;
      // The general path, as the facade called it before the fast path.
      const viaNative = binding.websocketServerSend({ ref, clients: [a.conn], ...extra }, data);
      const m2 = await a.events.waitType('message');
      a.events.events.length = 0;
      expect(viaFast).toEqual(viaNative);
      expect(Object.keys(viaFast[0])).toEqual(Object.keys(viaNative[0]));
      expect(viaFast[0]).toMatchObject({ success: true, compressionError: false, client: a.conn });
      for (const m of [m1, m2]) {
        expect(m.ctx.binary).toBe(binary);
        expect(binary ? [...(m.ctx.data as Buffer)] : m.ctx.data).toEqual(arrives);
      }
    }
    expect(fast).toHaveBeenCalledTimes(cases.length);
  });

  test('a failed send (invalid UTF-8 as text) carries the same message', async () => {
    const srv = startServer();
    const a = await connectClient(srv);
    const arg = { ref: srv.server.ref, clients: [a.conn], binary: false };
    const bad = Buffer.from([0xff, 0xfe]);
    const viaFast = websocketServerSend(arg, bad);
    const viaNative = binding.websocketServerSend(arg, bad);
    expect(viaFast[0]).toMatchObject({ success: false, client: a.conn, message: expect.stringMatching(/UTF-8/) });
    expect(viaFast).toEqual(viaNative);
    expect(Object.keys(viaFast[0])).toEqual(Object.keys(viaNative[0]));
  });

  test('unknown client, unknown server and a stopped server answer as the general path does', async () => {
    const srv = startServer();
    const a = await connectClient(srv);
    const ref = srv.server.ref;
    for (const arg of [
      { ref, clients: [a.conn + 40] },
      { ref, clients: [0] },
      { ref: -99, clients: [a.conn] },
    ]) {
      expect(websocketServerSend(arg, 'x')).toEqual(binding.websocketServerSend(arg, 'x'));
    }
    expect(websocketServerSend({ ref, clients: [a.conn + 40] }, 'x')).toEqual([
      expect.objectContaining({ success: false, client: a.conn + 40, message: 'Unknown client ref' }),
    ]);
    expect(websocketServerSend({ ref: -99, clients: [a.conn] }, 'x')).toEqual([]);
    websocketServerStop({ ref });
    const stopped = websocketServerSend({ ref, clients: [a.conn] }, 'x');
    expect(stopped).toEqual(binding.websocketServerSend({ ref, clients: [a.conn] }, 'x'));
    expect(stopped[0]).toMatchObject({ success: false, client: a.conn });
  });

  test('wrong argument types throw the same TypeErrors', async () => {
    const srv = startServer();
    const a = await connectClient(srv);
    const ref = srv.server.ref;
    const calls: Array<[Record<string, unknown>, unknown]> = [
      [{ ref, clients: [a.conn] }, 42],
      [{ ref, clients: [a.conn] }, { length: 1 }],
      [{ ref, clients: [a.conn], binary: 'yes' }, 'x'],
      [{ ref, clients: [a.conn], binary: 1 }, Buffer.from('x')],
      [{ ref, clients: ['1'] }, 'x'],
      [{ ref, clients: [1.5] }, 'x'],
      [{ ref: 'r', clients: [a.conn] }, 'x'],
      [{ ref: 1.5, clients: [a.conn] }, 'x'],
    ];
    for (const [arg, data] of calls) {
      let general: unknown;
      try {
        binding.websocketServerSend(arg as never, data as never);
      } catch (e) {
        general = e;
      }
      expect(general).toBeInstanceOf(TypeError);
      expect(() => websocketServerSend(arg as never, data as never)).toThrow(general as TypeError);
    }
  });

  test('an object that carries options takes the general path and updates the configuration', async () => {
    const srv = startServer({ worker: 'w0' });
    const a = await connectClient(srv);
    const ref = srv.server.ref;
    const fast = vi.spyOn(binding, 'websocketServerSendTo');
    expect(websocketServerSend({ ref, clients: [a.conn], worker: 'w1' }, 'x')[0].success).toBe(true);
    expect(fast).not.toHaveBeenCalled();
    await a.events.waitType('message');
    // The next event the server raises hands back the new worker.
    srv.events.events.length = 0;
    expect(websocketServerSend({ ref, clients: [a.conn] }, 'y')[0].success).toBe(true);
    expect(fast).toHaveBeenCalledTimes(1);
    a.events.events.length = 0;
    await a.events.waitType('message');
    const echo = (await import('../lib/index')).websocketClientSend(a.client, 'ping me');
    expect(echo.success).toBe(true);
    const got = await srv.events.waitType('message', a.conn);
    expect(got.worker).toBe('w1');
  });

  test('several targets and "every connection" keep the general path', async () => {
    const srv = startServer();
    const a = await connectClient(srv);
    const b = await connectClient(srv);
    const fast = vi.spyOn(binding, 'websocketServerSendTo');
    const two = websocketServerSend({ ref: srv.server.ref, clients: [a.conn, b.conn] }, 'both');
    expect(two.map((s) => [s.client, s.success])).toEqual([
      [a.conn, true],
      [b.conn, true],
    ]);
    const all = websocketServerSend({ ref: srv.server.ref }, 'all');
    expect(all.map((s) => s.client).sort()).toEqual([a.conn, b.conn].sort());
    expect(fast).not.toHaveBeenCalled();
  });
});
