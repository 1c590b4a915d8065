// Where an outbound call goes: the target's base path + the caller's path +
// its query, or a refusal when the path could leave the base. The checks run
// on the raw request target, before anything is decoded by anyone else.
//
// Rules (docs/api.md, "Outbound calls"):
// - no control characters (raw or percent-encoded) and no backslash (raw or %5C);
// - no empty segment (`//`), so nothing can read as a protocol-relative URL;
// - no `.` or `..` segment once percent-decoded (once, as a server decodes:
//   `%2e%2E` is refused, `%252e%252e` stays the literal text `%2e%2e`),
//   nor one with path parameters (`..;x`: Tomcat, and Spring on it, drop
//   what follows a `;` in a segment before resolving `..`);
//   an encoded slash (`%2F`) is kept (APIs use it inside ids) but the
//   pieces it separates are checked as segments too;
// - no embedded absolute URL (`scheme://` once decoded);
// - percent-encoding must be well formed.
// The query string passes through untouched.

export type PathCheck = { ok: true; path: string } | { ok: false; reason: string };

// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this finds.
const CONTROL = /[\u0000-\u001f\u007f]/;
const ENCODED_FORBIDDEN = /%(?:[01][0-9a-f]|7f|5c)/i;
const BAD_PERCENT = /%(?![0-9a-f]{2})/i;
/** `.` or `..`, alone or with path parameters (`..;x`). */
const DOT_SEGMENT = /^\.{1,2}(?:;|$)/;

/**
 * `rest` is the raw path after `/v1/outbound/{target}` (empty or starting
 * with "/"), `query` the raw query without "?" (or undefined). `basePath` is
 * the target's base path without a trailing slash ("" for the origin's root).
 */
export function upstreamPath(basePath: string, rest: string, query: string | undefined): PathCheck {
  if (rest !== '') {
    const refusal = checkRest(rest);
    if (refusal !== undefined) return { ok: false, reason: refusal };
  }
  const path = basePath + rest || '/';
  return { ok: true, path: query === undefined ? path : `${path}?${query}` };
}

function checkRest(rest: string): string | undefined {
  if (CONTROL.test(rest)) return 'the path has a control character';
  if (rest.includes('\\')) return 'the path has a backslash';
  if (BAD_PERCENT.test(rest)) return 'the path has a malformed percent-encoding';
  if (ENCODED_FORBIDDEN.test(rest)) return 'the path has an encoded control character or backslash';
  const segments = rest.split('/');
  // segments[0] is the empty string before the leading "/"; the last may be empty (a trailing slash).
  for (let i = 1; i < segments.length; i++) {
    const segment = segments[i] as string;
    if (segment === '') {
      if (i === segments.length - 1 && i > 1) continue;
      if (i === 1 && segments.length === 2) continue; // the bare "/"
      return 'the path has an empty segment ("//")';
    }
    for (const piece of decodeStructural(segment).split('/')) {
      if (DOT_SEGMENT.test(piece)) return 'the path has a "." or ".." segment';
    }
  }
  if (/[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(decodeStructural(rest))) return 'the path has an absolute URL in it';
  return undefined;
}

/** Decodes only what shapes a path (".", "/", ":", ";"); one pass, so "%252e" stays "%2e". Never throws. */
const decodeStructural = (text: string) =>
  text.includes('%')
    ? text.replace(/%(2e|2f|3a|3b)/gi, (match) => String.fromCharCode(Number.parseInt(match.slice(1), 16)))
    : text;

/** The base URL's path without its trailing slash: "" for "https://api.example" or "https://api.example/". */
export function basePathOf(baseUrl: URL): string {
  return baseUrl.pathname.replace(/\/+$/, '');
}

/**
 * The path (and query) a redirect leads to when it stays on the target: the
 * same origin, under the base path, and passing the same checks; otherwise
 * undefined (the 3xx then goes back to the app as it is).
 */
export function redirectPath(base: URL, basePath: string, currentPath: string, location: string): string | undefined {
  let next: URL;
  try {
    next = new URL(location, new URL(currentPath, base.origin));
  } catch {
    return undefined;
  }
  if (next.origin !== base.origin) return undefined;
  const { pathname, search } = next;
  if (basePath !== '' && pathname !== basePath && !pathname.startsWith(`${basePath}/`)) return undefined;
  const checked = upstreamPath(basePath, pathname.slice(basePath.length), search === '' ? undefined : search.slice(1));
  return checked.ok ? checked.path : undefined;
}
