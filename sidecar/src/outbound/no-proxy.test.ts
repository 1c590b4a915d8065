// NO_PROXY entries, matched as Go's httpproxy matches them (minus its implicit loopback exception).
import t from 'tap';
import { NoProxy } from './no-proxy.ts';

const direct = (value: string | undefined, host: string, port = 443) => new NoProxy(value).bypasses(host, port);

t.test('nothing set: everything goes through the proxy, loopback too', async (t) => {
  t.notOk(direct(undefined, 'api.example'));
  t.notOk(direct('', 'localhost'));
  t.notOk(direct(' , ', '127.0.0.1'));
});

t.test('* sends everything direct', async (t) => {
  t.ok(direct('*', 'api.example'));
  t.ok(direct('example.org, *', '10.1.2.3'));
});

t.test('a name matches itself and its subdomains, a leading dot or *. only the subdomains', async (t) => {
  t.ok(direct('example.com', 'example.com'));
  t.ok(direct('example.com', 'api.example.com'));
  t.ok(direct('example.com', 'a.b.example.com'));
  t.notOk(direct('example.com', 'notexample.com'), 'a suffix of the name is not a subdomain');
  t.notOk(direct('example.com', 'example.com.evil'));
  t.ok(direct('.example.com', 'api.example.com'));
  t.notOk(direct('.example.com', 'example.com'));
  t.ok(direct('*.example.com', 'api.example.com'));
  t.notOk(direct('*.example.com', 'example.com'));
});

t.test('case, spaces and trailing dots do not matter', async (t) => {
  t.ok(direct(' Example.COM ,other', 'API.example.com'));
  t.ok(direct('example.com.', 'api.example.com'));
  t.ok(direct('example.com', 'api.example.com.'));
});

t.test('addresses and CIDR blocks match addresses, never names', async (t) => {
  t.ok(direct('127.0.0.1', '127.0.0.1'));
  t.notOk(direct('127.0.0.1', '127.0.0.2'));
  t.ok(direct('10.0.0.0/8', '10.20.30.40'));
  t.notOk(direct('10.0.0.0/8', '11.0.0.1'));
  t.ok(direct('192.168.1.0/24', '192.168.1.255'));
  t.ok(direct('::1', '[::1]'), 'IPv6 as a URL writes it, in brackets');
  t.ok(direct('fd00::/8', 'fd12:3456::1'));
  t.notOk(direct('fd00::/8', '::1'));
  t.notOk(direct('10.0.0.0/8', 'ten.example'));
  t.notOk(direct('1.2.3.4', '1.2.3.4.example'), 'an address entry is not a name suffix');
});

t.test(':port restricts an entry to that port', async (t) => {
  t.ok(direct('api.example:8443', 'api.example', 8443));
  t.notOk(direct('api.example:8443', 'api.example', 443));
  t.ok(direct('.example.com:80', 'api.example.com', 80));
  t.notOk(direct('.example.com:80', 'api.example.com', 443));
  t.ok(direct('127.0.0.1:8080', '127.0.0.1', 8080));
  t.notOk(direct('127.0.0.1:8080', '127.0.0.1', 8081));
  t.ok(direct('[::1]:8080', '::1', 8080));
  t.notOk(direct('[::1]:8080', '::1', 80));
});

t.test('malformed entries are ignored, the others still apply', async (t) => {
  t.notOk(direct('10.0.0.0/99,:80,.,*.', '10.0.0.1'));
  t.ok(direct('10.0.0.0/99, internal', 'db.internal'));
});

t.test('a name written in Unicode matches the URL’s punycode host', async (t) => {
  const host = new URL('https://bücher.example/').hostname;
  t.ok(direct('bücher.example', host));
  t.ok(direct('.bücher.example', new URL('https://api.bücher.example/').hostname));
  t.notOk(direct('bücher.example', 'bucher.example'));
});
