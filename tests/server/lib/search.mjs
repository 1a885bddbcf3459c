// Search matching the MemoryRepository (core's matchesSearchRequest) does differently from
// Medplum 5.0.10's SQL search (packages/server/src/fhir/search.ts, sql.ts and lookups/ at the
// tag), done here the way the server's queries match:
//   - chained search, forward (`subject:Patient.name=x`) and reverse (`_has:Observation:subject:code=x`),
//     parsed as parseChainedParameter (search.ts:1748-1851): nested and mixed chains up to three
//     links, the server's 400s for a malformed chain;
//   - string parameters: the default search is a case-insensitive prefix of the whole value
//     (a column, search.ts:1229-1241) or of a word (the HumanName and Address lookup tables,
//     lookuptable.ts:150-205, to_tsvector('simple')), `:exact` a case-sensitive whole-value
//     equality;
//   - uri parameters (`url`, `_profile`): the whole value, case-sensitive;
//   - number and quantity parameters: the DOUBLE PRECISION (INTEGER for priority-order) column
//     of repo.ts:1844-1851 compared with the SQL operator of the prefix (search.ts:1049-1057,
//     1447-1471, 1530-1550), and the server's 400s for a value PostgreSQL refuses;
//   - `:missing` / `:present` on a name or address parameter: a word search for its value
//     (the lookup table's buildWhere has no presence case, lookuptable.ts:150-205);
//   - `:in` / `:not-in`: a 400 "Invalid modifier" on coded, boolean, id, reference and date
//     parameters (the server implements neither; core's matcher took them as an equality);
//   - uri `:above` / `:below`: an equality, as the server's buildCondition ignores them;
//   - a date or boolean parameter on a repeating element (an array column): PostgreSQL's 400
//     'malformed array literal' for any value, as for an array quantity; a boolean parameter's
//     400 for a value other than `true` / `false`.
// Core's matcher took every string and uri search as a case-insensitive substring, and matched
// no number or quantity parameter at all.
// Every other filter is left to the MemoryRepository.
import {
  FhirFilterComparison,
  FhirFilterConnective,
  FhirFilterNegation,
  OperationOutcomeError,
  Operator,
  badRequest,
  convertToSearchableDates,
  convertToSearchableNumbers,
  convertToSearchableQuantities,
  convertToSearchableStrings,
  convertToSearchableTokens,
  convertToSearchableUris,
  evalFhirPathTyped,
  flatMapFilter,
  formatAddress,
  formatFamilyName,
  formatGivenName,
  formatHumanName,
  getSearchParameter,
  getSearchParameterDetails,
  invalidSearchOperator,
  matchesSearchRequest,
  parseFilterParameter,
  parseParameter,
  splitN,
  splitSearchOnComma,
  toTypedValue,
} from '@medplum/core';

/** Whether the harness matches this filter itself rather than the MemoryRepository. */
export function isHarnessFilter(resourceType, filter) {
  if (isChained(filter) || filter.code === '_filter') {
    return true;
  }
  if (refusedMembershipOperator(resourceType, filter) || refusedByColumn(resourceType, filter)) {
    return true;
  }
  const param = getSearchParameter(resourceType, filter.code);
  if (param?.type === 'uri') {
    return URI_EQUALITY.includes(filter.operator);
  }
  if (param?.type === 'number' || param?.type === 'quantity' || param?.type === 'date') {
    return true;
  }
  if (isCaseSensitiveTokenFilter(resourceType, param, filter)) {
    return true;
  }
  if (param?.type === 'string' && isPresenceFilter(filter)) {
    // A name or address parameter's :missing is a word search on the server (lookuptable.ts:150-205).
    return lookupValues({ resourceType }, param) !== undefined;
  }
  return param?.type === 'string';
}

function isPresenceFilter(filter) {
  return filter.operator === Operator.MISSING || filter.operator === Operator.PRESENT;
}

/**
 * A uri parameter is a column compared with `=` (search.ts:1038-1043 to buildTokenSearchFilter,
 * then buildCondition, search.ts:1553-1570, which negates for :not / :ne and otherwise ignores the
 * operator): :above and :below are an equality on Medplum 5.0.10.
 */
const URI_EQUALITY = [Operator.EQUALS, Operator.NOT, Operator.NOT_EQUALS, Operator.ABOVE, Operator.BELOW];

/**
 * The 400 Medplum 5.0.10 answers for `:in` / `:not-in`, or undefined where it takes them (a plain
 * code or uri column ignores the operator, buildCondition; strings are checkStringFilter's).
 * Coded, identifier and telecom tokens are token columns (getTokenIndexType, tokens.ts:35-83) and
 * refuse them with the parameter's id (token-column.ts:239-254); booleans (search.ts:1292-1294),
 * `_id` / `_compartment` (buildIdSearchFilter, search.ts:1252-1254), references
 * (search.ts:1318-1320) and dates (`_lastUpdated` included, search.ts:1394-1396) with its code.
 */
function refusedMembershipOperator(resourceType, filter) {
  if (filter.operator !== Operator.IN && filter.operator !== Operator.NOT_IN) {
    return undefined;
  }
  if (['_id', '_compartment', '_lastUpdated'].includes(filter.code)) {
    return invalidSearchOperator(filter.operator, filter.code);
  }
  const param = getSearchParameter(resourceType, filter.code);
  if (param?.type === 'reference' || param?.type === 'date') {
    return invalidSearchOperator(filter.operator, filter.code);
  }
  if (param?.type !== 'token') {
    return undefined;
  }
  const details = getSearchParameterDetails(resourceType, param);
  const tokenColumn =
    param.code.endsWith(':identifier') ||
    (details.elementDefinitions ?? []).some((element) =>
      (element.type ?? []).some((type) => TOKEN_COLUMN_TYPES.includes(type.code))
    );
  if (tokenColumn) {
    return invalidSearchOperator(filter.operator, param.id ?? param.code);
  }
  if (details.type === 'BOOLEAN') {
    return invalidSearchOperator(filter.operator, filter.code);
  }
  return undefined;
}

const TOKEN_COLUMN_TYPES = ['ContactPoint', 'Identifier', 'CodeableConcept', 'Coding'];

/**
 * The 400 of a date or boolean search on an array column (core's details `array`: a repeating
 * element on the path, `MedicationRequest?date` = dosageInstruction.timing.event,
 * `Group?exclude` = characteristic.exclude): buildDateSearchFilter (search.ts:1389-1440) and
 * buildBooleanSearchFilter (search.ts:1287-1310) compare the whole column with the value, with
 * no ArraySubquery, so PostgreSQL refuses the value as an array ('malformed array literal',
 * answered 400). `:missing` / `:present` are a column test (search.ts:1029-1033) and work; a
 * boolean's value is checked first (search.ts:1295-1297).
 */
function refusedByColumn(resourceType, filter) {
  if (isPresenceFilter(filter) || filter.code === '_lastUpdated') {
    return undefined;
  }
  const param = getSearchParameter(resourceType, filter.code);
  if (param?.type === 'token' && getSearchParameterDetails(resourceType, param).type === 'BOOLEAN') {
    // buildBooleanSearchFilter (search.ts:1295-1297), before any SQL: core's matcher took any value.
    if (!['true', 'false'].includes(filter.value)) {
      return badRequest(`Boolean search value must be 'true' or 'false'`);
    }
  }
  if ((param?.type !== 'date' && param?.type !== 'token') || !getSearchParameterDetails(resourceType, param).array) {
    return undefined;
  }
  if (param.type === 'token' && getSearchParameterDetails(resourceType, param).type !== 'BOOLEAN') {
    return undefined;
  }
  return badRequest(`malformed array literal: "${filter.value}"`);
}

function isChained(filter) {
  // search.ts:917-919 (isChainedSearchFilter)
  return filter.code.startsWith('_has:') || filter.code.includes('.');
}

/**
 * A predicate `(resource) => boolean` for one filter of a search of `resourceType`, or a thrown
 * 400 where the server refuses the filter (a malformed chain, an unsupported operator).
 * @param {Map<string, Map<string, object>>} resources - the stored resources by type and id
 */
export function compileFilter(resources, resourceType, filter) {
  if (filter.code === '_filter') {
    // search.ts:1152-1203 at v5.0.10: the expression (parseFilterParameter) becomes the filters
    // it names, joined with AND / OR / NOT; each comparison is searched as that parameter.
    return compileFilterExpression(resources, resourceType, parseFilterParameter(filter.value));
  }
  if (isChained(filter)) {
    const chain = parseChainedParameter(resourceType, filter);
    // buildChainedSearch (search.ts:1572-1596)
    if (chain.links.length > 3) {
      throw new OperationOutcomeError(badRequest('Search chains longer than three links are not currently supported'));
    }
    const first = chain.links[0];
    if (chain.links.length === 1 && chain.filter.code === '_id' && first.direction === 'forward') {
      // search.ts:1582-1592: `param._id=<id>` is rewritten as `param=Type/<id>` (the target need not exist).
      const rewritten = { code: first.code, operator: Operator.EQUALS, value: `${first.targetType}/${chain.filter.value}` };
      return (resource) => matchesFilter(resource, rewritten);
    }
    return (resource) => matchesChain(resources, resource, chain.links, chain.matches);
  }
  return compileLocalFilter(resourceType, filter);
}

/**
 * buildFilterParameterExpression (search.ts:1159-1175): a negation, an `and` / `or` of two
 * expressions, or a comparison searched as `{code: path, operator, value}` (an unknown
 * parameter is 400 `Unknown search parameter: <path>`). SQL's NULL logic under `not`: a
 * comparison on a column (date, number, quantity) is NULL for a resource without the value, and
 * NOT NULL is not true, so `not (birthdate ge 2000-01-01)` leaves out a Patient without a
 * birthDate; a token or string comparison is an EXISTS, whose negation keeps it.
 */
function compileFilterExpression(resources, resourceType, expression) {
  if (expression instanceof FhirFilterNegation) {
    const child = compileFilterExpression(resources, resourceType, expression.child);
    const param = expression.child instanceof FhirFilterComparison ? getSearchParameter(resourceType, expression.child.path) : undefined;
    if (param && ['date', 'number', 'quantity'].includes(param.type)) {
      const present = compileFilter(resources, resourceType, { code: expression.child.path, operator: Operator.MISSING, value: 'false' });
      return (resource) => present(resource) && !child(resource);
    }
    return (resource) => !child(resource);
  }
  if (expression instanceof FhirFilterConnective) {
    const left = compileFilterExpression(resources, resourceType, expression.left);
    const right = compileFilterExpression(resources, resourceType, expression.right);
    return expression.keyword === 'and' ? (r) => left(r) && right(r) : (r) => left(r) || right(r);
  }
  if (expression instanceof FhirFilterComparison) {
    if (!isChained({ code: expression.path }) && !getSearchParameter(resourceType, expression.path)) {
      throw new OperationOutcomeError(badRequest(`Unknown search parameter: ${expression.path}`));
    }
    return compileFilter(resources, resourceType, { code: expression.path, operator: expression.operator, value: expression.value });
  }
  throw new OperationOutcomeError(badRequest('Unknown filter expression type'));
}

/**
 * The predicate of a filter on the searched type itself (or the last parameter of a chain):
 * numbers and quantities compiled here, strings checked for the operators the server takes.
 */
function compileLocalFilter(resourceType, filter) {
  const refused = refusedMembershipOperator(resourceType, filter) ?? refusedByColumn(resourceType, filter);
  if (refused) {
    throw new OperationOutcomeError(refused);
  }
  const param = getSearchParameter(resourceType, filter.code);
  if (param?.type === 'number' || param?.type === 'quantity') {
    return compileNumericFilter(resourceType, param, filter);
  }
  if (param?.type === 'date') {
    return compileDateFilter(resourceType, param, filter);
  }
  if (isCaseSensitiveTokenFilter(resourceType, param, filter)) {
    return compileTokenEqualsFilter(resourceType, param, filter);
  }
  checkStringFilter(resourceType, filter);
  return (resource) => matchesFilter(resource, filter);
}

// --- chains ----------------------------------------------------------------------------------------

/** parseChainedParameter (search.ts:1748-1783): the links and the terminal filter. */
function parseChainedParameter(resourceType, searchFilter) {
  let currentType = resourceType;
  const parts = splitChainedSearch(searchFilter.code);
  const links = [];
  let filter;
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i];
    if (part.startsWith('_has')) {
      const link = parseReverseChainLink(part, currentType);
      links.push(link);
      currentType = link.targetType;
    } else if (i === parts.length - 1) {
      const [code, modifier] = splitN(part, ':', 2);
      if (code === '_filter') {
        throw new OperationOutcomeError(badRequest('_filter at the end of a chain is not supported by the test server'));
      }
      const searchParam = getSearchParameter(currentType, code);
      if (!searchParam) {
        throw new Error(`Invalid search parameter at end of chain: ${currentType}?${code}`);
      }
      // 5.0.10's parseParameter(param, modifier, value) is (param, EQUALS, modifier, value) in 5.2.13.
      filter = parseParameter(searchParam, Operator.EQUALS, modifier ?? searchFilter.operator, searchFilter.value);
    } else {
      const link = parseChainLink(part, currentType);
      links.push(link);
      currentType = link.targetType;
    }
  }
  if (!filter) {
    throw new OperationOutcomeError(badRequest('Unterminated chained search'));
  }
  return { links, filter, matches: compileLocalFilter(currentType, filter) };
}

/** parseChainLink (search.ts:1785-1804): `code[:Type]` to the referenced type. */
function parseChainLink(part, currentType) {
  const [code, modifier] = splitN(part, ':', 2);
  const searchParam = getSearchParameter(currentType, code);
  if (!searchParam) {
    throw new Error(`Invalid search parameter in chain: ${currentType}?${code}`);
  }
  let targetType;
  if (searchParam.target?.length === 1) {
    targetType = searchParam.target[0];
  } else if (searchParam.target?.includes(modifier)) {
    targetType = modifier;
  } else {
    throw new Error(`Unable to identify next resource type for search parameter: ${currentType}?${code}`);
  }
  if (searchParam.type !== 'reference') {
    throw new Error(`Invalid search parameter in chain: ${currentType}?${code}`);
  }
  return { direction: 'forward', code, param: searchParam, targetType };
}

/** parseReverseChainLink (search.ts:1806-1827): `_has:Type:code`, Type's `code` referring to the current type. */
function parseReverseChainLink(part, currentType) {
  const [, resourceType, code] = splitN(part, ':', 3);
  const searchParam = getSearchParameter(resourceType, code);
  if (!searchParam) {
    throw new Error(`Invalid search parameter in chain: ${resourceType}?${code}`);
  } else if (!searchParam.target?.includes(currentType)) {
    throw new Error(`Invalid reverse chain link: search parameter ${resourceType}?${code} does not refer to ${currentType}`);
  }
  if (searchParam.type !== 'reference') {
    throw new Error(`Invalid search parameter in chain: ${resourceType}?${code}`);
  }
  return { direction: 'reverse', code, param: searchParam, targetType: resourceType };
}

/** splitChainedSearch (search.ts:1829-1851). */
function splitChainedSearch(chain) {
  const params = [];
  while (chain) {
    if (chain.slice(0, 5) === '_has:') {
      const typeDelim = chain.indexOf(':', 5);
      const codeDelim = chain.indexOf(':', typeDelim + 1);
      if (typeDelim < 0 || typeDelim >= codeDelim) {
        throw new Error('Invalid search chain: ' + chain);
      }
      params.push(chain.slice(0, codeDelim));
      chain = chain.slice(codeDelim + 1);
    } else {
      let nextDot = chain.indexOf('.');
      if (nextDot === -1) {
        nextDot = chain.length;
      }
      params.push(chain.slice(0, nextDot));
      chain = chain.slice(nextDot + 1);
    }
  }
  return params;
}

/**
 * The EXISTS subquery of buildChainedSearchUsingReferenceTable (search.ts:1608-1647): a forward
 * link follows the resource's references (by id, as the `<Type>_References` table joins) to
 * stored resources of the target type; a reverse link looks for stored resources of its type
 * whose parameter refers to this one. A canonical (string) value joins on `url`. Deleted
 * resources are not stored, so they take part in no chain.
 */
function matchesChain(resources, resource, links, matches) {
  if (links.length === 0) {
    return matches(resource);
  }
  const [link, ...rest] = links;
  if (link.direction === 'forward') {
    for (const { canonical, ref } of referencesOf(resource, link.param)) {
      const candidates = canonical
        ? [...(resources.get(link.targetType)?.values() ?? [])].filter((r) => r.url === ref)
        : [resources.get(link.targetType)?.get(idOf(ref))].filter(Boolean);
      if (candidates.some((target) => matchesChain(resources, target, rest, matches))) {
        return true;
      }
    }
    return false;
  }
  for (const candidate of resources.get(link.targetType)?.values() ?? []) {
    const refers = referencesOf(candidate, link.param).some(({ canonical, ref }) =>
      canonical ? Boolean(resource.url) && ref === resource.url : idOf(ref) === resource.id
    );
    if (refers && matchesChain(resources, candidate, rest, matches)) {
      return true;
    }
  }
  return false;
}

/** The references a parameter finds in a resource; a canonical (a string, not a Reference) joins on `url`. */
function referencesOf(resource, param) {
  const result = [];
  for (const { value } of evalFhirPathTyped(param.expression, [toTypedValue(resource)])) {
    if (typeof value === 'string') {
      result.push({ canonical: true, ref: value });
    } else if (typeof value?.reference === 'string') {
      result.push({ canonical: false, ref: value.reference });
    }
  }
  return result;
}

function idOf(ref) {
  return ref.split('/_history/')[0].split('/').pop();
}

// --- strings ---------------------------------------------------------------------------------------

/** HumanName lookup table (lookups/humanname.ts:45-56): these parameters of these types. */
const HUMAN_NAME_PARAMS = new Set(['individual-given', 'individual-family', 'Patient-name', 'Person-name', 'Practitioner-name', 'RelatedPerson-name']);
const HUMAN_NAME_TYPES = new Set(['Patient', 'Person', 'Practitioner', 'RelatedPerson']);
/** Address lookup table (lookups/address.ts:24-66). */
const ADDRESS_TYPES = new Set(['Patient', 'Person', 'Practitioner', 'RelatedPerson', 'InsurancePlan', 'Location', 'Organization']);
const ADDRESS_PARAM_PREFIXES = ['individual-', 'InsurancePlan-', 'Location-', 'Organization-'];
const ADDRESS_CODES = new Set(['address', 'address-city', 'address-country', 'address-postalcode', 'address-state', 'address-use']);

/** A lookup table's rows for the parameter (one string per name or address), or undefined for a column. */
function lookupValues(resource, param) {
  const type = resource.resourceType;
  if (HUMAN_NAME_TYPES.has(type) && HUMAN_NAME_PARAMS.has(param.id)) {
    // humanname.ts:86-120: name (formatHumanName plus the words of `text`), given, family.
    return (Array.isArray(resource.name) ? resource.name : []).filter(Boolean).map((name) => {
      if (param.code === 'given') {
        return formatGivenName(name);
      }
      if (param.code === 'family') {
        return formatFamilyName(name);
      }
      return nameString(name);
    });
  }
  const isAddressParam =
    ADDRESS_TYPES.has(type) && ADDRESS_CODES.has(param.code) && ADDRESS_PARAM_PREFIXES.some((p) => param.id === p + param.code);
  if (isAddressParam) {
    // address.ts:109-147 and getIncomingAddresses (162-185).
    let addresses;
    if (type === 'InsurancePlan') {
      addresses = (resource.contact ?? []).map((c) => c?.address);
    } else if (type === 'Location') {
      addresses = [resource.address];
    } else {
      addresses = resource.address;
    }
    const field = param.code === 'address' ? undefined : param.code === 'address-postalcode' ? 'postalCode' : param.code.slice('address-'.length);
    return (Array.isArray(addresses) ? addresses : [])
      .filter(Boolean)
      .map((a) => (field ? a[field]?.trim() : formatAddress(a)) || undefined);
  }
  return undefined;
}

/** getNameString (lookups/humanname.ts:184-200). */
function nameString(name) {
  let result = formatHumanName(name);
  if (name.text) {
    const words = (s) => new Set((typeof s === 'string' ? s : '').toLowerCase().split(/\s+/).filter(Boolean));
    const have = words(result);
    for (const token of words(name.text)) {
      if (!have.has(token)) {
        result += ' ' + token;
        have.add(token);
      }
    }
  }
  return result;
}

/** The operators the server takes on a string parameter (400 otherwise), checked before matching. */
function checkStringFilter(resourceType, filter) {
  const param = getSearchParameter(resourceType, filter.code);
  if (param?.type !== 'string') {
    return;
  }
  const lookup = lookupValues({ resourceType }, param) !== undefined;
  if (!lookup && isPresenceFilter(filter)) {
    return;
  }
  if (lookup) {
    // lookuptable.ts:157-159
    if (filter.operator === Operator.IN || filter.operator === Operator.NOT_IN) {
      throw new OperationOutcomeError(invalidSearchOperator(filter.operator, filter.code));
    }
    return;
  }
  // buildStringFilterExpression (search.ts:1229-1241): exact, contains and the default prefix only.
  if (![Operator.EXACT, Operator.CONTAINS, Operator.EQUALS, Operator.STARTS_WITH].includes(filter.operator)) {
    throw new OperationOutcomeError(badRequest('Unsupported string search operator: ' + filter.operator));
  }
}

/** One filter on one resource: strings as the server's SQL, anything else with core's matcher. */
function matchesFilter(resource, filter) {
  const param = getSearchParameter(resource.resourceType, filter.code);
  if (param?.type === 'uri' && URI_EQUALITY.includes(filter.operator)) {
    // buildCondition (search.ts:1553-1570): the whole value, case-sensitive; :not / :ne negate.
    const options = splitSearchOnComma(filter.value);
    const values = convertToSearchableUris(evalFhirPathTyped(param.expression, [toTypedValue(resource)]));
    const match = values.some((value) => options.includes(value));
    return filter.operator === Operator.NOT || filter.operator === Operator.NOT_EQUALS ? !match : match;
  }
  const rows = param?.type === 'string' ? lookupValues(resource, param) : undefined;
  if (rows === undefined && (param?.type !== 'string' || isPresenceFilter(filter))) {
    return matchesSearchRequest(resource, { resourceType: resource.resourceType, filters: [filter] });
  }
  const options = splitSearchOnComma(filter.value);
  if (rows !== undefined) {
    // lookuptable.ts:161-205: EXISTS a row matching one option; :not / :ne negate it. The lookup
    // table is chosen before the :missing / :present case of a column (search.ts:1002-1006 vs
    // 1029-1033), so `name:missing=true` is the word search `true:*`, as any other operator.
    const exists = rows.some(
      (row) =>
        row !== undefined &&
        options.some((option) => {
          if (filter.operator === Operator.EXACT) {
            return row === option.trim();
          }
          if (filter.operator === Operator.CONTAINS) {
            return row.toLowerCase().includes(option.toLowerCase());
          }
          return matchesTsquery(row, option);
        })
    );
    return filter.operator === Operator.NOT || filter.operator === Operator.NOT_EQUALS ? !exists : exists;
  }
  const values = convertToSearchableStrings(evalFhirPathTyped(param.expression, [toTypedValue(resource)]));
  return values.some((value) =>
    options.some((option) => {
      if (filter.operator === Operator.EXACT) {
        return value === option;
      }
      if (filter.operator === Operator.CONTAINS) {
        return value.toLowerCase().includes(option.toLowerCase());
      }
      return value.toLowerCase().startsWith(option.toLowerCase());
    })
  );
}

/**
 * `to_tsvector('simple', value) @@ to_tsquery('simple', query)` for the query the lookup table
 * builds (every word of the option as a prefix, formatTsquery in sql.ts:204-215 keeping letters,
 * digits and hyphens): every word of the option is the prefix of a word of the value. As
 * PostgreSQL's parser, a hyphenated word stands for itself and for each of its parts.
 */
function matchesTsquery(value, option) {
  const query = tsWords(option);
  if (query.length === 0) {
    return true; // an empty tsquery is `true` (sql.ts:129-133)
  }
  const lexemes = tsWords(value);
  return query.every((word) => lexemes.some((lexeme) => lexeme.startsWith(word)));
}

function tsWords(text) {
  const words = [];
  for (const word of text.toLowerCase().split(/[^\p{Letter}\p{Number}-]+/u)) {
    const trimmed = word.replace(/^-+|-+$/g, '');
    if (!trimmed) {
      continue;
    }
    words.push(trimmed);
    if (trimmed.includes('-')) {
      words.push(...trimmed.split('-').filter(Boolean));
    }
  }
  return words;
}

// --- tokens ----------------------------------------------------------------------------------------

const TOKEN_EQUALITY = [Operator.EQUALS, Operator.EXACT, Operator.NOT, Operator.NOT_EQUALS];

/**
 * Whether a token filter is an equality the server matches case-sensitively and the
 * memory repository's matcher (core's, which lowercases both sides) would not: `=`, `:exact`,
 * `:not` / `ne` on a token parameter, except a boolean one and one over a ContactPoint, which
 * Medplum indexes in lower case (getTokenIndexType, fhir/tokens.ts:35-84 at v5.0.10).
 */
function isCaseSensitiveTokenFilter(resourceType, param, filter) {
  if (param?.type !== 'token' || !TOKEN_EQUALITY.includes(filter.operator)) {
    return false;
  }
  const details = getSearchParameterDetails(resourceType, param);
  if (details.type === 'BOOLEAN') {
    return false;
  }
  const types = (details.elementDefinitions ?? []).flatMap((e) => (e.type ?? []).map((t) => t.code));
  return !types.includes('ContactPoint');
}

/**
 * buildTokenColumnsWhereConditionEqualsAndExact (fhir/token-column.ts:318-367 at v5.0.10): each
 * comma-separated value is `system|value`, `system|`, `|value` (no system) or `value` (any
 * system), compared exactly (the server hashes `system DELIM value`); the filter matches when a
 * token of the resource equals one of them, `:not` / `ne` when none does (a resource without a
 * token included). A real 5.0.10 finds no Patient for `gender=MALE`; core's matcher found one.
 */
function compileTokenEqualsFilter(resourceType, param, filter) {
  const details = getSearchParameterDetails(resourceType, param);
  const options = splitSearchOnComma(filter.value).map((query) => {
    const parts = splitN(query.trim(), '|', 2);
    return parts.length === 2 ? { system: parts[0] || null, value: parts[1] || undefined } : { value: parts[0] };
  });
  const negate = filter.operator === Operator.NOT || filter.operator === Operator.NOT_EQUALS;
  return (resource) => {
    // Display texts (CodeableConcept.text, Coding.display, Identifier.type.text) are tokens of
    // the system `text` (buildTokensForSearchParameter, fhir/tokens.ts:93-115): a value without
    // a system finds them too (`code=Heart rate` finds a coding displayed so on a real 5.0.10).
    const typed = evalFhirPathTyped(details.parsedExpression, [toTypedValue(resource)]);
    const tokens = convertToSearchableTokens(typed, { textSearchSystem: 'text' });
    const match = tokens.some((token) =>
      options.some((option) => {
        if (option.system !== undefined && (token.system ?? null) !== option.system) {
          return false;
        }
        return option.value === undefined || token.value === option.value;
      })
    );
    return negate ? !match : match;
  };
}

// --- dates -----------------------------------------------------------------------------------------

// search.ts:1364-1365 at v5.0.10: a full date (year, month and day) with an optional time.
const SUPPORTED_DATE =
  /^(\d(\d(\d[1-9]|[1-9]0)|[1-9]00)|[1-9]000)-(0[1-9]|1[0-2])-(0[1-9]|[1-2]\d|3[0-1])([T ]([01]\d|2[0-3])(:[0-5]\d(:([0-5]\d|60))?(\.\d{1,9})?)?)?(Z|[+-]((0\d|1[0-3]):[0-5]\d|14:00)?)?$/;

/**
 * A date filter as Medplum 5.0.10's SQL runs it, not FHIR's range semantics. The column
 * (repo.ts:1837-1848, buildColumnValues) holds one value per resource: the start (else the end)
 * of the first searchable date (convertToSearchableDates: a partial date or a Period becomes
 * its start), a DATE (`yyyy-mm-dd`) when the element is a FHIR `date`, else a TIMESTAMPTZ;
 * `_lastUpdated` is `meta.lastUpdated`. NULL when there is none.
 *  - `:missing` / `:present` are `IS NULL` / `IS NOT NULL` (search.ts:1029-1033).
 *  - the value (buildDateSearchFilter, search.ts:1389-1438) must be a full date, with an
 *    optional time (validateDateValue, search.ts:1372-1381: else 400 `Invalid date value:
 *    <value>`, so `1990` and `1990-01` are refused; no comma split), and is compared with
 *    the prefix's SQL operator (fhirOperatorToSqlOperator: eq `=`, ne `!=`, gt and sa `>`,
 *    ge `>=`, lt and eb `<`, le `<=`; `ap` answers 400 `Unknown FHIR operator: ap`): `=` is
 *    one instant (`date=2020-01-02` on a dateTime matches exactly midnight UTC), and a NULL
 *    column matches no operator, `ne` included. `:in` / `:not-in` are 400.
 * Not emulated: MeasureReport.period's range column (search.ts:1396-1434).
 */
function compileDateFilter(resourceType, param, filter) {
  const details = getSearchParameterDetails(resourceType, param);
  const dateColumn = details.type === 'DATE';
  const read = (resource) => {
    const typed = evalFhirPathTyped(details.parsedExpression, [toTypedValue(resource)]);
    const values = flatMapFilter(convertToSearchableDates(typed), (p) => p.start ?? p.end);
    return values[0] ?? null;
  };
  if (isPresenceFilter(filter)) {
    const isNull = filter.operator === Operator.MISSING ? filter.value === 'true' : filter.value !== 'true';
    return (resource) => (read(resource) === null) === isNull;
  }
  if (filter.operator === Operator.IN || filter.operator === Operator.NOT_IN) {
    throw new OperationOutcomeError(invalidSearchOperator(filter.operator, filter.code));
  }
  if (!SUPPORTED_DATE.test(filter.value) || Number.isNaN(new Date(filter.value).getTime())) {
    throw new OperationOutcomeError(badRequest(`Invalid date value: ${filter.value}`));
  }
  const test = sqlOperator(filter.operator);
  // PostgreSQL reads the value as the column's type: a DATE keeps the day (a time is dropped);
  // a TIMESTAMPTZ without a zone is in the session's zone, UTC on Medplum's database.
  const text = filter.value.replace(' ', 'T');
  const operand = dateColumn ? text.substring(0, 10) : Date.parse(/(Z|[+-]\d\d(:\d\d)?)$/.test(text) || text.length === 10 ? text : text + 'Z');
  return (resource) => {
    const value = read(resource);
    if (value === null) {
      return false;
    }
    const column = dateColumn ? value.substring(0, 10) : Date.parse(value);
    return test(column < operand ? -1 : column > operand ? 1 : 0);
  };
}

// --- numbers and quantities ------------------------------------------------------------------------

/**
 * A number or quantity filter as the server's SQL runs it. The column (repo.ts:1844-1851,
 * 1801-1807) holds, per value of the parameter's expression, a number's value (a Range's
 * `low ?? high`) or a Quantity's `value` (unit, system and code are not stored); an array
 * column (core's details `array`, migrate.ts:465-475: DOUBLE PRECISION[]) holds them all, any
 * other only the first; INTEGER for `priority-order` (migrate.ts:467-468), DOUBLE PRECISION
 * otherwise. NULL when there is none.
 *  - `:missing` / `:present` are `IS NULL` / `IS NOT NULL` (search.ts:1029-1033).
 *  - number (search.ts:1051-1057): each comma-separated value compared with the SQL operator
 *    of the prefix (fhirOperatorToSqlOperator, search.ts:1530-1550: eq `=`, ne `<>`, gt and sa
 *    `>`, ge `>=`, lt and eb `<`, le `<=`; `ap` and any other operator throw 'Unknown FHIR
 *    operator', answered as 400 by the router); an array column matches when one element does
 *    (ArraySubquery, sql.ts:915-933). Equality is exact: no implicit precision range.
 *  - quantity (buildQuantitySearchFilter, search.ts:1447-1471): the text before the first `|`
 *    (system and code are ignored; no comma split) compared with the same operators, the whole
 *    column at once (no ArraySubquery: on an array column the value must be an array literal,
 *    anything else is PostgreSQL's 'malformed array literal'); `ap` is
 *    `col >= parseFloat(v) * 0.9 AND col <= parseFloat(v) * 1.1` (so a negative value matches
 *    nothing); an empty number is 400 'Invalid quantity value: <value>'.
 * The value is a query parameter PostgreSQL parses as the column's type: text it refuses is a
 * database error the server answers as 400 with PostgreSQL's message (normalizeDatabaseError,
 * sql.ts:616-642, badRequest of the error's message).
 */
function compileNumericFilter(resourceType, param, filter) {
  const details = getSearchParameterDetails(resourceType, param);
  const column = { array: Boolean(details.array), integer: param.code === 'priority-order' };
  const read = (resource) => numericColumn(resource, param, details, column);
  if (isPresenceFilter(filter)) {
    const isNull = filter.operator === Operator.MISSING ? filter.value === 'true' : filter.value !== 'true';
    return (resource) => (read(resource) === null) === isNull;
  }
  if (param.type === 'quantity') {
    const number = filter.value.split('|')[0];
    if (!number) {
      throw new OperationOutcomeError(badRequest('Invalid quantity value: ' + filter.value));
    }
    if (filter.operator === Operator.APPROXIMATELY) {
      const numberValue = Number.parseFloat(number);
      // JS numbers as parameters: node-postgres sends their String() to the column's type.
      const low = parseColumnValue(String(numberValue * 0.9), column);
      const high = parseColumnValue(String(numberValue * 1.1), column);
      return (resource) => {
        const value = read(resource);
        return value !== null && compareColumn(value, low, column) >= 0 && compareColumn(value, high, column) <= 0;
      };
    }
    const test = sqlOperator(filter.operator);
    const operand = parseColumnValue(number, column);
    return (resource) => {
      const value = read(resource);
      return value !== null && test(compareColumn(value, operand, column));
    };
  }
  const test = sqlOperator(filter.operator);
  const element = { array: false, integer: column.integer };
  const operands = splitSearchOnComma(filter.value).map((v) => parseColumnValue(v, element));
  const matches = (value) => operands.some((operand) => test(compareColumn(value, operand, element)));
  return (resource) => {
    const value = read(resource);
    if (value === null) {
      return false;
    }
    return column.array ? value.some(matches) : matches(value);
  };
}

/** The search column's value for a resource (repo.ts:1801-1807, 1844-1851), null for SQL NULL. */
function numericColumn(resource, param, details, column) {
  const typed = evalFhirPathTyped(details.parsedExpression, [toTypedValue(resource)]);
  const values =
    param.type === 'number'
      ? flatMapFilter(convertToSearchableNumbers(typed), ([low, high]) => low ?? high)
      : flatMapFilter(convertToSearchableQuantities(typed), (q) => q.value);
  if (column.array) {
    return values.length > 0 ? values : null;
  }
  return values[0] ?? null;
}

/** fhirOperatorToSqlOperator (search.ts:1530-1550) as a test of a comparison's sign. */
function sqlOperator(operator) {
  switch (operator) {
    case Operator.EQUALS:
    case Operator.EXACT:
      return (c) => c === 0;
    case Operator.NOT:
    case Operator.NOT_EQUALS:
      return (c) => c !== 0;
    case Operator.GREATER_THAN:
    case Operator.STARTS_AFTER:
      return (c) => c > 0;
    case Operator.GREATER_THAN_OR_EQUALS:
      return (c) => c >= 0;
    case Operator.LESS_THAN:
    case Operator.ENDS_BEFORE:
      return (c) => c < 0;
    case Operator.LESS_THAN_OR_EQUALS:
      return (c) => c <= 0;
    default:
      // A plain Error on the server; the FHIR router answers it as badRequest (fhirrouter.ts:353-357).
      throw new OperationOutcomeError(badRequest(`Unknown FHIR operator: ${operator}`));
  }
}

/** PostgreSQL's ordering of two column values: float8 (NaN above every number, equal to itself) or an array of them. */
function compareColumn(a, b, column) {
  if (!column.array) {
    return compareFloat8(a, b);
  }
  // array_cmp: element by element (NULL above every value), then the shorter array first.
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const c = a[i] === null || b[i] === null ? Number(a[i] === null) - Number(b[i] === null) : compareFloat8(a[i], b[i]);
    if (c !== 0) {
      return c;
    }
  }
  return Math.sign(a.length - b.length);
}

function compareFloat8(a, b) {
  if (Number.isNaN(a)) {
    return Number.isNaN(b) ? 0 : 1;
  }
  if (Number.isNaN(b)) {
    return -1;
  }
  return a < b ? -1 : a > b ? 1 : 0;
}

/** A search value as PostgreSQL's input function for the column's type reads it, or its 400. */
function parseColumnValue(text, column) {
  if (column.array) {
    return parseFloat8Array(text);
  }
  return column.integer ? parseInt4(text) : parseFloat8(text);
}

const PG_SPACE = '[ \\t\\n\\r\\v\\f]*';
// float8in (float.c) reads the number with the C library's strtod: a decimal with an optional
// exponent, or inf / infinity / nan in any case, with spaces around. glibc's hexadecimal forms
// (0x1p3) are not taken here.
const FLOAT8_PATTERN = new RegExp(`^${PG_SPACE}([+-]?(?:(?:\\d+\\.?\\d*|\\.\\d+)(?:[eE][+-]?\\d+)?|inf(?:inity)?|nan))${PG_SPACE}$`, 'i');

function parseFloat8(text) {
  const match = FLOAT8_PATTERN.exec(text);
  if (!match) {
    throw new OperationOutcomeError(badRequest(`invalid input syntax for type double precision: "${text}"`));
  }
  const number = match[1];
  if (/nan$/i.test(number)) {
    return Number.NaN;
  }
  if (/inf/i.test(number)) {
    return number.startsWith('-') ? -Infinity : Infinity;
  }
  const value = Number(number);
  // float8in: a result that overflows, or underflows to zero, is out of range.
  const mantissa = number.split(/[eE]/)[0];
  if (!Number.isFinite(value) || (value === 0 && /[1-9]/.test(mantissa))) {
    throw new OperationOutcomeError(badRequest(`"${number}" is out of range for type double precision`));
  }
  return value;
}

function parseInt4(text) {
  // int4in (pg_strtoint32): optional sign and decimal digits, spaces around.
  const match = new RegExp(`^${PG_SPACE}([+-]?\\d+)${PG_SPACE}$`).exec(text);
  if (!match) {
    throw new OperationOutcomeError(badRequest(`invalid input syntax for type integer: "${text}"`));
  }
  const value = Number(match[1]);
  if (value > 2147483647 || value < -2147483648) {
    throw new OperationOutcomeError(badRequest(`value "${text}" is out of range for type integer`));
  }
  return value;
}

/** array_in for DOUBLE PRECISION[]: `{1.5, 2, NULL}` (one dimension; "..." elements allowed). */
function parseFloat8Array(text) {
  const match = new RegExp(`^${PG_SPACE}\\{(.*)\\}${PG_SPACE}$`, 's').exec(text);
  if (!match || /[{}]/.test(match[1])) {
    throw new OperationOutcomeError(badRequest(`malformed array literal: "${text}"`));
  }
  if (match[1].trim() === '') {
    return [];
  }
  return match[1].split(',').map((raw) => {
    const element = raw.trim();
    if (/^null$/i.test(element)) {
      return null;
    }
    const quoted = /^"(.*)"$/s.exec(element);
    return parseFloat8(quoted ? quoted[1] : element);
  });
}
