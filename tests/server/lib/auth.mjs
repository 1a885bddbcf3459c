// OAuth2 client credentials and bearer-token checks. Faked by the harness (the real server's
// oauth module needs PostgreSQL and Redis), but with the real server's wire shapes: the token
// response of packages/server/src/oauth/token.ts and its `{error, error_description}` errors.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

const SIGNING_KEY = randomBytes(32);

function b64url(input) {
  return Buffer.from(input).toString('base64url');
}

/** Signs an HS256 JWT, so clients that read `exp` from the token see a real value. */
export function signJwt(claims) {
  const header = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const payload = b64url(JSON.stringify(claims));
  const signature = createHmac('sha256', SIGNING_KEY).update(`${header}.${payload}`).digest('base64url');
  return `${header}.${payload}.${signature}`;
}

/** Returns the claims of a token this server signed, or undefined for anything else. */
export function verifyJwt(token) {
  const parts = token.split('.');
  if (parts.length !== 3) {
    return undefined;
  }
  const expected = createHmac('sha256', SIGNING_KEY).update(`${parts[0]}.${parts[1]}`).digest();
  const actual = Buffer.from(parts[2], 'base64url');
  if (actual.length !== expected.length || !timingSafeEqual(actual, expected)) {
    return undefined;
  }
  try {
    return JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
}

export function safeEqual(a, b) {
  const x = Buffer.from(String(a));
  const y = Buffer.from(String(b));
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * Reads client_id / client_secret from a token request: Basic auth header first, then the form
 * body (the order of getClientIdAndSecret in the real server).
 */
export function clientCredentials(headers, form) {
  const auth = headers.authorization;
  if (auth) {
    if (!auth.startsWith('Basic ')) {
      return { error: 'Invalid authorization header' };
    }
    const decoded = Buffer.from(auth.slice(6), 'base64').toString('utf8');
    const sep = decoded.indexOf(':');
    return { clientId: decoded.slice(0, sep < 0 ? undefined : sep), clientSecret: sep < 0 ? '' : decoded.slice(sep + 1) };
  }
  return { clientId: form.get('client_id') ?? undefined, clientSecret: form.get('client_secret') ?? undefined };
}
