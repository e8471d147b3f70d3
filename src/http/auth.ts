// Bearer-token middleware for /api/* and helpers that enforce token roles (SPEC §11b Tokens).
import type { MiddlewareHandler } from 'hono';
import type { Principal, TokenResolver } from '../core/auth.js';
import { AppError } from '../core/errors.js';

export type AuthEnv = { Variables: { principal: Principal } };

export function requireToken(resolver: TokenResolver): MiddlewareHandler<AuthEnv> {
  return async (c, next) => {
    const header = c.req.header('authorization') ?? '';
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match?.[1]) {
      c.header('WWW-Authenticate', 'Bearer');
      throw new AppError('unauthorized', 'Authorization: Bearer <token> is required');
    }
    const principal = await resolver.resolve(match[1]);
    if (!principal) {
      c.header('WWW-Authenticate', 'Bearer error="invalid_token"');
      throw new AppError('unauthorized', 'Unknown or revoked token');
    }
    c.set('principal', principal);
    await next();
  };
}

/** Admin-only routes (settings, accounts, storage, jobs…). */
export function assertAdmin(principal: Principal): void {
  if (principal.role !== 'admin') throw new AppError('forbidden', 'This call needs an admin token');
}

/**
 * The agent a call acts for: an agent token acts as its own agent (another `agentId` → 403);
 * an admin token must name the agent (`agentId`), else 400.
 */
export function actingAgent(principal: Principal, agentId: string | undefined | null): string {
  if (principal.role === 'agent') {
    if (agentId && agentId !== principal.agentId) throw new AppError('forbidden', 'An agent token can only act as its own agent');
    return principal.agentId;
  }
  if (!agentId) throw new AppError('validation_failed', 'agentId is required with an admin token', [{ path: 'agentId', message: 'required with an admin token' }]);
  return agentId;
}
