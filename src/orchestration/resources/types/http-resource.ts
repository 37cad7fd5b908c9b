/**
 * Stoker::HTTP::Resource: one item of a REST collection, so that a template can drive any HTTP
 * API without a plugin. Create POSTs `body` (JSON) to the collection `url` and takes the
 * physical id from the response at `id_path`; update PUTs (or PATCHes) `body` to the item URL
 * (`resource_url`, default `<url>/<id>`) when `body` or `headers` changed; delete DELETEs the
 * item (404 and 410 count as already deleted); check GETs it (404 fails the check); `show` is
 * the item as a GET returns it. A change of `url` or `resource_url` replaces the resource.
 *
 * Every request of an operation carries an `Idempotency-Key` header, a UUID derived from the
 * operation's idempotency key: a create executed again after an engine crash sends the same
 * key, so a server that honours the header answers with the item it already made instead of
 * making a second one. (`show`, an attribute read rather than an operation, has no key.)
 *
 * Credentials in the URL (`https://user:pass@host/…`) are sent as Basic authorization, never in
 * the URL; failure messages show URLs without them and with query values masked
 * (`https://host/items?token=…`). A request that answers outside `expected_status` (any 2xx by
 * default) fails with its method, that URL, the status and the start of the response body.
 */
import { Buffer } from 'node:buffer';
import type { JsonObject, JsonValue } from '../../../core/json.js';
import { isMapping, pyStr } from '../../template/python-values.js';
import { abortReason } from '../abortable-sleep.js';
import { deterministicUuid } from '../physical-ids.js';
import { supported, type PropertiesSchema } from '../property-schema.js';
import { ResourceFailure } from '../resource-failure.js';
import { REPLACE, type AttributeContext, type ResourceType } from '../resource-type.js';
import { heatPath } from '../validate-properties.js';

const TYPE = 'Stoker::HTTP::Resource';
/** Response bodies larger than this fail the request: they become the `body` attribute, stored with the resource. */
const MAX_BODY_BYTES = 1024 * 1024;
/** How much of a response body a failure message quotes. */
const EXCERPT_CHARS = 200;
/** RFC 9110 `token`: what a header name may be made of. */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Changes of these properties make an update send the item again. */
const SENT = new Set(['body', 'headers']);
/** Changes of these properties point at another item: the resource is replaced. */
const LOCATION = new Set(['url', 'resource_url']);

const PROPERTIES: PropertiesSchema = {
  url: {
    type: 'string',
    description: 'The URL of the collection (http or https); create POSTs to it. A change replaces the resource.',
    required: true,
  },
  body: {
    type: 'map',
    description: 'The JSON object sent on create (POST) and on update (PUT or PATCH).',
    default: {},
    updateAllowed: true,
  },
  headers: {
    type: 'map',
    description:
      'Headers sent with every request, name to string value (Content-Type and Accept default to application/json; Idempotency-Key is set by Stoker).',
    default: {},
    updateAllowed: true,
  },
  id_path: {
    type: 'string',
    description: 'Where the id is in the create response: dotted keys, list items by index (data.id, items.0.uuid).',
    default: 'id',
    updateAllowed: true,
    constraints: [{ length: { min: 1 } }],
  },
  resource_url: {
    type: 'string',
    description:
      'The URL of the item, {id} standing for the URL-encoded id (default: the collection URL, then /<id>). A change replaces the resource.',
  },
  update_method: {
    type: 'string',
    description: 'The method of an update.',
    default: 'PUT',
    updateAllowed: true,
    constraints: [{ allowed_values: ['PUT', 'PATCH'] }],
  },
  timeout: {
    type: 'number',
    description: 'Seconds one request may take, reading the response included.',
    default: 30,
    updateAllowed: true,
    constraints: [{ range: { min: 0.1 } }],
  },
  expected_status: {
    type: 'list',
    description: 'The status codes a create or an update must answer with (default: any 2xx).',
    updateAllowed: true,
    schema: { type: 'integer', constraints: [{ range: { min: 100, max: 599 } }] },
  },
};

/** A URL to send to: without credentials, which become an Authorization header. */
interface Target {
  readonly url: URL;
  readonly basicAuth: string | undefined;
}

/** What a request answered. `body` is the parsed JSON, the text when it is not JSON, null when empty. */
interface Reply {
  readonly status: number;
  readonly statusText: string;
  readonly text: string;
  readonly body: JsonValue;
}

/** Percent-decoded text; as it is when it is not validly encoded. */
function decoded(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}

/**
 * Parses an http(s) URL; a message when it is not one.
 *
 * @returns the target, or why `raw` cannot be used (never quoting it: it may hold credentials)
 */
function parseTarget(raw: string): Target | string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'not a valid URL';
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return `the scheme must be http or https, not "${url.protocol.slice(0, -1)}"`;
  let basicAuth: string | undefined;
  if (url.username !== '' || url.password !== '') {
    const user = `${decoded(url.username)}:${decoded(url.password)}`;
    basicAuth = `Basic ${Buffer.from(user, 'utf8').toString('base64')}`;
    url.username = '';
    url.password = '';
  }
  url.hash = '';
  return { url, basicAuth };
}

/** The URL as messages show it: no credentials (already gone), query values masked. */
function shownUrl(url: URL): string {
  const names = [...url.searchParams.keys()];
  return `${url.origin}${url.pathname}${names.length === 0 ? '' : `?${names.map((n) => `${encodeURIComponent(n)}=…`).join('&')}`}`;
}

const text = (properties: JsonObject, key: string): string => {
  const v = properties[key];
  return typeof v === 'string' ? v : '';
};

function targetOf(raw: string, what: string): Target {
  const target = parseTarget(raw);
  if (typeof target === 'string') throw new ResourceFailure('ValueError', `The ${what} is unusable: ${target}`);
  return target;
}

const collection = (properties: JsonObject): Target => targetOf(text(properties, 'url'), 'url');

/** The item's URL: `resource_url` with its `{id}` filled in, else the collection URL followed by `/<id>`. */
function item(properties: JsonObject, id: string): Target {
  const template = text(properties, 'resource_url');
  if (template !== '') return targetOf(template.replaceAll('{id}', encodeURIComponent(id)), 'resource_url');
  const { url, basicAuth } = collection(properties);
  url.pathname = `${url.pathname.replace(/\/+$/, '')}/${encodeURIComponent(id)}`;
  return { url, basicAuth };
}

/** A header value or env-like map member as text: strings as they are, integers and booleans as a string property converts them. */
function headerValue(value: JsonValue | undefined): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'boolean' || (typeof value === 'number' && Number.isInteger(value))) return pyStr(value);
  return undefined;
}

/** The start of a response body for a message: whitespace collapsed, cut at {@link EXCERPT_CHARS}. */
function excerpt(body: string): string {
  const flat = body.replace(/\s+/g, ' ').trim();
  return flat.length <= EXCERPT_CHARS ? flat : `${flat.slice(0, EXCERPT_CHARS)}…`;
}

const timeoutMs = (properties: JsonObject): number => {
  const secs = properties['timeout'];
  return (typeof secs === 'number' && secs > 0 ? secs : 30) * 1000;
};

/** The response body, up to {@link MAX_BODY_BYTES}; a larger one fails. */
async function readBody(response: Response, method: string, url: URL): Promise<string> {
  if (response.body === null) return '';
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > MAX_BODY_BYTES) {
      await reader.cancel();
      throw new ResourceFailure('HTTPError', `${method} ${shownUrl(url)} answered a body larger than ${MAX_BODY_BYTES} bytes`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function parseBody(raw: string): JsonValue {
  if (raw.trim() === '') return null;
  try {
    return JSON.parse(raw) as JsonValue;
  } catch {
    return raw;
  }
}

/** Why fetch failed, from the network error Node wraps in `TypeError: fetch failed`. */
function networkReason(error: unknown): string {
  const cause: unknown = error instanceof Error ? error.cause : undefined;
  if (cause instanceof Error) {
    const code = (cause as NodeJS.ErrnoException).code;
    return code !== undefined && !cause.message.includes(code) ? `${code} ${cause.message}` : cause.message;
  }
  return error instanceof Error ? error.message : String(error);
}

/**
 * Sends one request. `signal` (stack cancel, engine shutdown) and the `timeout` property both
 * bound it, the body's reading included; an abort rejects with the signal's reason, for the
 * engine to word, a timeout or a network error with a {@link ResourceFailure}.
 */
async function send(
  ctx: AttributeContext,
  idempotencyKey: string | undefined,
  method: string,
  target: Target,
  payload?: JsonValue,
): Promise<Reply> {
  if (ctx.signal.aborted) throw abortReason(ctx.signal);
  const headers = new Headers({ accept: 'application/json' });
  if (payload !== undefined) headers.set('content-type', 'application/json');
  if (target.basicAuth !== undefined) headers.set('authorization', target.basicAuth);
  const own = ctx.properties['headers'];
  if (isMapping(own)) {
    for (const [name, value] of Object.entries(own)) {
      const v = headerValue(value);
      if (v !== undefined) headers.set(name, v);
    }
  }
  if (idempotencyKey !== undefined) headers.set('idempotency-key', deterministicUuid(idempotencyKey, TYPE));

  const limit = timeoutMs(ctx.properties);
  const controller = new AbortController();
  const onAbort = (): void => controller.abort(ctx.signal.reason);
  ctx.signal.addEventListener('abort', onAbort, { once: true });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, limit);
  try {
    const response = await fetch(target.url, {
      method,
      headers,
      signal: controller.signal,
      ...(payload === undefined ? {} : { body: JSON.stringify(payload) }),
    });
    const raw = await readBody(response, method, target.url);
    return { status: response.status, statusText: response.statusText, text: raw, body: parseBody(raw) };
  } catch (e) {
    if (ctx.signal.aborted) throw abortReason(ctx.signal);
    if (timedOut) throw new ResourceFailure('Timeout', `${method} ${shownUrl(target.url)} timed out after ${limit / 1000} s`);
    if (e instanceof ResourceFailure) throw e;
    throw new ResourceFailure('ConnectionError', `${method} ${shownUrl(target.url)} failed: ${networkReason(e)}`, { cause: e });
  } finally {
    clearTimeout(timer);
    ctx.signal.removeEventListener('abort', onAbort);
  }
}

const isSuccess = (status: number): boolean => status >= 200 && status < 300;

/** Whether a create's or an update's status is the one expected. */
function expected(properties: JsonObject, status: number): boolean {
  const list = properties['expected_status'];
  return Array.isArray(list) && list.length > 0 ? list.includes(status) : isSuccess(status);
}

function statusFailure(method: string, target: Target, reply: Reply): ResourceFailure {
  const status = reply.statusText === '' ? `${reply.status}` : `${reply.status} ${reply.statusText}`;
  const quoted = excerpt(reply.text);
  return new ResourceFailure('HTTPError', `${method} ${shownUrl(target.url)} returned ${status}${quoted === '' ? '' : `: ${quoted}`}`);
}

/** The id at `path` (dotted keys, list indexes) of a create response: a non-empty string or a number. */
function idAt(body: JsonValue, path: string): string | undefined {
  let at: JsonValue | undefined = body;
  for (const key of path.split('.')) {
    if (Array.isArray(at)) at = /^\d+$/.test(key) ? at[Number(key)] : undefined;
    else if (isMapping(at)) at = Object.hasOwn(at, key) ? at[key] : undefined;
    else at = undefined;
  }
  if (typeof at === 'number' && Number.isFinite(at)) return String(at);
  return typeof at === 'string' && at !== '' ? at : undefined;
}

/** The problems of the properties: bad URLs, headers that are not name → text. */
function validate(properties: JsonObject, path: string): string | undefined {
  const at = (...segments: string[]): string => heatPath(path === '' ? 'properties' : `${path}.properties`, segments);
  const url = properties['url'];
  if (typeof url === 'string') {
    const target = parseTarget(url);
    if (typeof target === 'string') return `Property error: ${at('url')}: ${target}`;
  }
  const template = text(properties, 'resource_url');
  if (template !== '') {
    const target = parseTarget(template.replaceAll('{id}', 'id'));
    if (typeof target === 'string') return `Property error: ${at('resource_url')}: ${target}`;
  }
  const headers = properties['headers'];
  if (isMapping(headers)) {
    for (const [name, value] of Object.entries(headers)) {
      if (!HEADER_NAME.test(name)) return `Property error: ${at('headers')}: "${name}" is not a valid header name`;
      if (name.toLowerCase() === 'idempotency-key')
        return `Property error: ${at('headers', name)}: Stoker sets Idempotency-Key from the operation's idempotency key`;
      const v = headerValue(value);
      if (v === undefined || /[\r\n\0]/.test(v)) return `Property error: ${at('headers', name)}: the value must be a string on one line`;
    }
  }
  return undefined;
}

function stored(reply: Reply): JsonObject {
  return { status: reply.status, body: reply.body };
}

/**
 * The Stoker::HTTP::Resource type.
 *
 * @example
 * ```yaml
 * resources:
 *   ticket:
 *     type: Stoker::HTTP::Resource
 *     properties:
 *       url: https://api.example.com/v1/tickets
 *       headers: { Authorization: { list_join: [' ', ['Bearer', { get_param: token }]] } }
 *       body: { title: Deploy web, priority: 2 }
 *       id_path: data.id
 * outputs:
 *   ticket_url: { value: { get_attr: [ticket, url] } }
 * ```
 */
export const httpResource: ResourceType = {
  type: TYPE,
  description:
    'An item of a REST collection: created by a POST to the collection, updated by a PUT or PATCH of the item, deleted by its DELETE. Drives any HTTP API.',
  supportStatus: supported('0.1.0'),
  properties: PROPERTIES,
  attributes: {
    body: { description: 'The JSON body of the last create or update response (its text when not JSON; null when empty).' },
    status: { description: 'The status code of the last create or update response.', type: 'integer' },
    url: { description: 'The URL of the item, without credentials.', type: 'string' },
  },
  validate(properties, context) {
    return validate(properties, context.path);
  },
  needsReplace(changed) {
    return [...changed].some((k) => LOCATION.has(k));
  },
  async create(ctx) {
    const target = collection(ctx.properties);
    const reply = await send(ctx, ctx.idempotencyKey, 'POST', target, ctx.properties['body'] ?? {});
    if (!expected(ctx.properties, reply.status)) throw statusFailure('POST', target, reply);
    const idPath = text(ctx.properties, 'id_path') || 'id';
    const id = idAt(reply.body, idPath);
    if (id === undefined) {
      const quoted = excerpt(reply.text);
      throw new ResourceFailure(
        'ValueError',
        `POST ${shownUrl(target.url)} returned ${reply.status} without an id at "${idPath}"${quoted === '' ? ' (empty body)' : `: ${quoted}`}`,
      );
    }
    return { physicalId: id, data: stored(reply) };
  },
  async update(ctx) {
    if (ctx.physicalId === null || ctx.changed.some((k) => LOCATION.has(k))) return REPLACE;
    if (!ctx.changed.some((k) => SENT.has(k))) return { physicalId: ctx.physicalId, data: ctx.data };
    const method = text(ctx.properties, 'update_method') || 'PUT';
    const target = item(ctx.properties, ctx.physicalId);
    const reply = await send(ctx, ctx.idempotencyKey, method, target, ctx.properties['body'] ?? {});
    if (!expected(ctx.properties, reply.status)) throw statusFailure(method, target, reply);
    return { physicalId: ctx.physicalId, data: stored(reply) };
  },
  async delete(ctx) {
    // no id: the create never got an answer with one, so there is nothing to delete
    if (ctx.physicalId === null) return;
    const target = item(ctx.properties, ctx.physicalId);
    const reply = await send(ctx, ctx.idempotencyKey, 'DELETE', target);
    if (isSuccess(reply.status) || reply.status === 404 || reply.status === 410) return;
    throw statusFailure('DELETE', target, reply);
  },
  async check(ctx) {
    if (ctx.physicalId === null) throw new ResourceFailure('NotFound', `${ctx.resourceName} has no id: it was never created`);
    const target = item(ctx.properties, ctx.physicalId);
    const reply = await send(ctx, ctx.idempotencyKey, 'GET', target);
    if (!isSuccess(reply.status)) throw statusFailure('GET', target, reply);
  },
  async attribute(name, ctx) {
    if (name === 'url') return ctx.physicalId === null ? null : item(ctx.properties, ctx.physicalId).url.href;
    if (name === 'status' || name === 'body') return ctx.data[name] ?? null;
    return null;
  },
  async show(ctx) {
    if (ctx.physicalId === null) return null;
    const target = item(ctx.properties, ctx.physicalId);
    const reply = await send(ctx, undefined, 'GET', target);
    if (reply.status === 404 || reply.status === 410) return null;
    if (!isSuccess(reply.status)) throw statusFailure('GET', target, reply);
    return reply.body;
  },
};
