// Who is calling: token roles of SPEC §11b (admin tokens do everything; agent tokens act as their agent).

export type Principal = { role: 'admin'; tokenId: string } | { role: 'agent'; agentId: string; tokenId: string };

/** Resolves a bearer token to a principal, or null when unknown/revoked. */
export interface TokenResolver {
  resolve(token: string): Promise<Principal | null>;
}
