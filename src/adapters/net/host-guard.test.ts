// Outbound host guard [R-REL-4]: loopback, private, link-local and metadata addresses refused unless allowed.
import { describe, expect, it } from 'vitest';
import { AppError } from '../../core/errors.js';
import { createHostGuard, isBlockedAddress, parseAllowPolicy } from './host-guard.js';

const fakeDns = (table: Record<string, string[]>) => async (host: string) => {
  const found = table[host];
  if (!found) throw new Error(`getaddrinfo ENOTFOUND ${host}`);
  return found;
};

describe('isBlockedAddress', () => {
  it.each(['127.0.0.1', '10.1.2.3', '172.16.0.1', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '::1', 'fe80::1', 'fd00::1', '::ffff:127.0.0.1', '::ffff:10.0.0.1'])(
    'blocks %s',
    (a) => expect(isBlockedAddress(a)).toBe(true),
  );
  it.each(['8.8.8.8', '1.1.1.1', '2606:4700:4700::1111', '93.184.216.34'])('allows %s', (a) => expect(isBlockedAddress(a)).toBe(false));
});

describe('createHostGuard', () => {
  const dns = fakeDns({
    'imap.example.com': ['93.184.216.34'],
    'internal.example.com': ['10.0.0.5'],
    'mixed.example.com': ['93.184.216.34', '127.0.0.1'],
    'metadata.example.com': ['169.254.169.254'],
  });
  const strict = createHostGuard(parseAllowPolicy(undefined), dns);

  it('lets public hosts through', async () => {
    await expect(strict.check('imap.example.com', 'imap.host')).resolves.toEqual(['93.184.216.34']);
  });
  it.each(['internal.example.com', 'mixed.example.com', 'metadata.example.com', '127.0.0.1', '[::1]', 'localhost'])(
    'refuses %s with a 400 naming the field',
    async (host) => {
      const guard = createHostGuard(parseAllowPolicy('false'), async (h) => (h === 'localhost' ? ['127.0.0.1'] : dns(h)));
      const err = await guard.check(host, 'smtp.host').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AppError);
      expect((err as AppError).code).toBe('validation_failed');
      expect((err as AppError).fields?.[0]?.path).toBe('smtp.host');
    },
  );
  it('refuses names that do not resolve or are not host names', async () => {
    await expect(strict.check('nowhere.invalid', 'imap.host')).rejects.toThrow(/does not resolve/);
    await expect(strict.check('http://x/y', 'imap.host')).rejects.toThrow(/not a host name/);
  });
  it('ALLOW_PRIVATE_HOSTS=true allows everything; a CIDR list allows only those ranges', async () => {
    await expect(createHostGuard(parseAllowPolicy('true'), dns).check('127.0.0.1', 'f')).resolves.toEqual(['127.0.0.1']);
    const cidr = createHostGuard(parseAllowPolicy('10.0.0.0/8'), dns);
    await expect(cidr.check('internal.example.com', 'f')).resolves.toEqual(['10.0.0.5']);
    await expect(cidr.check('127.0.0.1', 'f')).rejects.toThrow(/ALLOW_PRIVATE_HOSTS/);
    expect(() => parseAllowPolicy('not-a-cidr')).toThrow(/ALLOW_PRIVATE_HOSTS/);
  });
  it('times out a DNS lookup that hangs', async () => {
    const guard = createHostGuard(parseAllowPolicy(undefined), () => new Promise(() => undefined), 50);
    await expect(guard.check('slow.example.com', 'imap.host')).rejects.toThrow(/timed out/);
  });
});
