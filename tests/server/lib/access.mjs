// Access policies as Medplum 5.0.10 builds and applies them: the effective AccessPolicy of a
// membership (packages/server/src/fhir/accesspolicy.ts at the tag), the per-type interaction
// check and the policy entry that applies to one resource (packages/core/src/access.ts), and the
// Repository's hidden and read-only fields (packages/server/src/fhir/repo.ts:2194-2285).
// The criteria and compartments of a policy pick the entry whose fields apply and restrict which
// resources are read (readableByPolicy: the Repository's addAccessPolicyFilters) and written
// (satisfiedAccessPolicy: canPerformInteraction / isResourceWriteable, repo.ts:2121-2170).
import { OperationOutcomeError, PropertyType, badRequest, matchesSearchRequest, parseSearchRequest } from '@medplum/core';

/** core access.ts:21 at v5.0.10 (5.2.13 lists more types: AccessPolicy, Cron, Package...). */
export const PROJECT_ADMIN_RESOURCE_TYPES = ['UserSecurityRequest', 'Project', 'ProjectMembership', 'User'];
const READ_INTERACTIONS = ['read', 'vread', 'history', 'search'];

/**
 * The AccessPolicy of a login acting as `membership`: buildAccessPolicy (accesspolicy.ts:115-165)
 * then applyProjectAdminAccessPolicy (accesspolicy.ts:247-303; the project is no super admin
 * project and has no links).
 * @param readReference - reads a Reference (the system repository)
 */
export async function accessPolicyFor(membership, readReference) {
  const access = [];
  if (membership.accessPolicy) {
    access.push({ policy: membership.accessPolicy });
  }
  if (membership.access) {
    access.push(...membership.access);
  }
  let compartment;
  const resource = [];
  for (const entry of access) {
    const replaced = await policyOfEntry(entry, membership.profile, readReference);
    if (replaced.compartment) {
      compartment = replaced.compartment;
    }
    for (const resourcePolicy of replaced.resource ?? []) {
      if (!resourcePolicy.interaction && resourcePolicy.readonly) {
        resourcePolicy.interaction = ['search', 'read', 'history', 'vread'];
      }
      resource.push(resourcePolicy);
    }
  }
  if (!membership.access?.length && !membership.accessPolicy) {
    resource.push({ resourceType: '*' }); // the legacy "no policy" (accesspolicy.ts:150-154)
  }
  for (const resourceType of ['SearchParameter', 'StructureDefinition']) {
    if (!resource.some((r) => r.resourceType === resourceType)) {
      resource.push({ resourceType, readonly: true });
    }
  }
  const policy = { resourceType: 'AccessPolicy', compartment, resource };
  policy.resource = policy.resource.filter((r) => !PROJECT_ADMIN_RESOURCE_TYPES.includes(r.resourceType));
  if (membership.admin) {
    const projectId = membership.project?.reference?.split('/').pop();
    policy.resource.push(
      {
        resourceType: 'Project',
        criteria: `Project?_id=${projectId}`,
        readonlyFields: ['features', 'link', 'systemSetting'],
        hiddenFields: ['superAdmin', 'systemSecret', 'strictMode'],
      },
      { resourceType: 'ProjectMembership', readonlyFields: ['project', 'user'] },
      { resourceType: 'UserSecurityRequest', readonly: true },
      {
        resourceType: 'User',
        hiddenFields: ['passwordHash', 'mfaSecret'],
        readonlyFields: ['email', 'emailVerified', 'mfaEnrolled', 'project'],
      }
    );
  }
  return policy;
}

/** buildAccessPolicyResources (accesspolicy.ts:174-217): the policy with its parameters substituted. */
async function policyOfEntry(entry, profile, readReference) {
  let original;
  try {
    original = await readReference(entry.policy);
  } catch {
    throw new OperationOutcomeError(
      badRequest(
        'Cannot authenticate: Invalid access policy configuration. Please contact your administrator to update your project membership.'
      )
    );
  }
  const params = [...(entry.parameter ?? [])];
  params.push({ name: 'profile', valueReference: profile });
  if (!params.some((p) => p.name === 'patient')) {
    params.push({ name: 'patient', valueReference: profile });
  }
  let json = JSON.stringify(original);
  for (const param of params) {
    if (param.valueString) {
      json = json.replaceAll(`%${param.name}`, param.valueString);
    } else if (param.valueReference) {
      json = json.replaceAll(`%${param.name}.id`, param.valueReference.reference?.split('/').pop() ?? '');
      json = json.replaceAll(`%${param.name}`, param.valueReference.reference);
    }
  }
  return JSON.parse(json);
}

/** accessPolicySupportsInteraction (core access.ts:82-90 at v5.0.10): some entry allows it for the type. */
export function supportsInteraction(policy, interaction, resourceType) {
  return Boolean(policy.resource?.some((entry) => shallowMatches(entry, resourceType, interaction)));
}

/** satisfiedAccessPolicy (core access.ts:111-160): the first entry that applies to this resource, if any. */
export function satisfiedAccessPolicy(resource, interaction, policy) {
  if (!policy) {
    return { resourceType: '*' };
  }
  return policy.resource?.find((entry) => {
    if (!shallowMatches(entry, resource.resourceType, interaction)) {
      return false;
    }
    if (resource.resourceType === 'Binary') {
      return true;
    }
    if (entry.compartment && !resource.meta?.compartment?.some((c) => c.reference === entry.compartment.reference)) {
      return false;
    }
    return !entry.criteria || matchesSearchRequest(resource, parseSearchRequest(entry.criteria));
  });
}

/**
 * Whether a stored resource passes the security filter of a read or search as Medplum 5.0.10's
 * Repository.addAccessPolicyFilters builds it (packages/server/src/fhir/repo.ts:1556-1611): every
 * entry of the type (or `*`), whatever its interactions, adds its compartment or criteria to a
 * disjunction; an entry with neither, or an invalid criteria (not `Type?...`, repo.ts:1582-1589),
 * leaves the type unrestricted; Binary is never restricted. The SQL expression of the criteria is
 * stood in for by core's matchesSearchRequest, as canPerformInteraction matches it.
 * A read first accepts a resource the READ entry is satisfied by (readResourceImpl, repo.ts:446).
 */
export function readableByPolicy(resource, policy) {
  if (!policy?.resource || resource.resourceType === 'Binary') {
    return true;
  }
  const resourceType = resource.resourceType;
  let restricted = false;
  for (const entry of policy.resource) {
    if (entry.resourceType !== resourceType && entry.resourceType !== '*') {
      continue;
    }
    const compartmentId = entry.compartment?.reference?.split('/').pop();
    if (compartmentId) {
      restricted = true;
      if (resource.meta?.compartment?.some((c) => c.reference?.split('/').pop() === compartmentId)) {
        return true;
      }
    } else if (entry.criteria) {
      if (!entry.criteria.startsWith(entry.resourceType + '?')) {
        return true;
      }
      restricted = true;
      let criteria = entry.criteria;
      if (entry.resourceType === '*') {
        criteria = resourceType + criteria.slice(criteria.indexOf('?'));
      }
      if (matchesSearchRequest(resource, parseSearchRequest(criteria))) {
        return true;
      }
    } else {
      return true;
    }
  }
  return !restricted;
}

function shallowMatches(entry, resourceType, interaction) {
  if (entry.resourceType !== resourceType && (entry.resourceType !== '*' || PROJECT_ADMIN_RESOURCE_TYPES.includes(resourceType))) {
    return false;
  }
  if (!entry.interaction) {
    return !entry.readonly || READ_INTERACTIONS.includes(interaction);
  }
  return entry.interaction.includes(interaction);
}

/** Repository.removeHiddenFields (repo.ts:2194-2209): the READ entry's hiddenFields are removed. */
export function removeHiddenFields(resource, policy) {
  const entry = satisfiedAccessPolicy(resource, 'read', policy);
  for (const field of entry?.hiddenFields ?? []) {
    removeField(resource, field);
  }
  return resource;
}

/**
 * Repository.restoreReadonlyFields (repo.ts:2219-2248): the readonlyFields and hiddenFields of
 * the entry that applies (to the stored version for an update, CREATE to the new resource) are
 * removed from what was sent and, for a top-level field, put back from the stored version: a
 * create cannot set them, an update cannot change them.
 */
export function restoreReadonlyFields(input, original, policy) {
  const entry = satisfiedAccessPolicy(original ?? input, original ? 'update' : 'create', policy);
  const fields = [...(entry?.readonlyFields ?? []), ...(entry?.hiddenFields ?? [])];
  for (const field of fields) {
    removeField(input, field);
    if (original && !field.includes('.') && !field.endsWith('[x]')) {
      const value = original[field];
      if (value) {
        input[field] = value;
      }
    }
  }
  return input;
}

/** Repository.removeField (repo.ts:2255-2285): a dotted path through objects and arrays. */
function removeField(input, path) {
  let last = [input];
  const parts = path.split('.');
  for (let i = 0; i < parts.length; i++) {
    if (i === parts.length - 1) {
      for (const item of last) {
        for (const key of fieldNames(item, parts[i])) {
          delete item[key];
        }
      }
    } else {
      const next = [];
      for (const item of last) {
        for (const key of fieldNames(item, parts[i])) {
          const value = item[key];
          if (Array.isArray(value)) {
            next.push(...value);
          } else if (value && typeof value === 'object') {
            next.push(value);
          }
        }
      }
      last = next;
    }
  }
}

/** resolveFieldName (repo.ts:2834-2849): `value[x]` names each `valueXxx` present. */
function fieldNames(input, name) {
  if (!name.endsWith('[x]')) {
    return [name];
  }
  const base = name.slice(0, -3);
  return Object.keys(input ?? {}).filter((key) => {
    if (!key.startsWith(base)) {
      return false;
    }
    const type = key.slice(base.length);
    return type in PropertyType || type.charAt(0).toLowerCase() + type.slice(1) in PropertyType;
  });
}
