// Types of frames.cjs (plain CommonJS that child processes require too).
export function toBuf(p: Buffer | string | undefined): Buffer;
export function encodeFrame(
  spec: { opcode: number; payload?: Buffer | string; fin?: boolean; rsv?: number; mask?: boolean },
  mask?: boolean,
  key?: Buffer,
): Buffer;
export function closePayload(code: number, reason?: Buffer | string): Buffer;
