// Outbound host guard (R-REL-4): admin-entered hosts (IMAP, SMTP, CRM URL, bucket endpoint) must not
// reach loopback, private, link-local or metadata addresses unless ALLOW_PRIVATE_HOSTS allows it.
import { lookup } from 'node:dns/promises';
import ipaddr from 'ipaddr.js';
import { AppError } from '../../core/errors.js';

/** Ranges (ipaddr.js names) that only public addresses fall outside of. */
const BLOCKED_RANGES = new Set([
  'unspecified',
  'broadcast',
  'multicast',
  'linkLocal',
  'loopback',
  'carrierGradeNat',
  'private',
  'reserved',
  'uniqueLocal',
  'ipv4Mapped',
  'rfc6145',
  'rfc6052',
  '6to4',
  'teredo',
  'benchmarking',
  'amt',
  'as112',
  'deprecated',
  'orchid2',
  'droneRemoteIdProtocolEntityTags',
]);

export type AllowPolicy = { kind: 'none' } | { kind: 'all' } | { kind: 'cidrs'; cidrs: [ipaddr.IPv4 | ipaddr.IPv6, number][] };

/** `ALLOW_PRIVATE_HOSTS`: unset/false → none; `true` → all; a comma list of CIDRs → those. */
export function parseAllowPolicy(value: string | undefined): AllowPolicy {
  const v = (value ?? '').trim();
  if (v === '' || v === 'false' || v === '0') return { kind: 'none' };
  if (v === 'true' || v === '1') return { kind: 'all' };
  const cidrs = v.split(',').map((part) => {
    try {
      return ipaddr.parseCIDR(part.trim());
    } catch {
      throw new Error(`ALLOW_PRIVATE_HOSTS: "${part.trim()}" is neither true/false nor a CIDR such as 10.0.0.0/8`);
    }
  });
  return { kind: 'cidrs', cidrs };
}

export function isBlockedAddress(address: string): boolean {
  let addr = ipaddr.parse(address);
  if (addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress()) addr = (addr as ipaddr.IPv6).toIPv4Address();
  return BLOCKED_RANGES.has(addr.range());
}

function allowed(address: string, policy: AllowPolicy): boolean {
  if (policy.kind === 'all') return true;
  if (policy.kind === 'none') return false;
  const addr = ipaddr.process(address);
  return policy.cidrs.some(([net, bits]) => addr.kind() === net.kind() && addr.match(net, bits));
}

export type Resolver = (host: string) => Promise<string[]>;

const dnsResolver: Resolver = async (host) => {
  const results = await lookup(host, { all: true, verbatim: true });
  return results.map((r) => r.address);
};

export interface HostGuard {
  /** Throws a 400 AppError on `field` when the host may not be used; returns the addresses it checked. */
  check(host: string, field: string): Promise<string[]>;
}

export function createHostGuard(policy: AllowPolicy, resolve: Resolver = dnsResolver, timeoutMs = 5000): HostGuard {
  return {
    async check(host, field) {
      const bare = host.trim().replace(/^\[(.*)\]$/, '$1').toLowerCase();
      if (bare === '' || bare.length > 253 || /[\s/\\@?#]/.test(bare)) {
        throw new AppError('validation_failed', `${field}: "${host}" is not a host name`, [{ path: field, message: 'not a valid host name' }]);
      }
      let addresses: string[];
      if (ipaddr.isValid(bare)) addresses = [bare];
      else {
        let timer: ReturnType<typeof setTimeout> | undefined;
        try {
          addresses = await Promise.race([
            resolve(bare),
            new Promise<never>((_, reject) => {
              timer = setTimeout(() => reject(new Error('DNS lookup timed out')), timeoutMs);
            }),
          ]);
        } catch (err) {
          throw new AppError('validation_failed', `${field}: "${host}" does not resolve (${(err as Error).message})`, [
            { path: field, message: 'host does not resolve' },
          ]);
        } finally {
          clearTimeout(timer);
        }
      }
      // Every address must pass: a name resolving to one public and one private address is refused.
      for (const address of addresses) {
        if (isBlockedAddress(address) && !allowed(address, policy)) {
          throw new AppError(
            'validation_failed',
            `${field}: "${host}" resolves to ${address}, a loopback/private/link-local address; set ALLOW_PRIVATE_HOSTS to allow it`,
            [{ path: field, message: 'resolves to a private or loopback address' }],
          );
        }
      }
      return addresses;
    },
  };
}
