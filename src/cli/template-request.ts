/**
 * Reading a template request from local files, as python-heatclient builds it: the template,
 * the files it names (get_file, template resources) and the environments with the files
 * their `resource_registry` names, for `stoker orchestration template validate` and
 * `stoker stack create|update`. Errors name the file, the line when it can be found, and the
 * field.
 *
 * Kept simple and safe (docs/security.md S7, S8): a `get_file` argument, a resource `type`
 * (anywhere, ResourceGroup definitions included) ending in `.yaml` or `.template`, and a
 * `resource_registry` value ending so are files, named relative to the file that names them.
 * Nothing outside the top-level template's directory is read (outside an environment's
 * directory, for the files an environment names), symbolic links included; no URL is fetched,
 * no absolute path or `\\` is accepted, and the files' number and sizes are bounded. The names
 * stay as written: they are the keys of the files map, so one name must mean one file.
 */
import { readFileSync, realpathSync, statSync } from 'node:fs';
import { dirname, isAbsolute, relative, resolve, sep } from 'node:path';
import { LineCounter, isAlias, isMap, isScalar, isSeq, parseDocument, type Node } from 'yaml';
import type { JsonValue } from '../core/json.js';
import { ValidationError, isStokerError, type ErrorCode } from '../errors.js';
import { DEFAULT_TEMPLATE_LIMITS, parseYamlMapping } from '../orchestration/template/index.js';
import { isMapping } from '../orchestration/template/python-values.js';
import { showText, templateError } from '../orchestration/template/template-error.js';
import { usageError } from './options.js';

/** A chain of template files as messages show it: `a.yaml → b.yaml`. */
export const showChain = (chain: readonly string[]): string => chain.map((f) => showText(f)).join(' → ');

/** Files the template tree may name, at most (heatclient has no bound; Heat's request body has one). */
const MAX_FILES = 500;
/** Bytes of all the files together (each one is also bounded by the template size limit). */
const MAX_FILES_BYTES = 16 * 1024 * 1024;
export const LIMITS = DEFAULT_TEMPLATE_LIMITS;
export const TEMPLATE_FILE = /\.(?:yaml|template)$/;

/** One file as read from disk. */
export interface LocalFile {
  /** as the user or the referring file wrote it: the label in messages, the key in the files map */
  label: string;
  text: string;
  /** its real path */
  path: string;
}

export function yamlOptions(label: string, invalidCode: ErrorCode) {
  return { label, invalidCode, limits: LIMITS, notMappingMessage: `The ${showText(label)} is not a JSON object or YAML mapping.` };
}

// ------------------------------------------------------------------ reading files

/** Reads a file named on the command line; a file that cannot be read is a usage error. */
export function readTopFile(given: string, what: string): LocalFile {
  let path: string;
  try {
    path = realpathSync(resolve(given));
  } catch (e) {
    throw usageError(`cannot read the ${what} ${showText(given)}: ${reason(e)}`);
  }
  const fail = (message: string, tooLarge = false): Error =>
    tooLarge
      ? templateError('STOKER_TEMPLATE_TOO_LARGE', '', `The ${what} ${showText(given)}: ${message}`)
      : usageError(`cannot read the ${what} ${showText(given)}: ${message}`);
  return { label: given, path, text: readLimited(path, fail) };
}

/**
 * The text of a regular file of at most the template size limit, as UTF-8; `fail` builds the
 * error (`tooLarge` for a file over the limit).
 */
function readLimited(path: string, fail: (message: string, tooLarge?: boolean) => Error): string {
  let bytes: Buffer;
  try {
    const stat = statSync(path);
    if (!stat.isFile()) throw fail('not a regular file');
    if (stat.size > LIMITS.maxTemplateBytes)
      throw fail(`it is ${stat.size} bytes, over the maximum of ${LIMITS.maxTemplateBytes} bytes`, true);
    bytes = readFileSync(path);
  } catch (e) {
    if (isStokerError(e)) throw e;
    throw fail(reason(e));
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw fail('not UTF-8 text');
  }
}

function reason(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EACCES') return 'permission denied';
  if (code === 'EISDIR') return 'not a regular file';
  return e instanceof Error ? e.message : String(e);
}

/** The files map of a validate request, built as heatclient builds it (module comment). */
export class FileCollector {
  /** name as written → text (null prototype: a file may be called `__proto__`) */
  readonly map: Record<string, string> = Object.create(null) as Record<string, string>;
  /** name → real path and the file that named it, to refuse one name for two files */
  private readonly origin = new Map<string, { path: string; from: string }>();
  private readonly scanned = new Set<string>();
  private bytes = 0;

  /** Reads the files `source` (a parsed template) names, and those their templates name. */
  scan(source: JsonValue, file: LocalFile, base: string, label: string): void {
    if (this.scanned.has(file.path)) return;
    this.scanned.add(file.path);
    // depth first in document order, so that messages name the first use of a file
    type Item = { value: JsonValue; path: string; reference?: 'data' | 'template' };
    const stack: Item[] = [{ value: source, path: '' }];
    while (stack.length > 0) {
      const { value, path, reference } = stack.pop()!;
      if (reference !== undefined) {
        this.add(value as string, file, base, label, path, reference === 'template');
        continue;
      }
      const children: Item[] = [];
      if (Array.isArray(value)) value.forEach((v, i) => children.push({ value: v, path: `${path}[${i}]` }));
      else if (isMapping(value)) {
        for (const [key, v] of Object.entries(value)) {
          const at = path === '' ? key : `${path}.${key}`;
          if (key === 'get_file' && typeof v === 'string') children.push({ value: v, path: at, reference: 'data' });
          else if (key === 'type' && typeof v === 'string' && TEMPLATE_FILE.test(v))
            children.push({ value: v, path: at, reference: 'template' });
          else children.push({ value: v, path: at });
        }
      }
      for (let i = children.length - 1; i >= 0; i--) stack.push(children[i]!);
    }
  }

  /** Reads the template files an environment's `resource_registry` names. */
  scanRegistry(registry: JsonValue | undefined, env: LocalFile): void {
    const base = dirname(env.path);
    const stack: { value: JsonValue | undefined; path: string }[] = [{ value: registry, path: 'resource_registry' }];
    while (stack.length > 0) {
      const { value, path } = stack.pop()!;
      if (!isMapping(value)) continue;
      for (const [key, v] of Object.entries(value)) {
        if (key === 'hooks' || key === 'restricted_actions') continue;
        const at = `${path}.${key}`;
        if (typeof v === 'string' && TEMPLATE_FILE.test(v)) this.add(v, env, base, env.label, at, true);
        else stack.push({ value: v, path: at });
      }
    }
  }

  private add(name: string, from: LocalFile, base: string, label: string, at: string, isTemplate: boolean): void {
    const fail = (message: string, tooLarge = false): ValidationError =>
      templateError(tooLarge ? 'STOKER_TEMPLATE_TOO_LARGE' : 'STOKER_TEMPLATE_INVALID', at, `${quoted(name)}: ${message}`, {
        file: name.slice(0, 255),
        files: [label],
      });
    // heatclient would fetch a URL or open an absolute path; the CLI reads only files next to the template
    if (name === '' || name.includes('\0') || name.includes('\\') || isAbsolute(name) || /^[a-z][a-z0-9+.-]*:/i.test(name)) {
      throw fail(`the CLI reads only files named relative to the file that names them (no URL, absolute path or "\\")`);
    }
    const outside = (p: string): boolean => {
      const inside = relative(base, p);
      return inside === '' || inside === '..' || inside.startsWith(`..${sep}`) || isAbsolute(inside);
    };
    const lexical = resolve(dirname(from.path), name);
    if (outside(lexical)) throw fail(`is outside ${showText(base)}, the directory the CLI reads files from`);
    let path: string;
    try {
      path = realpathSync(lexical);
    } catch (e) {
      throw fail(`cannot read ${showText(lexical)}: ${reason(e)}`);
    }
    // a symbolic link may lead out
    if (outside(path)) throw fail(`leads to ${showText(path)}, outside ${showText(base)}, the directory the CLI reads files from`);
    const known = this.origin.get(name);
    if (known !== undefined) {
      if (known.path !== path) {
        throw fail(
          `names two files, ${showText(known.path)} (from ${showText(known.from)}) and ${showText(path)}; the files map is keyed by ` +
            'the name as written, so give them different names',
        );
      }
    } else {
      if (this.origin.size >= MAX_FILES)
        throw fail(`one file too many: the template and its environments may name at most ${MAX_FILES}`, true);
      const text = readLimited(path, (m, tooLarge) => fail(`cannot read ${showText(path)}: ${m}`, tooLarge));
      this.bytes += Buffer.byteLength(text);
      if (this.bytes > MAX_FILES_BYTES) throw fail(`the files named add up to more than ${MAX_FILES_BYTES} bytes`, true);
      this.origin.set(name, { path, from: from.label });
      Object.defineProperty(this.map, name, { value: text, enumerable: true, writable: true, configurable: true });
    }
    if (!isTemplate) return;
    const file: LocalFile = { label: name, path, text: this.map[name]! };
    let source: JsonValue;
    try {
      source = parseYamlMapping(file.text, yamlOptions(name, 'STOKER_TEMPLATE_INVALID')).value;
    } catch {
      return; // checkNestedTemplates reports it, with the chain of files that leads to it
    }
    this.scan(source, file, base, name);
  }
}

const quoted = (name: string): string => `"${showText(name)}"`;

// ------------------------------------------------------------------ locating errors

/**
 * Runs one step of the validation. A template-layer error gets the file it is about in front
 * (when its message does not already start with it) and the line of the field its path
 * names, when that field can be found in the file's text.
 */
export function within<T>(file: LocalFile | undefined, files: FileCollector, step: () => T): T {
  try {
    return step();
  } catch (e) {
    if (!(e instanceof ValidationError) || file === undefined) throw e;
    throw new ValidationError(e.code, locate(e, file, files.map), { details: e.details, cause: e });
  }
}

function locate(e: ValidationError, file: LocalFile, files: Readonly<Record<string, string>>): string {
  const chain = Array.isArray(e.details['files']) ? e.details['files'].filter((f): f is string => typeof f === 'string') : [];
  let path = typeof e.details['path'] === 'string' ? e.details['path'] : '';
  const cycle = e.details['cycle'];
  if (e.code === 'STOKER_TEMPLATE_CYCLE' && path === 'resources' && Array.isArray(cycle) && typeof cycle[0] === 'string') {
    path = `resources.${cycle[0]}`;
  }
  const last = chain.length > 0 ? chain[chain.length - 1]! : file.label;
  const text = last === file.label ? file.text : Object.hasOwn(files, last) ? files[last] : undefined;
  const line = path !== '' && text !== undefined ? lineOf(text, path) : undefined;
  const where = line === undefined ? '' : ` line ${line}`;
  if (chain.length >= 2) {
    const prefix = `${showChain(chain)}: `;
    return e.message.startsWith(prefix) ? `${showChain(chain)}${where}: ${e.message.slice(prefix.length)}` : e.message;
  }
  const label = showText(chain[0] ?? file.label);
  if (e.message.startsWith(`${label} line `) || e.message.startsWith(`${label}: `)) return e.message;
  return `${label}${where}: ${e.message}`;
}

/**
 * The line of the field at `path` (`resources.web.properties.name`, `outputs.o.value[0]`), or
 * undefined. Map keys may contain dots: the longest key that fits the path wins.
 */
function lineOf(text: string, path: string): number | undefined {
  if (text.length > LIMITS.maxTemplateBytes) return undefined;
  try {
    const lineCounter = new LineCounter();
    const doc = parseDocument(text, { lineCounter, schema: 'core', uniqueKeys: false, prettyErrors: false });
    const lineAt = (n: Node | null | undefined): number | undefined => (n?.range ? lineCounter.linePos(n.range[0]).line : undefined);
    let node = doc.contents as Node | null;
    let line: number | undefined;
    let rest = path;
    while (rest !== '') {
      if (node === null) return undefined;
      for (let hops = 0; isAlias(node) && hops < 100; hops++) node = (node.resolve(doc) as Node | undefined) ?? null;
      const index = /^\[(\d+)\]\.?/.exec(rest);
      if (index && isSeq(node)) {
        node = (node.items[Number(index[1])] as Node | undefined) ?? null;
        line = lineAt(node) ?? line;
        rest = rest.slice(index[0].length);
        continue;
      }
      if (!isMap(node)) return undefined;
      let best: { key: string; pair: (typeof node.items)[number] } | undefined;
      for (const pair of node.items) {
        const key = isScalar(pair.key) ? String(pair.key.value) : undefined;
        if (key === undefined || (best && best.key.length >= key.length)) continue;
        if (rest === key || rest.startsWith(`${key}.`) || rest.startsWith(`${key}[`)) best = { key, pair };
      }
      if (best === undefined) return undefined;
      line = lineAt(best.pair.key as Node) ?? line;
      node = (best.pair.value as Node | null) ?? null;
      rest = rest.slice(best.key.length).replace(/^\./, '');
    }
    return line;
  } catch {
    return undefined;
  }
}

/** A stack request's local parts: the template text, the files map, the environments in order. */
export interface StackFiles {
  template: string | undefined;
  files: Record<string, string>;
  environments: { label: string; text: string }[];
}

/**
 * Reads `stack create|update`'s template (optional for `update --existing`) and environments
 * with the files they name. Parse errors are left to the stack layer's validation, except
 * that a file that is not YAML is reported here with its line.
 */
export function readStackFiles(templatePath: string | undefined, environmentPaths: readonly string[]): StackFiles {
  const files = new FileCollector();
  let template: string | undefined;
  if (templatePath !== undefined) {
    const top = readTopFile(templatePath, 'template');
    const source = within(top, files, () => parseYamlMapping(top.text, yamlOptions(top.label, 'STOKER_TEMPLATE_INVALID')).value);
    within(top, files, () => files.scan(source, top, dirname(top.path), top.label));
    template = top.text;
  }
  const environments: { label: string; text: string }[] = [];
  for (const path of environmentPaths) {
    const env = readTopFile(path, 'environment');
    const raw = within(env, files, () => parseYamlMapping(env.text, yamlOptions(env.label, 'STOKER_ENVIRONMENT_INVALID')).value);
    within(env, files, () => files.scanRegistry(raw['resource_registry'], env));
    environments.push({ label: env.label, text: env.text });
  }
  return { template, files: { ...files.map }, environments };
}
