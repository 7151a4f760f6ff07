// Client urls mean what WHATWG URL (Node's URL, as in browsers) says they
// mean: every url that enters a client command (creation, start, stop, send,
// clear; the classes go through them) is replaced by `new URL(url).href`
// before the native side sees it. The engine's own parser then reads that
// normalised form (punycode hosts, decimal IPv4, shortest IPv6, resolved dot
// segments, percent-encoding) exactly as WHATWG does, and refuses anything
// WHATWG would read another way when called directly. A string that URL
// cannot parse is passed on as it is: the engine refuses it and the start
// fails with a status (success false, errorStr), as for any invalid url.

// A few recent results: the same url rides on every command of a client
// object (sends included), so each is parsed once.
const seen = new Map<string, string>();
const SEEN_MAX = 64;

/** `new URL(url).href`, or `url` itself when it does not parse. */
export function whatwgHref(url: string): string {
  const hit = seen.get(url);
  if (hit !== undefined) return hit;
  let href = url;
  try {
    href = new URL(url).href;
  } catch {
    // not a URL: the engine refuses it with its reason
  }
  if (seen.size >= SEEN_MAX) seen.clear();
  seen.set(url, href);
  return href;
}

/** The argument with its `url` (if a string) normalised; the same object when nothing changes. */
export function withWhatwgUrl<T>(arg: T): T {
  if (arg === null || typeof arg !== 'object') return arg;
  const url = (arg as { url?: unknown }).url;
  if (typeof url !== 'string') return arg;
  const href = whatwgHref(url);
  return href === url ? arg : { ...arg, url: href };
}
