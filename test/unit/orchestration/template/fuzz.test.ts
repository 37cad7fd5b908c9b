/**
 * Property-based hostile input (docs/security.md §2.9): random templates, environments, files and
 * parameter values, as objects, YAML, JSON and mangled text, go through parseEnvironment,
 * parseTemplate, checkNestedTemplates, resolveParameters, instantiateTemplate and the evaluation
 * of every resource and output. Whatever fails must fail with a StokerError whose code is
 * registered in src/errors.ts (never a TypeError, a RangeError or a crash), and no message may
 * contain the value of a hidden parameter.
 *
 * The generators stay close to HOT (real section names, function names and references to names
 * that exist) so that most documents get past the parser and exercise validation and evaluation.
 * A failure prints the seed and the shrunk counterexample; replay it with `seed` and `path` in
 * `fc.assert`'s options.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { JsonObject, JsonValue } from '../../../../src/core/json.js';
import { ErrorCodes, isStokerError } from '../../../../src/errors.js';
import {
  SUPPORTED_TEMPLATE_VERSIONS,
  checkNestedTemplates,
  instantiateTemplate,
  parseEnvironment,
  parseTemplate,
  resolveParameters,
  type Environment,
  type RuntimeContext,
} from '../../../../src/orchestration/template/index.js';

const CANARY = 'CANARY-4b1d-hidden';

/** Runs `f`; a coded StokerError is an accepted outcome (undefined), anything else fails the property. */
function attempt<T>(what: string, f: () => T): T | undefined {
  try {
    return f();
  } catch (e) {
    if (!isStokerError(e) || !Object.hasOwn(ErrorCodes, e.code)) {
      const shown = e instanceof Error ? `${e.name}: ${e.message.slice(0, 300)}` : String(e);
      throw new Error(`${what} threw something that is not a coded StokerError: ${shown}`, { cause: e });
    }
    if (e.message.includes(CANARY)) throw new Error(`${what}: the hidden value appears in "${e.message.slice(0, 300)}"`);
    return undefined;
  }
}

const FUNCTION_NAMES = [
  ...new Set(SUPPORTED_TEMPLATE_VERSIONS.flatMap((v) => [...Object.keys(v.functions), ...Object.keys(v.conditionFunctions)])),
];
const VERSIONS = SUPPORTED_TEMPLATE_VERSIONS.map((v) => v.date);
const RESOURCES = ['r0', 'r1', 'r2'];
const PARAMETERS = ['p0', 'p1', 'p2', 'p3', 'p4', 'secret'];
const CONDITIONS = ['c0', 'c1'];
const HOSTILE = [
  '__proto__',
  'constructor',
  'toString',
  'hasOwnProperty',
  'valueOf',
  'a\u202Eb',
  'x\r\ny',
  'x\u0000y',
  '../etc/passwd',
  '',
  ' ',
  'x'.repeat(300),
];
const WORDS = [
  ...RESOURCES,
  ...PARAMETERS,
  ...CONDITIONS,
  'a.yaml',
  'b.yaml',
  'OS::stack_name',
  'value',
  'Metadata',
  'metadata',
  'sha256',
  ',',
  '%x%',
  'é',
  '🙂',
  '$.data',
  '$.data.select($ + 1).len()',
  "'a,b'.split(',').len()",
  '[1, 2',
  '{"a": [1, {"b": 2}]}',
  '[[[[[[1]]]]]]',
  'true',
  '1e3',
];
const YAQL = [
  '$.data',
  '$.data.select($ + 1).len()',
  '$.data.a.where($ > 1)',
  "'a,b'.split(',').len()",
  '$.data.keys().distinct()',
  '$.data.sum() / 0',
  '$.data.groupBy($)',
  '$.data[0].toUpper()',
];
const KEYS = ['a', 'b', 'template', 'params', 'for_each', 'keys', 'values', 'expression', 'data', 'permutations', 'host', 'port', 'query'];

/** Mostly words a template would use, sometimes hostile or random text. */
const word = fc.oneof(
  { weight: 12, arbitrary: fc.constantFrom(...WORDS) },
  { weight: 1, arbitrary: fc.constantFrom(...HOSTILE) },
  { weight: 1, arbitrary: fc.string({ maxLength: 6 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 4 }) },
);
const scalar: fc.Arbitrary<JsonValue> = fc.oneof(
  { weight: 6, arbitrary: word },
  { weight: 3, arbitrary: fc.integer({ min: -3, max: 1000 }) },
  { weight: 1, arbitrary: fc.double() },
  { weight: 1, arbitrary: fc.boolean() },
  { weight: 1, arbitrary: fc.constant(null) },
);
const key = fc.oneof(
  { weight: 30, arbitrary: fc.constantFrom(...KEYS, ...WORDS) },
  { weight: 8, arbitrary: fc.constantFrom(...FUNCTION_NAMES) },
  { weight: 1, arbitrary: fc.constantFrom(...HOSTILE) },
);

/** Function calls with the argument shapes each function takes (mostly), or anything at all. */
const { value } = fc.letrec<{ value: JsonValue; list: JsonValue[]; map: JsonObject; call: JsonObject }>((tie) => {
  const v = tie('value');
  const list = tie('list');
  const map = tie('map');
  const str = fc.oneof(word, v);
  const call = (name: string, arg: fc.Arbitrary<unknown>) => arg.map((a) => ({ [name]: a as JsonValue }));
  const replace = (name: string) => call(name, fc.record({ template: str, params: fc.dictionary(word, v, { maxKeys: 2 }) }));
  return {
    value: fc.oneof({ depthSize: 'small', withCrossShrink: true }, scalar, list, map, tie('call'), tie('call')),
    list: fc.array(v, { maxLength: 4 }),
    map: fc.dictionary(key, v, { maxKeys: 3 }),
    call: fc.oneof(
      { weight: 3, arbitrary: call('get_param', fc.oneof(fc.constantFrom(...PARAMETERS), fc.tuple(fc.constantFrom(...PARAMETERS), str))) },
      { weight: 2, arbitrary: call('get_resource', fc.constantFrom(...RESOURCES)) },
      { weight: 2, arbitrary: call('get_attr', fc.tuple(fc.constantFrom(...RESOURCES), word, v)) },
      { weight: 1, arbitrary: call('get_file', fc.oneof(fc.constantFrom('a.yaml', 'b.yaml', '../etc/passwd'), v)) },
      { weight: 2, arbitrary: replace('str_replace') },
      { weight: 1, arbitrary: replace('str_replace_strict') },
      { weight: 1, arbitrary: replace('str_replace_vstrict') },
      { weight: 2, arbitrary: call('list_join', fc.tuple(fc.constantFrom(',', ''), list)) },
      {
        weight: 2,
        arbitrary: call('repeat', fc.record({ template: v, for_each: fc.dictionary(fc.constantFrom('%x%', '%y%'), list, { maxKeys: 2 }) })),
      },
      { weight: 1, arbitrary: call('digest', fc.tuple(fc.constantFrom('sha256', 'md5', 'bogus'), str)) },
      { weight: 2, arbitrary: call('str_split', fc.tuple(fc.constantFrom(',', ''), str, fc.oneof(fc.integer({ min: -2, max: 3 }), v))) },
      { weight: 1, arbitrary: call('map_merge', fc.array(fc.oneof(map, v), { maxLength: 3 })) },
      { weight: 1, arbitrary: call('map_replace', fc.tuple(map, fc.record({ keys: map, values: map }))) },
      { weight: 2, arbitrary: call('yaql', fc.record({ expression: fc.oneof(fc.constantFrom(...YAQL), str), data: v })) },
      { weight: 2, arbitrary: call('if', fc.tuple(fc.oneof(fc.boolean(), fc.constantFrom(...CONDITIONS)), v, v)) },
      { weight: 1, arbitrary: call('equals', fc.tuple(v, v)) },
      { weight: 1, arbitrary: call('filter', fc.tuple(list, list)) },
      {
        weight: 1,
        arbitrary: call('make_url', fc.record({ scheme: str, host: str, port: v, path: str, query: map }, { requiredKeys: [] })),
      },
      { weight: 1, arbitrary: call('list_concat', fc.array(fc.oneof(list, v), { maxLength: 3 })) },
      { weight: 1, arbitrary: call('list_concat_unique', fc.array(fc.oneof(list, v), { maxLength: 3 })) },
      { weight: 1, arbitrary: call('contains', fc.tuple(v, fc.oneof(list, v))) },
      { weight: 1, arbitrary: call('resource_facade', fc.constantFrom('metadata', 'deletion_policy', 'update_policy')) },
      { weight: 1, arbitrary: call('not', fc.oneof(fc.boolean(), v)) },
      { weight: 3, arbitrary: fc.tuple(fc.constantFrom(...FUNCTION_NAMES), fc.oneof(v, list)).map(([name, arg]) => ({ [name]: arg })) },
    ),
  };
});

/** Sometimes absent (undefined), usually `arbitrary`, rarely any value at all. */
const usually = <T>(arbitrary: fc.Arbitrary<T>, absent = 2): fc.Arbitrary<T | JsonValue | undefined> =>
  fc.oneof({ weight: absent * 5, arbitrary: fc.constant(undefined) }, { weight: 30, arbitrary }, { weight: 1, arbitrary: value });

/** A record without the keys whose value came out undefined. */
const record = <T extends Record<string, fc.Arbitrary<unknown>>>(model: T): fc.Arbitrary<JsonObject> =>
  fc.record(model).map((r) => Object.fromEntries(Object.entries(r).filter(([, v]) => v !== undefined)) as JsonObject);

const anyConstraint = fc.oneof(
  record({ length: record({ min: usually(fc.integer({ min: -1, max: 5 })), max: usually(fc.integer({ min: 0, max: 9 })) }) }),
  record({ range: record({ min: usually(fc.integer({ min: -5, max: 5 })), max: usually(fc.integer({ min: 0, max: 500 })) }) }),
  record({ modulo: record({ step: usually(fc.integer({ min: -3, max: 3 }), 0), offset: usually(fc.integer({ min: -2, max: 2 }), 0) }) }),
  record({ allowed_values: usually(fc.array(scalar, { minLength: 1, maxLength: 3 }), 0) }),
  record({
    allowed_pattern: usually(
      fc.oneof(
        { weight: 4, arbitrary: fc.constantFrom('[a-z0-9]+', '.*', '(a+)+$', '\\d{2,4}', '(?P<n>x)|y', '[\\w-]+', '(?:.{1,1000})*b') },
        { weight: 1, arbitrary: fc.constantFrom('(', '(?=a)', '\\1', 'a{2000}') },
        { weight: 1, arbitrary: fc.string({ maxLength: 8 }) },
      ),
      0,
    ),
    description: usually(word),
  }),
  record({ custom_constraint: word }),
);
const PARAMETER_TYPES = ['string', 'number', 'json', 'comma_delimited_list', 'boolean'] as const;
const CONSTRAINTS_FOR: Record<string, string[]> = {
  string: ['length', 'allowed_values', 'allowed_pattern', 'custom_constraint'],
  number: ['range', 'modulo', 'allowed_values'],
  json: ['length'],
  comma_delimited_list: ['length', 'allowed_values'],
  boolean: ['allowed_values'],
};
const DEFAULT_FOR: Record<string, fc.Arbitrary<JsonValue>> = {
  string: word,
  number: fc.oneof(fc.integer({ min: -10, max: 600 }), fc.constantFrom('42', ' 7 ', '1_000', '0.5', 'abc')),
  json: value,
  comma_delimited_list: fc.oneof(fc.constantFrom('a,b', '', 'a'), fc.array(word, { maxLength: 3 })),
  boolean: fc.oneof(fc.boolean(), fc.constantFrom('yes', 'no', 'maybe')),
};
const parameter = fc.constantFrom(...PARAMETER_TYPES).chain((type) =>
  record({
    type: fc.oneof({ weight: 30, arbitrary: fc.constant(type) }, { weight: 1, arbitrary: scalar }),
    default: usually(DEFAULT_FOR[type]!),
    hidden: usually(fc.boolean()),
    immutable: usually(fc.boolean(), 4),
    label: usually(word, 4),
    constraints: usually(
      fc.array(
        fc.oneof(
          { weight: 6, arbitrary: anyConstraint.filter((c) => CONSTRAINTS_FOR[type]!.some((k) => k in c)) },
          { weight: 1, arbitrary: anyConstraint },
        ),
        { maxLength: 2 },
      ),
    ),
  }),
);

const operand = fc.oneof(
  { weight: 3, arbitrary: scalar },
  { weight: 3, arbitrary: fc.constantFrom(...PARAMETERS).map((p) => ({ get_param: p })) },
  { weight: 1, arbitrary: value },
);
const { condition } = fc.letrec<{ condition: JsonValue }>((tie) => ({
  condition: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    { weight: 3, arbitrary: fc.boolean() },
    { weight: 2, arbitrary: fc.constantFrom(...CONDITIONS) },
    { weight: 3, arbitrary: fc.tuple(operand, operand).map((pair) => ({ equals: pair })) },
    { weight: 2, arbitrary: tie('condition').map((c) => ({ not: c })) },
    { weight: 1, arbitrary: fc.array(tie('condition'), { minLength: 2, maxLength: 3 }).map((list) => ({ and: list })) },
    { weight: 1, arbitrary: fc.array(tie('condition'), { minLength: 2, maxLength: 3 }).map((list) => ({ or: list })) },
    { weight: 1, arbitrary: fc.tuple(operand, fc.array(operand, { maxLength: 3 })).map((pair) => ({ contains: pair })) },
    { weight: 1, arbitrary: value },
  ),
}));

const resource = record({
  type: usually(fc.constantFrom('x', 'OS::Heat::None', 'My::A', 'My::B', 'a.yaml', 'b.yaml', 'toString'), 0),
  properties: usually(fc.dictionary(key, value, { maxKeys: 3 }), 1),
  metadata: usually(value, 6),
  depends_on: usually(fc.oneof(fc.constantFrom(...RESOURCES), fc.array(fc.constantFrom(...RESOURCES), { maxLength: 2 })), 6),
  condition: usually(condition, 6),
  deletion_policy: usually(fc.constantFrom('Delete', 'Retain', 'Snapshot', 'retain'), 6),
  update_policy: usually(value, 8),
  external_id: usually(word, 8),
});
/** A map of the usual names (each present or not), now and then with one unusual name. */
const section = <T>(list: string[], item: fc.Arbitrary<T>): fc.Arbitrary<JsonValue | undefined> =>
  fc.oneof(
    { weight: 30, arbitrary: record(Object.fromEntries(list.map((n) => [n, usually(item, 3)]))) },
    {
      weight: 3,
      arbitrary: fc
        .tuple(record(Object.fromEntries(list.map((n) => [n, usually(item, 3)]))), word, item)
        .map(([m, n, i]) => ({ ...m, [n]: i }) as JsonObject),
    },
    { weight: 2, arbitrary: fc.constant(undefined) },
    { weight: 1, arbitrary: value },
  );

const template: fc.Arbitrary<JsonObject> = fc
  .tuple(
    fc.oneof(
      { weight: 12, arbitrary: fc.constantFrom(...VERSIONS.filter((v) => v >= '2016-10-14')) },
      { weight: 4, arbitrary: fc.constantFrom(...VERSIONS, 'newton', 'wallaby') },
      { weight: 1, arbitrary: scalar },
    ),
    record({
      description: usually(word, 6),
      parameters: section(PARAMETERS.slice(0, 2), parameter),
      parameter_groups: usually(
        fc.array(record({ label: word, parameters: fc.array(fc.constantFrom(...PARAMETERS), { maxLength: 2 }) }), { maxLength: 1 }),
        12,
      ),
      conditions: section(CONDITIONS, condition),
      resources: section(RESOURCES, resource),
      outputs: section(['o0', 'o1'], record({ value, condition: usually(condition, 6) })),
    }),
    fc.oneof({ weight: 12, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.dictionary(key, value, { maxKeys: 1 }) }),
  )
  .map(([version, t, extra]) => {
    const out: JsonObject = { ...(extra ?? {}), heat_template_version: version, ...t };
    // conditions need 2016-10-14; leave them out of older templates, mostly
    if (typeof version === 'string' && version < '2016-10-14' && /^\d/.test(version) && JSON.stringify(t).length % 5 !== 0) {
      delete out['conditions'];
      for (const s of ['resources', 'outputs']) {
        const m = out[s];
        if (m && typeof m === 'object' && !Array.isArray(m))
          for (const v of Object.values(m)) if (v && typeof v === 'object' && !Array.isArray(v)) delete v['condition'];
      }
    }
    // every template has a hidden parameter holding the canary (when its parameters are a map)
    const params = out['parameters'];
    if (params === undefined || (typeof params === 'object' && params !== null && !Array.isArray(params))) {
      out['parameters'] = { ...(params ?? {}), secret: { type: 'string', hidden: true } };
    }
    return out;
  });

const names = (list: string[]) => fc.oneof({ weight: 12, arbitrary: fc.constantFrom(...list) }, { weight: 1, arbitrary: word });

const environment: fc.Arbitrary<JsonObject> = record({
  parameters: usually(fc.dictionary(names(PARAMETERS), value, { maxKeys: 2 }), 4),
  parameter_defaults: usually(fc.dictionary(names(PARAMETERS), value, { maxKeys: 2 }), 4),
  resource_registry: usually(
    fc.dictionary(
      fc.constantFrom('My::A', 'My::B', 'x', 'OS::*', 'resources', 'toString'),
      fc.oneof(fc.constantFrom('a.yaml', 'b.yaml', 'OS::Heat::None', 'My::A', 'missing.yaml'), value),
      { maxKeys: 3 },
    ),
  ),
  parameter_merge_strategies: usually(
    fc.dictionary(names([...PARAMETERS, 'default']), fc.constantFrom('overwrite', 'merge', 'deep_merge'), { maxKeys: 2 }),
    4,
  ),
  encrypted_param_names: usually(fc.array(word, { maxLength: 2 }), 8),
  event_sinks: usually(fc.array(value, { maxLength: 1 }), 8),
});

/**
 * A valid skeleton (parameters of every type, two conditions, three resources, two outputs) with
 * random expressions where a template has them: most cases get past validation and are evaluated.
 */
const scaffold: fc.Arbitrary<JsonObject> = fc
  .record({
    version: fc.constantFrom(...VERSIONS.filter((v) => v >= '2016-10-14')),
    c0: condition.map((c) => (typeof c === 'object' && c !== null && !Array.isArray(c) ? c : { not: c === 'c0' ? 'c1' : c })),
    p: value,
    q: value,
    m: value,
    o0: value,
    o1: value,
    r0Condition: fc.boolean(),
    r1DependsOn: fc.boolean(),
  })
  .map(({ version, c0, p, q, m, o0, o1, r0Condition, r1DependsOn }) => ({
    heat_template_version: version,
    parameters: {
      p0: { type: 'string', default: 'a,b' },
      p1: { type: 'json', default: { a: [1, 2], b: { c: 'x' } } },
      p2: { type: 'comma_delimited_list', default: 'x,y' },
      p3: { type: 'number', default: 3 },
      p4: { type: 'boolean', default: true },
      secret: { type: 'string', hidden: true },
    },
    conditions: { c0, c1: true },
    resources: {
      r0: { type: 'x', properties: { p }, ...(r0Condition ? { condition: 'c1' } : {}) },
      r1: { type: 'My::A', properties: { q }, ...(r1DependsOn ? { depends_on: 'r0' } : {}) },
      r2: { type: 'x', metadata: { m } },
    },
    outputs: { o0: { value: o0 }, o1: { value: o1, condition: 'c0' } },
  }));

type Form = 'object' | 'yaml' | 'json' | 'mangled';
const form = fc.constantFrom<Form>('object', 'yaml', 'json', 'yaml', 'mangled');
const mangle = fc.tuple(fc.nat(), fc.nat({ max: 20 }), fc.string({ unit: 'binary', maxLength: 6 }));

function render(doc: JsonObject, how: Form, [at, cut, insert]: [number, number, string]): string | JsonObject {
  if (how === 'object') return doc;
  if (how === 'json') return JSON.stringify(doc);
  const text = stringify(doc);
  if (how === 'yaml') return text;
  const i = at % (text.length + 1);
  return text.slice(0, i) + insert + text.slice(i + cut);
}

const runtime: RuntimeContext = {
  getResource: (name) => `${name}-id`,
  getAttr: (name, attribute, path) => ({ name, attribute, path }),
  resourceFacade: { metadata: { a: 1 }, deletion_policy: 'Delete', update_policy: {} },
};

/** The whole pipeline on one generated case; throws only when the property is broken. */
function pipeline(
  templateInput: string | JsonObject,
  environmentInput: string | JsonObject,
  files: Record<string, string>,
  parameters: Record<string, JsonValue>,
  strictFunctions: boolean,
): void {
  const env: Environment | undefined = attempt('parseEnvironment', () => parseEnvironment(environmentInput).environment);
  const parsed = attempt('parseTemplate', () => parseTemplate(templateInput, { files, strictFunctions }));
  if (parsed === undefined) return;
  attempt('checkNestedTemplates', () => checkNestedTemplates(parsed, { files, ...(env ? { registry: env.resourceRegistry } : {}) }));
  const input = { parameters: { ...parameters, secret: CANARY }, ...(env ? { environment: env } : {}), files, pseudo: { stackName: 's' } };
  attempt('resolveParameters', () => resolveParameters(parsed, input));
  const instance = attempt('instantiateTemplate', () => instantiateTemplate(parsed, input));
  if (instance === undefined) return;
  for (const name of instance.order) {
    attempt(`resource ${name}`, () => instance.resource(name));
    attempt(`evaluateResource ${name}`, () => instance.evaluateResource(name, runtime));
    attempt(`evaluateResource ${name} without a runtime`, () => instance.evaluateResource(name));
  }
  for (const name of instance.outputNames) {
    const o = attempt(`evaluateOutput ${name}`, () => instance.evaluateOutput(name, runtime));
    if (o && 'error' in o) {
      if (o.code === null || !Object.hasOwn(ErrorCodes, o.code))
        throw new Error(`output ${name} failed without a code: ${o.error.slice(0, 300)}`);
      if (o.error.includes(CANARY)) throw new Error(`output ${name}: the hidden value appears in "${o.error.slice(0, 300)}"`);
    }
    attempt(`outputDependencies ${name}`, () => instance.outputDependencies(name));
  }
}

describe('random documents and values (fast-check)', () => {
  it('every failure of parsing, validation and evaluation is a coded StokerError without the hidden value', () => {
    fc.assert(
      fc.property(
        template,
        form,
        mangle,
        environment,
        form,
        template,
        fc.dictionary(names([...PARAMETERS, 'unknown']), value, { maxKeys: 3 }),
        fc.boolean(),
        (t, how, cut, env, envHow, nested, parameters, strict) => {
          const files = {
            'a.yaml': stringify(nested),
            'b.yaml': 'heat_template_version: 2016-10-14\nresources:\n  r: {type: a.yaml}\n',
            '../etc/passwd': 'root:x:0:0',
          };
          pipeline(render(t, how, cut), render(env, envHow, cut), files, parameters, strict);
        },
      ),
      { numRuns: 400 },
    );
  });

  it('text that is not a template at all is refused with a coded error', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary', maxLength: 200 }), fc.string({ maxLength: 200 })), (text) => {
        attempt('parseTemplate', () => parseTemplate(text));
        attempt('parseEnvironment', () => parseEnvironment(text));
      }),
      { numRuns: 300 },
    );
  });

  it('random expressions in a valid skeleton: evaluated, or refused with a coded error', () => {
    let evaluated = 0;
    const runs = 400;
    fc.assert(
      fc.property(scaffold, fc.dictionary(fc.constantFrom(...PARAMETERS.slice(0, 5)), value, { maxKeys: 2 }), (t, parameters) => {
        const files = { 'a.yaml': 'heat_template_version: 2016-10-14\n', 'b.yaml': 'x' };
        pipeline(t, {}, files, parameters, false);
        const parsed = attempt('parseTemplate', () => parseTemplate(t, { files }));
        if (parsed && attempt('instantiateTemplate', () => instantiateTemplate(parsed, { files, parameters: { secret: CANARY } })))
          evaluated++;
      }),
      { numRuns: runs },
    );
    // a sanity check on the generators: most skeletons must get as far as evaluation
    expect(evaluated).toBeGreaterThan(runs / 8);
  });
});
