/**
 * String-producing functions: `str_replace` (and its JSON, strict and very strict forms),
 * `list_join`, `str_split`, `digest`, `make_url`, and the CFN `Fn::Join`, `Fn::Split`,
 * `Fn::Replace`, `Fn::Base64` of heat_template_version 2013-05-23.
 */
import type { JsonValue } from '../../core/json.js';
import { DigestAlgorithms, hexDigest, latin1Bytes, type DigestAlgorithm } from './digest.js';
import type { EvalValue, Evaluator, FunctionHandler } from './evaluate.js';
import type { CallExpr, Expr } from './expression.js';
import { listItems, mapEntries } from './expr-shape.js';
import { comparePython, isMapping, pyJsonDumps, pyStr } from './python-values.js';
import { showText } from './template-error.js';
import { Fn } from './versions.js';

const items = (call: CallExpr): Expr[] => listItems(call.arg) ?? [];
const typeName = (v: JsonValue): string => (v === null ? 'null' : Array.isArray(v) ? 'a list' : isMapping(v) ? 'a map' : `a ${typeof v}`);

interface ReplaceMode {
  json: boolean;
  strict: boolean;
  allowEmpty: boolean;
}

/**
 * One pass over the template: longer keys first, then lexicographic (Heat's order); text that
 * came from a replacement is never searched again.
 */
function replace(call: CallExpr, ev: Evaluator, templateExpr: Expr, paramsExpr: Expr, mode: ReplaceMode): string {
  const template = ev.value(templateExpr);
  const mapping = ev.value(paramsExpr);
  if (typeof template !== 'string') throw ev.fail(call, `"${call.name}" template must be a string`);
  if (!isMapping(mapping)) throw ev.fail(call, `"${call.name}" params must be a map`);
  const keys = Object.keys(mapping)
    .sort(comparePython)
    .sort((a, b) => [...b].length - [...a].length);
  let segments: { text: string; done: boolean }[] = [{ text: template, done: false }];
  const unreplaced = new Set(keys);
  for (const key of keys) {
    if (key === '') throw ev.fail(call, `"${call.name}" param placeholders must not be empty`);
    const value = replacement(call, ev, key, mapping[key]!, mode);
    const next: { text: string; done: boolean }[] = [];
    for (const segment of segments) {
      if (segment.done) {
        next.push(segment);
        continue;
      }
      const parts = segment.text.split(key);
      if (parts.length > 1) unreplaced.delete(key);
      parts.forEach((part, i) => {
        if (i > 0) next.push({ text: value, done: true });
        next.push({ text: part, done: false });
      });
    }
    segments = next;
    ev.step(segments.length);
  }
  if (mode.strict && unreplaced.size > 0) {
    const missing = [...unreplaced].sort(comparePython).sort((a, b) => [...b].length - [...a].length);
    throw ev.fail(call, `The following params were not found in the template: ${missing.map((k) => showText(k)).join(',')}`);
  }
  const out = segments.map((s) => s.text).join('');
  ev.charge(call, out.length);
  return out;
}

function replacement(call: CallExpr, ev: Evaluator, key: string, value: JsonValue, mode: ReplaceMode): string {
  const empty = (): never => {
    throw ev.fail(call, `${call.name} has an undefined or empty value for param ${showText(key)}, must be a defined non-empty value`);
  };
  if (value === null) return mode.allowEmpty ? '' : empty();
  if (typeof value === 'object') {
    if (!mode.json) throw ev.fail(call, `"${call.name}" params must be strings or numbers, param ${showText(key)} is not valid`);
    if (!mode.allowEmpty && (Array.isArray(value) ? value.length === 0 : Object.keys(value).length === 0)) empty();
    return pyJsonDumps(value, { sortKeys: true });
  }
  const text = pyStr(value);
  if (!mode.allowEmpty && text === '') empty();
  return text;
}

function strReplace(mode: ReplaceMode): FunctionHandler {
  return (call, ev) => {
    const args = mapEntries(call.arg)!;
    return replace(call, ev, args.get('template')!, args.get('params')!, mode);
  };
}

function join(call: CallExpr, ev: Evaluator, delimiter: JsonValue, strings: JsonValue[], jsonItems: boolean): string {
  if (typeof delimiter !== 'string') throw ev.fail(call, `"${call.name}" delimiter must be a string`);
  const parts = strings.map((s) => {
    if (s === null) return '';
    if (typeof s === 'string') return s;
    if (jsonItems && typeof s === 'object') return pyJsonDumps(s, { sortKeys: true });
    throw ev.fail(call, `Items to join must be ${jsonItems ? 'string, map or list' : 'strings'}, not ${typeName(s)}`);
  });
  const out = parts.join(delimiter);
  ev.charge(call, out.length);
  return out;
}

const joinTwo: FunctionHandler = (call, ev) => {
  const [delim, list] = items(call);
  const strings = ev.value(list!) ?? [];
  if (!Array.isArray(strings)) throw ev.fail(call, `"${call.name}" must operate on a list`);
  return join(call, ev, ev.value(delim!), strings, false);
};

const joinMultiple: FunctionHandler = (call, ev) => {
  const [delim, ...lists] = items(call);
  const strings: JsonValue[] = [];
  for (const e of lists) {
    const list = ev.value(e);
    if (list === null || list === false || list === 0 || list === '') continue;
    if (!Array.isArray(list)) {
      if (isMapping(list) && Object.keys(list).length === 0) continue;
      throw ev.fail(call, `"${call.name}" must operate on a list`);
    }
    strings.push(...list);
  }
  return join(call, ev, ev.value(delim!), strings, true);
};

const strSplit: FunctionHandler = (call, ev) => {
  const args = ev.value(call.arg);
  const usage = `Incorrect arguments to "${call.name}" should be: "${call.name}" : [ ",", "apples,pears", <index>]`;
  if (!Array.isArray(args) || args.length < 2) throw ev.fail(call, usage);
  const [delim, text, index] = args;
  if (text === null) return null;
  if (typeof delim !== 'string' || typeof text !== 'string') throw ev.fail(call, `"${call.name}" splits a string by a string delimiter`);
  if (delim === '') throw ev.fail(call, `"${call.name}" needs a non-empty delimiter`);
  const parts = text.split(delim);
  ev.charge(call, parts.length);
  if (args.length < 3) return parts;
  const i =
    typeof index === 'number'
      ? Math.trunc(index)
      : typeof index === 'boolean'
        ? Number(index)
        : typeof index === 'string' && /^\s*[+-]?\d+\s*$/.test(index)
          ? Number(index)
          : NaN;
  if (!Number.isInteger(i))
    throw ev.fail(call, `Incorrect index to "${call.name}" should be: "${call.name}" : [ ",", "apples,pears", <index>]`);
  const item = parts[i < 0 ? parts.length + i : i];
  if (item === undefined) throw ev.fail(call, `Incorrect index to "${call.name}" should be between 0 and ${parts.length - 1}`);
  return item;
};

const digest: FunctionHandler = (call, ev) => {
  const args = ev.value(call.arg);
  if (!Array.isArray(args) || !args.every((a) => typeof a === 'string'))
    throw ev.fail(call, `Argument to function "${call.name}" must be a list of strings`);
  if (args.length !== 2) throw ev.fail(call, `Function "${call.name}" usage: ["<algorithm>", "<value>"]`);
  const [algorithm, text] = args as [string, string];
  const algo = algorithm.toLowerCase();
  if (!(DigestAlgorithms as readonly string[]).includes(algo))
    throw ev.fail(call, `Algorithm must be one of ${DigestAlgorithms.join(', ')}`);
  const bytes = latin1Bytes(text);
  if (!bytes) throw ev.fail(call, `"${call.name}" can only hash characters up to U+00FF (Heat encodes the value as latin-1)`);
  ev.step(Math.ceil(bytes.length / 64));
  return hexDigest(algo as DigestAlgorithm, bytes);
};

// Python's urllib.parse.quote: these are never escaped.
const UNRESERVED = /[A-Za-z0-9_.\-~]/;

function quote(s: string, safe: string): string {
  let out = '';
  for (const ch of s) {
    if (UNRESERVED.test(ch) || safe.includes(ch)) out += ch;
    else for (const b of Buffer.from(ch, 'utf8')) out += `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

const quotePlus = (s: string): string => quote(s, ' ').replace(/ /g, '+');
const USES_NETLOC = new Set([
  '',
  'ftp',
  'http',
  'gopher',
  'nntp',
  'telnet',
  'imap',
  'wais',
  'file',
  'mms',
  'https',
  'shttp',
  'snews',
  'prospero',
  'rtsp',
  'rtspu',
  'rsync',
  'svn',
  'svn+ssh',
  'sftp',
  'nfs',
  'git',
  'git+ssh',
  'ws',
  'wss',
]);

const makeUrl: FunctionHandler = (call, ev) => {
  const args = ev.value(call.arg);
  if (!isMapping(args)) throw ev.fail(call, `The arguments to "${call.name}" must be a map`);
  const text = (key: string): string => {
    const v = args[key];
    if (v === undefined) return '';
    if (typeof v !== 'string') throw ev.fail(call, `The "${key}" argument to "${call.name}" must be a string`);
    return v;
  };
  const scheme = text('scheme');
  if (scheme.includes(':')) throw ev.fail(call, 'URL "scheme" should not contain \':\'');
  let netloc = '';
  const username = quote(text('username'), '');
  const password = quote(text('password'), '');
  if (username || password) netloc += `${username}${password ? `:${password}` : ''}@`;
  let host = text('host');
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  host = quote(host, ':');
  netloc += host.includes(':') ? `[${host}]` : host;
  const port = args['port'];
  if (port !== undefined && port !== null && port !== '' && port !== 0) {
    const n = typeof port === 'number' ? port : typeof port === 'string' && /^\s*[+-]?\d+\s*$/.test(port) ? Number(port) : NaN;
    if (!Number.isInteger(n)) throw ev.fail(call, `Invalid URL port for ${call.name}`);
    if (n < 1 || n > 65535) throw ev.fail(call, `Invalid URL port ${n}, must be in range 1-65535`);
    netloc += `:${String(port)}`;
  }
  const query = args['query'] ?? {};
  if (!isMapping(query)) throw ev.fail(call, `The "query" argument to "${call.name}" must be a map`);
  const queryText = Object.entries(query)
    .map(([k, v]) => `${quotePlus(k)}=${quotePlus(pyStr(v))}`)
    .join('&')
    .replace(/%2F/g, '/');
  let url = quote(text('path'), '/');
  if (netloc || (scheme && USES_NETLOC.has(scheme) && !url.startsWith('//'))) {
    if (url && !url.startsWith('/')) url = `/${url}`;
    url = `//${netloc}${url}`;
  }
  if (scheme) url = `${scheme}:${url}`;
  if (queryText) url += `?${queryText}`;
  const fragment = quote(text('fragment'), '/');
  if (fragment) url += `#${fragment}`;
  ev.charge(call, url.length);
  return url;
};

const cfnSplit: FunctionHandler = (call, ev) => {
  const [delimExpr, textExpr] = items(call);
  const delim = delimExpr!.kind === 'literal' ? delimExpr!.value : undefined;
  if (typeof delim !== 'string') throw ev.fail(call, `Delimiter for ${call.name} must be string`);
  const text = ev.value(textExpr!);
  if (typeof text !== 'string') throw ev.fail(call, `String to split must be string; got ${typeName(text)}`);
  if (delim === '') throw ev.fail(call, `"${call.name}" needs a non-empty delimiter`);
  return text.split(delim);
};

/**
 * Handlers of the string functions, by implementation.
 *
 * @example
 * ```ts
 * STRING_FUNCTIONS[Fn.StrSplit];
 * ```
 */
export const STRING_FUNCTIONS: Partial<Record<Fn, FunctionHandler>> = {
  [Fn.StrReplace]: strReplace({ json: false, strict: false, allowEmpty: true }),
  [Fn.StrReplaceJson]: strReplace({ json: true, strict: false, allowEmpty: true }),
  [Fn.StrReplaceStrict]: strReplace({ json: true, strict: true, allowEmpty: true }),
  [Fn.StrReplaceVStrict]: strReplace({ json: true, strict: true, allowEmpty: false }),
  [Fn.CfnReplace]: (call, ev): EvalValue => {
    const [params, template] = items(call);
    return replace(call, ev, template!, params!, { json: false, strict: false, allowEmpty: true });
  },
  [Fn.ListJoin]: joinTwo,
  [Fn.CfnJoin]: joinTwo,
  [Fn.ListJoinMultiple]: joinMultiple,
  [Fn.StrSplit]: strSplit,
  [Fn.CfnSplit]: cfnSplit,
  [Fn.Digest]: digest,
  [Fn.MakeUrl]: makeUrl,
  [Fn.CfnBase64]: (call, ev) => {
    const v = ev.value(call.arg);
    if (typeof v !== 'string') throw ev.fail(call, `"${call.name}" argument must be a string`);
    return v;
  },
};
