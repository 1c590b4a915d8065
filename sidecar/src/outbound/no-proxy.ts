// NO_PROXY as Go reads it (golang.org/x/net/http/httpproxy), which Dapr and
// most Kubernetes tooling follow: comma-separated, case-insensitive; `*`
// sends everything direct; `example.com` matches the host and its
// subdomains, `.example.com` (or `*.example.com`) the subdomains only; an IP
// address or a CIDR block (`10.0.0.0/8`); `:port` after a name or an address
// restricts the entry to that port. Unlike Go there is no implicit exception
// for localhost and loopback addresses (curl has none either): list them.
import { BlockList, isIP } from 'node:net';
import { domainToASCII } from 'node:url';

interface AddressEntry {
  addresses: BlockList;
  port: string | undefined;
}

interface NameEntry {
  /** With its leading dot: `.example.com`. */
  suffix: string;
  /** The name itself matches too (written without a leading dot). */
  matchesItself: boolean;
  port: string | undefined;
}

export class NoProxy {
  private readonly everything: boolean;
  private readonly addresses: AddressEntry[] = [];
  private readonly names: NameEntry[] = [];

  constructor(value: string | undefined) {
    const entries = (value ?? '')
      .split(',')
      .map((entry) => entry.trim().toLowerCase())
      .filter((entry) => entry !== '');
    this.everything = entries.includes('*');
    if (this.everything) return;
    for (const entry of entries) this.add(entry);
  }

  /** Whether a call to `host` (a name, or an address; IPv6 with or without brackets) on `port` goes direct. */
  bypasses(host: string, port: number): boolean {
    if (this.everything) return true;
    const name = unbracketed(host.toLowerCase()).replace(/\.$/, '');
    const portText = String(port);
    const family = isIP(name);
    if (family !== 0) {
      const type = family === 4 ? 'ipv4' : 'ipv6';
      return this.addresses.some(
        (entry) => (entry.port === undefined || entry.port === portText) && entry.addresses.check(name, type),
      );
    }
    return this.names.some(
      (entry) =>
        (entry.port === undefined || entry.port === portText) &&
        (name.endsWith(entry.suffix) || (entry.matchesItself && name === entry.suffix.slice(1))),
    );
  }

  private add(entry: string): void {
    const cidr = /^(.+)\/(\d{1,3})$/.exec(entry);
    if (cidr !== null) {
      const [, address = '', bits = ''] = cidr;
      const family = isIP(address);
      const prefix = Number(bits);
      if (family === 0 || prefix > (family === 4 ? 32 : 128)) return; // not a CIDR block: ignored, as Go does
      const addresses = new BlockList();
      addresses.addSubnet(address, prefix, family === 4 ? 'ipv4' : 'ipv6');
      this.addresses.push({ addresses, port: undefined });
      return;
    }
    const { host, port } = splitPort(entry);
    if (host === '') return;
    const family = isIP(host);
    if (family !== 0) {
      const addresses = new BlockList();
      addresses.addAddress(host, family === 4 ? 'ipv4' : 'ipv6');
      this.addresses.push({ addresses, port });
      return;
    }
    // A URL's host is in punycode (bücher.example is xn--bcher-kva.example): so is the entry.
    const written = (host.startsWith('*.') ? host.slice(1) : host).replace(/\.$/, '');
    const name = written.startsWith('.') ? `.${domainToASCII(written.slice(1))}` : domainToASCII(written);
    if (name === '' || name === '.') return;
    const matchesItself = !name.startsWith('.');
    this.names.push({ suffix: matchesItself ? `.${name}` : name, matchesItself, port });
  }
}

/** `host:port`, `[v6]:port`, or a host alone (a bare IPv6 address has colons but no port). */
function splitPort(entry: string): { host: string; port: string | undefined } {
  const bracketed = /^\[([^\]]*)\](?::(\d+))?$/.exec(entry);
  if (bracketed !== null) return { host: bracketed[1] ?? '', port: bracketed[2] };
  const withPort = /^([^:]*):(\d+)$/.exec(entry);
  if (withPort !== null) return { host: withPort[1] ?? '', port: withPort[2] };
  return { host: entry, port: undefined };
}

const unbracketed = (host: string) => (host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host);
