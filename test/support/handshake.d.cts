// Types of handshake.cjs (plain CommonJS that child processes require too).
export const GUID: string;
export function acceptKey(key: string): string;
export function requestKey(head: string): string;
export function switchingProtocols(key: string, extra?: Record<string, string>): string;
