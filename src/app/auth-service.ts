// Checks bearer tokens: admin tokens by constant-time digest comparison, then any extra resolver (agent tokens).
import type { Principal, TokenResolver } from '../core/auth.js';
import { constantTimeEqual } from '../core/constant-time.js';

async function sha256(text: string): Promise<Uint8Array> {
  return new Uint8Array(await globalThis.crypto.subtle.digest('SHA-256', new TextEncoder().encode(text)));
}

export class AuthService implements TokenResolver {
  private readonly adminDigests: Promise<Uint8Array[]>;

  /** `adminTokens`: every accepted admin token (ADMIN_TOKEN may list several, comma-separated, for rotation). */
  constructor(
    adminTokens: string[],
    private readonly others: TokenResolver[] = [],
  ) {
    if (adminTokens.length === 0 || adminTokens.some((t) => t.length < 16)) {
      throw new Error('admin tokens must be at least 16 characters');
    }
    this.adminDigests = Promise.all(adminTokens.map(sha256));
  }

  async resolve(token: string): Promise<Principal | null> {
    if (token.length === 0 || token.length > 512) return null;
    const digest = await sha256(token);
    const admins = await this.adminDigests;
    let match = -1;
    // Compare against every admin token (no early exit), so timing does not tell which one matched.
    admins.forEach((candidate, i) => {
      if (constantTimeEqual(candidate, digest)) match = i;
    });
    if (match >= 0) return { role: 'admin', tokenId: `admin-${match + 1}` };
    for (const other of this.others) {
      const principal = await other.resolve(token);
      if (principal) return principal;
    }
    return null;
  }
}
