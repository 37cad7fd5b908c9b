/**
 * `parameter_groups`, validated as Heat's `ParameterGroups.validate`: a list of groups, each
 * with a list of parameters; every grouped name must be a parameter and in one group only.
 */
import type { JsonValue } from '../../core/json.js';
import type { ParameterGroup } from './template-model.js';
import { isMapping, pyStr } from './python-values.js';
import { showText, templateError } from './template-error.js';

/**
 * Parses and validates the section against the template's parameter names.
 *
 * @example
 * ```ts
 * parseParameterGroups([{ label: 'db', parameters: ['db_port'] }], new Set(['db_port']));
 * ```
 */
export function parseParameterGroups(raw: JsonValue | undefined, parameterNames: ReadonlySet<string>): ParameterGroup[] {
  if (raw === undefined || raw === null) return [];
  const fail = (path: string, message: string): never => {
    throw templateError('STOKER_TEMPLATE_INVALID', path, message);
  };
  if (!Array.isArray(raw)) return fail('parameter_groups', 'The parameter_groups should be a list.');
  const grouped = new Set<string>();
  return raw.map((group, i) => {
    const path = `parameter_groups[${i}]`;
    if (!isMapping(group)) return fail(path, 'Each parameter group must be a map');
    const parameters = group['parameters'];
    if (parameters === undefined || parameters === null) fail(path, 'The parameters must be provided for each parameter group.');
    if (!Array.isArray(parameters)) return fail(path, 'The parameters of parameter group should be a list.');
    for (const p of parameters) {
      const name = pyStr(p);
      if (grouped.has(name)) fail(path, `The ${showText(name)} parameter must be assigned to one parameter group only.`);
      grouped.add(name);
      if (!parameterNames.has(name)) fail(path, `The grouped parameter ${showText(name)} does not reference a valid parameter.`);
    }
    const text = (v: JsonValue | undefined): string | null => (v === undefined || v === null ? null : pyStr(v));
    return { label: text(group['label']), description: text(group['description']), parameters: parameters.map((p) => pyStr(p)) };
  });
}
