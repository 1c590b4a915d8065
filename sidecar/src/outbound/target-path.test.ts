// What may follow /v1/outbound/{target}: nothing can leave the target's base path.
import t from 'tap';
import { redirectPath, upstreamPath } from './target-path.ts';

t.test('a path and query are appended to the base path', async (t) => {
  t.same(upstreamPath('/api', '/items/42', 'x=1&y=%2F'), { ok: true, path: '/api/items/42?x=1&y=%2F' });
  t.same(upstreamPath('/api', '', undefined), { ok: true, path: '/api' });
  t.same(upstreamPath('', '', undefined), { ok: true, path: '/' });
  t.same(upstreamPath('', '/', undefined), { ok: true, path: '/' });
  t.same(upstreamPath('/api', '/items/', undefined), { ok: true, path: '/api/items/' });
  t.same(
    upstreamPath('', '/a:b/c', 'q=http://x'),
    { ok: true, path: '/a:b/c?q=http://x' },
    'colons and URLs in the query are fine',
  );
  t.same(upstreamPath('', '/projects/group%2Fproject', undefined), {
    ok: true,
    path: '/projects/group%2Fproject',
  });
  t.same(
    upstreamPath('', '/%252e%252e/etc', undefined),
    { ok: true, path: '/%252e%252e/etc' },
    'double-encoded stays literal',
  );
  t.same(upstreamPath('', '/a..b/.well-known/...', undefined), { ok: true, path: '/a..b/.well-known/...' });
  t.same(upstreamPath('', '/items;v=2/..a;b', undefined), { ok: true, path: '/items;v=2/..a;b' }, 'path parameters');
});

t.test('anything that could leave the base is refused', async (t) => {
  const refused = [
    '/..',
    '/../etc/passwd',
    '/a/../../b',
    '/./a',
    '/a/.',
    '/%2e%2e/x',
    '/%2E./x',
    '/.%2e/x',
    '/%2e/x',
    '/a/..%2fb',
    '/a/%2e%2e%2Fb',
    '//evil.example/x',
    '/a//b',
    '/a\\..\\b',
    '/a%5c..%5cb',
    '/http://evil.example/',
    '/http:%2F%2Fevil.example',
    '/a%00b',
    '/a%0d%0aX-Injected:%201',
    '/a\u0001b',
    '/a%zzb',
    '/a%2',
    // Path parameters: Tomcat (and Spring on it) drop ";..." from a segment before resolving "..".
    '/..;/admin',
    '/a/..;jsessionid=1/..;/b',
    '/%2e%2e;x/admin',
    '/..%3B/admin',
    '/.;/a',
  ];
  for (const rest of refused) {
    const result = upstreamPath('/api', rest, undefined);
    t.equal(result.ok, false, `${JSON.stringify(rest)} is refused`);
  }
});

t.test('redirects are followed only on the same origin under the base path', async (t) => {
  const base = new URL('http://api.example:8080/v2');
  t.equal(redirectPath(base, '/v2', '/v2/a/b', '/v2/c?x=1'), '/v2/c?x=1');
  t.equal(redirectPath(base, '/v2', '/v2/a/b', 'c'), '/v2/a/c', 'relative to the current path');
  t.equal(redirectPath(base, '/v2', '/v2/a/b', 'http://api.example:8080/v2/d'), '/v2/d');
  t.equal(redirectPath(base, '/v2', '/v2/a/b', '/v1/c'), undefined, 'outside the base path');
  t.equal(redirectPath(base, '/v2', '/v2/a/b', '/v22/c'), undefined, 'a sibling that shares the prefix');
  t.equal(redirectPath(base, '/v2', '/v2/a/b', '../../v1'), undefined);
  t.equal(redirectPath(base, '/v2', '/v2/a/b', 'http://evil.example/v2/c'), undefined, 'another host');
  t.equal(redirectPath(base, '/v2', '/v2/a/b', 'https://api.example:8080/v2/c'), undefined, 'another scheme');
  t.equal(redirectPath(base, '/v2', '/v2/a/b', '//evil.example/v2'), undefined);
  t.equal(redirectPath(base, '/v2', '/v2/a/b', 'http://[bad'), undefined);
});
