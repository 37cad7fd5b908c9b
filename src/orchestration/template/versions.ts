/**
 * The HOT versions as data: which sections, keys, functions and condition functions each
 * `heat_template_version` has, following Heat's `heat/engine/hot/template.py` classes
 * (HOTemplate20130523 … HOTemplate20210416) and `hot/parameters.py`.
 *
 * A function name maps to the *implementation* the version uses, because some names changed
 * meaning: `get_attr` selects a path itself in 2013-05-23, passes it to the resource from
 * 2014-10-16 and may omit the attribute from 2015-10-15; `list_join` takes several lists and
 * `str_replace` JSON-encodes maps from 2015-10-15; `repeat` iterates maps from 2016-10-14 and
 * takes `permutations` from 2017-09-01; `if` may omit its third argument from 2021-04-16.
 */
import { quoteText, showValue, templateError } from './template-error.js';

/**
 * Implementations of intrinsic functions. `Removed` marks a name a version explicitly
 * dropped (using it is an error); a name absent from a version is plain data, as in Heat.
 *
 * @example
 * ```ts
 * templateVersion('2015-10-15').functions['list_join']; // 'list_join_multiple'
 * ```
 */
export const Fn = {
  GetParam: 'get_param',
  GetResource: 'get_resource',
  GetAttrThenSelect: 'get_attr_then_select',
  GetAttr: 'get_attr',
  GetAttrAll: 'get_attr_all',
  GetFile: 'get_file',
  ResourceFacade: 'resource_facade',
  StrReplace: 'str_replace',
  StrReplaceJson: 'str_replace_json',
  StrReplaceStrict: 'str_replace_strict',
  StrReplaceVStrict: 'str_replace_vstrict',
  ListJoin: 'list_join',
  ListJoinMultiple: 'list_join_multiple',
  Repeat: 'repeat',
  RepeatWithMap: 'repeat_with_map',
  RepeatNested: 'repeat_nested',
  Digest: 'digest',
  StrSplit: 'str_split',
  MapMerge: 'map_merge',
  MapReplace: 'map_replace',
  Yaql: 'yaql',
  If: 'if',
  IfNullable: 'if_nullable',
  Equals: 'equals',
  Not: 'not',
  And: 'and',
  Or: 'or',
  Filter: 'filter',
  MakeUrl: 'make_url',
  ListConcat: 'list_concat',
  ListConcatUnique: 'list_concat_unique',
  Contains: 'contains',
  CfnSelect: 'Fn::Select',
  CfnJoin: 'Fn::Join',
  CfnSplit: 'Fn::Split',
  CfnReplace: 'Fn::Replace',
  CfnBase64: 'Fn::Base64',
  CfnMemberListToMap: 'Fn::MemberListToMap',
  CfnResourceFacade: 'Fn::ResourceFacade',
  CfnGetAZs: 'Fn::GetAZs',
  CfnRef: 'Ref',
  Removed: 'removed',
} as const;
export type Fn = (typeof Fn)[keyof typeof Fn];

/**
 * What one `heat_template_version` allows.
 *
 * @example
 * ```ts
 * templateVersion('newton').sections.includes('conditions'); // true
 * ```
 */
export interface TemplateVersion {
  /** the canonical date, e.g. `2016-10-14` */
  date: string;
  /** the release name, e.g. `newton` (none before 2016-10-14) */
  release: string | null;
  sections: readonly string[];
  resourceKeys: readonly string[];
  outputKeys: readonly string[];
  parameterKeys: readonly string[];
  /** constraint types that make a constraint (others in a constraint are errors) */
  constraintTypes: readonly string[];
  deletionPolicies: Readonly<Record<string, 'Delete' | 'Retain' | 'Snapshot'>>;
  functions: Readonly<Record<string, Fn>>;
  conditionFunctions: Readonly<Record<string, Fn>>;
}

const REMOVED_2014 = [
  'Fn::GetAZs',
  'Fn::Join',
  'Fn::Split',
  'Fn::Replace',
  'Fn::Base64',
  'Fn::MemberListToMap',
  'Fn::ResourceFacade',
  'Ref',
];
const removed = (names: string[]): Record<string, Fn> => Object.fromEntries(names.map((n) => [n, Fn.Removed]));

const F2013: Record<string, Fn> = {
  'Fn::GetAZs': Fn.CfnGetAZs,
  get_param: Fn.GetParam,
  get_resource: Fn.GetResource,
  Ref: Fn.CfnRef,
  get_attr: Fn.GetAttrThenSelect,
  'Fn::Select': Fn.CfnSelect,
  'Fn::Join': Fn.CfnJoin,
  list_join: Fn.ListJoin,
  'Fn::Split': Fn.CfnSplit,
  str_replace: Fn.StrReplace,
  'Fn::Replace': Fn.CfnReplace,
  'Fn::Base64': Fn.CfnBase64,
  'Fn::MemberListToMap': Fn.CfnMemberListToMap,
  resource_facade: Fn.ResourceFacade,
  'Fn::ResourceFacade': Fn.CfnResourceFacade,
  get_file: Fn.GetFile,
};
const F2014: Record<string, Fn> = {
  get_attr: Fn.GetAttr,
  get_file: Fn.GetFile,
  get_param: Fn.GetParam,
  get_resource: Fn.GetResource,
  list_join: Fn.ListJoin,
  resource_facade: Fn.ResourceFacade,
  str_replace: Fn.StrReplace,
  'Fn::Select': Fn.CfnSelect,
  ...removed(REMOVED_2014),
};
const F2015A: Record<string, Fn> = { ...F2014, repeat: Fn.Repeat, digest: Fn.Digest };
const F2015B: Record<string, Fn> = {
  ...F2015A,
  get_attr: Fn.GetAttrAll,
  list_join: Fn.ListJoinMultiple,
  str_replace: Fn.StrReplaceJson,
  str_split: Fn.StrSplit,
  ...removed(['Fn::Select']),
};
const F2016A: Record<string, Fn> = { ...F2015B, map_merge: Fn.MapMerge };
const F2016B: Record<string, Fn> = { ...F2016A, repeat: Fn.RepeatWithMap, yaql: Fn.Yaql, map_replace: Fn.MapReplace, if: Fn.If };
const F2017A: Record<string, Fn> = { ...F2016B, filter: Fn.Filter, str_replace_strict: Fn.StrReplaceStrict };
const F2017B: Record<string, Fn> = {
  ...F2017A,
  repeat: Fn.RepeatNested,
  make_url: Fn.MakeUrl,
  list_concat: Fn.ListConcat,
  str_replace_vstrict: Fn.StrReplaceVStrict,
  list_concat_unique: Fn.ListConcatUnique,
  contains: Fn.Contains,
};
const F2021: Record<string, Fn> = { ...F2017B, if: Fn.IfNullable };

const C2016: Record<string, Fn> = { get_param: Fn.GetParam, equals: Fn.Equals, not: Fn.Not, and: Fn.And, or: Fn.Or };
const C2017: Record<string, Fn> = { ...C2016, yaql: Fn.Yaql, contains: Fn.Contains };

const SECTIONS = ['heat_template_version', 'description', 'parameter_groups', 'parameters', 'resources', 'outputs'];
const RESOURCE_KEYS = ['type', 'properties', 'metadata', 'depends_on', 'deletion_policy', 'update_policy', 'description'];
const PARAMETER_KEYS = ['type', 'description', 'default', 'schema', 'constraints', 'hidden', 'label', 'immutable'];
const CONSTRAINTS = ['length', 'range', 'allowed_values', 'allowed_pattern', 'custom_constraint'];
const POLICIES = { Delete: 'Delete', Retain: 'Retain', Snapshot: 'Snapshot' } as const;

function version(date: string, release: string | null, functions: Record<string, Fn>, since: string): TemplateVersion {
  const newton = since >= '2016-10-14';
  return Object.freeze({
    date,
    release,
    sections: newton ? [...SECTIONS, 'conditions'] : SECTIONS,
    resourceKeys: newton ? [...RESOURCE_KEYS, 'external_id', 'condition'] : RESOURCE_KEYS,
    outputKeys: newton ? ['description', 'value', 'condition'] : ['description', 'value'],
    parameterKeys: since >= '2018-03-02' ? [...PARAMETER_KEYS, 'tags'] : PARAMETER_KEYS,
    constraintTypes: since >= '2017-02-24' ? [...CONSTRAINTS, 'modulo'] : CONSTRAINTS,
    deletionPolicies: newton ? ({ ...POLICIES, delete: 'Delete', retain: 'Retain', snapshot: 'Snapshot' } as const) : POLICIES,
    functions: Object.freeze(functions),
    conditionFunctions: Object.freeze(newton ? (since >= '2017-09-01' ? C2017 : C2016) : {}),
  });
}

const VERSIONS: readonly TemplateVersion[] = [
  version('2013-05-23', null, F2013, '2013-05-23'),
  version('2014-10-16', null, F2014, '2014-10-16'),
  version('2015-04-30', null, F2015A, '2015-04-30'),
  version('2015-10-15', null, F2015B, '2015-10-15'),
  version('2016-04-08', null, F2016A, '2016-04-08'),
  version('2016-10-14', 'newton', F2016B, '2016-10-14'),
  version('2017-02-24', 'ocata', F2017A, '2017-02-24'),
  version('2017-09-01', 'pike', F2017B, '2017-09-01'),
  version('2018-03-02', 'queens', F2017B, '2018-03-02'),
  version('2018-08-31', 'rocky', F2017B, '2018-08-31'),
  version('2021-04-16', 'wallaby', F2021, '2021-04-16'),
];

/**
 * Every version Stoker accepts, oldest first.
 *
 * @example
 * ```ts
 * SUPPORTED_TEMPLATE_VERSIONS.map((v) => v.date);
 * ```
 */
export const SUPPORTED_TEMPLATE_VERSIONS: readonly TemplateVersion[] = VERSIONS;

/**
 * Function names known to any version, for the strict "unknown function" mode.
 *
 * @example
 * ```ts
 * ALL_FUNCTION_NAMES.has('list_concat'); // true
 * ```
 */
export const ALL_FUNCTION_NAMES: ReadonlySet<string> = new Set([
  ...VERSIONS.flatMap((v) => Object.keys(v.functions)),
  ...Object.keys(C2017),
]);

/**
 * The version for a `heat_template_version` value (a date or a release name).
 *
 * @example
 * ```ts
 * templateVersion('pike').date; // '2017-09-01'
 * templateVersion('2012-12-12'); // throws STOKER_TEMPLATE_INVALID
 * ```
 */
export function templateVersion(value: unknown): TemplateVersion {
  const found = typeof value === 'string' ? VERSIONS.find((v) => v.date === value || v.release === value) : undefined;
  if (!found) {
    const allowed = VERSIONS.map((v) => (v.release ? `${v.date} (${v.release})` : v.date)).join(', ');
    const shown = typeof value === 'string' ? quoteText(value, 100) : `"${showValue(value ?? null, 100)}"`;
    throw templateError(
      'STOKER_TEMPLATE_INVALID',
      'heat_template_version',
      `The template version is invalid: ${shown}. "heat_template_version" should be one of: ${allowed}`,
    );
  }
  return found;
}
