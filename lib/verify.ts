// verifyClient, run for the native side: the server holds a connection's
// handshake on its IO thread and raises a Verify event; native delivery calls
// runVerifyClient with the hook, the request's info and a token, and the
// verdict goes back through websocketServerAnswerVerify (the 101, or the
// refusal, is written then). The hook may answer synchronously or with a
// Promise; whatever it throws or rejects with refuses the connection with
// 500 and is reported as an IxWebSocketWarning (it is not an uncaught
// exception: the server keeps serving). A hook that never settles leaves
// the connection to the server's handshakeTimeout.
import { binding } from './binding';
import type { VerifyClient, VerifyClientAnswer, VerifyClientInfo } from './types';

function warn(ref: number, err: unknown): void {
  const why = err instanceof Error ? err.message : String(err);
  process.emitWarning(
    `ix-websocket: verifyClient of server ${ref} failed (${why}); the connection was refused with 500`,
    {
      type: 'IxWebSocketWarning',
      code: 'IXWS_VERIFY_CLIENT_FAILED',
      detail: err instanceof Error && err.stack ? err.stack : undefined,
    },
  );
}

/** The hook's result as the native answer; a TypeError for anything else. */
function toAnswer(result: unknown, info: VerifyClientInfo): VerifyClientAnswer {
  if (result === true) return { accept: true };
  if (result === false) return { accept: false, status: 401 };
  if (result === null || typeof result !== 'object') {
    throw new TypeError(
      'verifyClient must return (or resolve to) true, false or { accept, status?, message?, headers?, protocol? }',
    );
  }
  const r = result as Partial<VerifyClientAnswer>;
  if (typeof r.accept !== 'boolean') throw new TypeError('verifyClient result: accept must be a boolean');
  const answer: VerifyClientAnswer = { accept: r.accept };
  if (r.status !== undefined) {
    if (!Number.isInteger(r.status) || r.status < 400 || r.status > 599) {
      throw new TypeError('verifyClient result: status must be an integer between 400 and 599');
    }
    answer.status = r.status;
  }
  if (r.message !== undefined) answer.message = r.message;
  if (r.headers !== undefined && r.headers !== null && typeof r.headers === 'object' && !Array.isArray(r.headers)) {
    const given: Record<string, string | undefined> = r.headers;
    const kept: Record<string, string> = {};
    for (const name of Object.keys(given)) {
      const value = given[name];
      // Defined, not assigned: a header named __proto__ stays a header.
      // Anything else than a string reaches the native side, which refuses it.
      if (value !== undefined) Object.defineProperty(kept, name, { value, enumerable: true, writable: true, configurable: true });
    }
    answer.headers = kept;
  } else if (r.headers !== undefined) {
    answer.headers = r.headers; // not a plain object: refused by the native side, with its message
  }
  if (r.protocol !== undefined && r.protocol !== null) {
    // RFC 6455 §4.2.2: only a protocol the client offered may be answered
    // (the client would fail the connection on any other).
    if (typeof r.protocol !== 'string') throw new TypeError('verifyClient result: protocol must be a string');
    if (r.protocol !== '' && !info.protocols.includes(r.protocol)) {
      throw new TypeError(
        `verifyClient result: protocol "${r.protocol}" was not offered by the client ` +
          `(offered: ${info.protocols.length ? info.protocols.join(', ') : 'none'})`,
      );
    }
    answer.protocol = r.protocol;
  }
  return answer;
}

function runVerifyClient(hook: VerifyClient, info: VerifyClientInfo, ref: number, token: number, owner: number): void {
  const send = (answer: VerifyClientAnswer): void => {
    // owner: the engine that asked; the answer is dropped if the ref now
    // belongs to another server (this one cleared while the hook ran).
    binding.websocketServerAnswerVerify({ ref }, token, answer, owner);
  };
  const refuse = (err: unknown): void => {
    try {
      send({ accept: false, status: 500 });
    } catch {
      // the server is gone: nothing to answer
    }
    warn(ref, err);
  };
  const settle = (result: unknown): void => {
    try {
      send(toAnswer(result, info));
    } catch (err) {
      refuse(err);
    }
  };
  let result: unknown;
  try {
    result = hook(info);
  } catch (err) {
    refuse(err);
    return;
  }
  if (result !== null && typeof result === 'object' && typeof (result as PromiseLike<unknown>).then === 'function') {
    (result as PromiseLike<unknown>).then(settle, refuse);
  } else {
    settle(result);
  }
}

binding.setVerifyHandler(runVerifyClient);
