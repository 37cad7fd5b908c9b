/**
 * Stoker::HTTP::Resource against a real HTTP server started here on 127.0.0.1: a tiny REST
 * collection that remembers the Idempotency-Key of each create and answers a repeated key with
 * the item it already made, as a server honouring the header does.
 */
import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { JsonObject, JsonValue } from '../../../../src/core/json.js';
import {
  ResourceFailure,
  deterministicUuid,
  isReplace,
  needsReplacement,
  referenceId,
  resolveAllAttributes,
  resolveAttribute,
  resourceStatusReason,
  type OperationContext,
} from '../../../../src/orchestration/resources/index.js';
import { harness } from './helpers.js';

const TYPE = 'Stoker::HTTP::Resource';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

interface Recorded {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A promise and its resolve function (Promise.withResolvers is Node 22's). */
function arrival(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** The REST collection `/items` (and `/v2/things`, the same items under another path), plus a few misbehaving routes. */
class TinyRest {
  readonly items = new Map<string, JsonObject>();
  readonly requests: Recorded[] = [];
  private next = 1;
  /** the item each Idempotency-Key made, as first answered */
  private readonly byKey = new Map<string, JsonObject>();
  /** resolved when a request to /slow arrives */
  slowArrived = arrival();
  private readonly server: Server = createServer((req, res) => void this.handle(req, res));
  base = '';

  async start(): Promise<void> {
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    this.base = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    this.server.close();
    await once(this.server, 'close');
  }

  reset(): void {
    this.requests.length = 0;
    this.items.clear();
    this.byKey.clear();
    this.slowArrived = arrival();
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');
    const url = new URL(req.url ?? '/', this.base);
    this.requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
    const send = (status: number, value?: JsonValue, type = 'application/json'): void => {
      res.writeHead(status, value === undefined ? {} : { 'content-type': type });
      res.end(value === undefined ? undefined : typeof value === 'string' && type !== 'application/json' ? value : JSON.stringify(value));
    };
    const key = req.headers['idempotency-key'];
    const path = url.pathname.replace(/^\/v2\/things/, '/items').replace(/(.)\/+$/, '$1');
    if (path === '/slow') {
      this.slowArrived.resolve();
      return; // never answers
    }
    if (path === '/fail') return send(422, { error: 'name is required', detail: 'x'.repeat(400) });
    if (path === '/huge') return send(201, { id: 'h', blob: 'x'.repeat(1024 * 1024) });
    if (path === '/created-no-id') return send(201, { name: 'nameless' });
    if (path === '/text') return send(200, 'plain text, not JSON', 'text/plain');
    if (path === '/nested' && req.method === 'POST') return send(201, { data: { uuid: 'n-7', tags: ['a'] } });
    if (path === '/items' && req.method === 'POST') {
      const known = typeof key === 'string' ? this.byKey.get(key) : undefined;
      if (known !== undefined) return send(200, known);
      const id = String(this.next++);
      const item = { ...(JSON.parse(body) as JsonObject), id };
      this.items.set(id, item);
      if (typeof key === 'string') this.byKey.set(key, item);
      return send(201, item);
    }
    const m = /^\/items\/([^/]+)$/.exec(path);
    if (m) {
      const id = decodeURIComponent(m[1]!);
      const item = this.items.get(id);
      if (item === undefined) return send(404, { error: `no item ${id}` });
      if (req.method === 'GET') return send(200, item);
      if (req.method === 'PUT') {
        const replaced = { ...(JSON.parse(body) as JsonObject), id };
        this.items.set(id, replaced);
        return send(200, replaced);
      }
      if (req.method === 'PATCH') {
        const merged = { ...item, ...(JSON.parse(body) as JsonObject), id };
        this.items.set(id, merged);
        return send(204);
      }
      if (req.method === 'DELETE') {
        this.items.delete(id);
        return send(204);
      }
    }
    send(405, { error: 'method not allowed' });
  }
}

const rest = new TinyRest();
beforeAll(() => rest.start());
afterAll(() => rest.stop());
afterEach(() => rest.reset());

async function failure(p: Promise<unknown>): Promise<ResourceFailure> {
  try {
    await p;
  } catch (e) {
    if (e instanceof ResourceFailure) return e;
    throw e;
  }
  throw new Error('expected a failure');
}

function setup(raw: JsonObject, over: Partial<OperationContext> = {}) {
  const h = harness();
  const type = h.type(TYPE);
  return { h, type, ctx: h.ctx(type, raw, over) };
}

describe('Stoker::HTTP::Resource', () => {
  it('create POSTs the body with an Idempotency-Key; the id in the answer is the physical id; attributes', async () => {
    const { type, ctx } = setup({ url: `${rest.base}/items`, body: { name: 'web', size: 2 } });
    const result = await type.create(ctx);
    expect(result).toEqual({ physicalId: '1', data: { status: 201, body: { name: 'web', size: 2, id: '1' } } });
    const [post] = rest.requests;
    expect(post).toMatchObject({ method: 'POST', url: '/items' });
    expect(JSON.parse(post!.body)).toEqual({ name: 'web', size: 2 });
    expect(post!.headers['content-type']).toBe('application/json');
    expect(post!.headers['accept']).toBe('application/json');
    expect(post!.headers['idempotency-key']).toBe(deterministicUuid(ctx.idempotencyKey, TYPE));
    expect(post!.headers['idempotency-key']).toMatch(UUID);

    const stored = { ...ctx, ...result };
    expect(await resolveAllAttributes(type, stored)).toEqual({
      body: { name: 'web', size: 2, id: '1' },
      status: 201,
      url: `${rest.base}/items/1`,
    });
    expect(await resolveAttribute(type, 'show', stored)).toEqual({ name: 'web', size: 2, id: '1' });
    expect(referenceId(type, stored)).toBe('1');
  });

  it('a create executed again with the same key gets the same item from the server; another key makes another', async () => {
    const { type, ctx } = setup({ url: `${rest.base}/items/`, body: { name: 'again' } });
    const first = await type.create(ctx);
    const again = await type.create(ctx);
    expect(again.physicalId).toBe(first.physicalId);
    expect(again.data['status']).toBe(200); // the server recognised the key
    const keys = rest.requests.map((r) => r.headers['idempotency-key']);
    expect(keys[0]).toBe(keys[1]);
    const other = await type.create({ ...ctx, idempotencyKey: 'run-1/create.r/2' });
    expect(other.physicalId).not.toBe(first.physicalId);
    expect(rest.requests[2]!.headers['idempotency-key']).not.toBe(keys[0]);
    expect([...rest.items.values()].filter((i) => i['name'] === 'again')).toHaveLength(2);
  });

  it('update PUTs a changed body or headers to the item; other changes send nothing', async () => {
    const { h, type, ctx } = setup({ url: `${rest.base}/items`, body: { name: 'a' } });
    const stored = { ...ctx, ...(await type.create(ctx)) };
    const id = stored.physicalId!;

    const update = h.updateCtx(type, stored, { url: `${rest.base}/items`, body: { name: 'b', extra: true } });
    expect(needsReplacement(type, stored.properties, update.properties)).toEqual({ action: 'update', changed: ['body'] });
    const updated = await type.update(update);
    expect(updated).toEqual({ physicalId: id, data: { status: 200, body: { name: 'b', extra: true, id } } });
    const put = rest.requests.at(-1)!;
    expect(put).toMatchObject({ method: 'PUT', url: `/items/${id}` });
    expect(JSON.parse(put.body)).toEqual({ name: 'b', extra: true });
    expect(put.headers['idempotency-key']).toBe(deterministicUuid(update.idempotencyKey, TYPE));
    expect(rest.items.get(id)).toEqual({ name: 'b', extra: true, id });

    const count = rest.requests.length;
    const quiet = h.updateCtx(type, stored, { url: `${rest.base}/items`, body: { name: 'a' }, timeout: 5, id_path: 'id' });
    expect(quiet.changed).toEqual(['timeout']);
    expect(await type.update(quiet)).toEqual({ physicalId: id, data: stored.data });
    expect(rest.requests.length).toBe(count);

    await type.update(h.updateCtx(type, stored, { url: `${rest.base}/items`, body: { name: 'a' }, headers: { 'X-Trace': 7 } }));
    expect(rest.requests.at(-1)).toMatchObject({ method: 'PUT', headers: { 'x-trace': '7' } });
  });

  it('update_method PATCH; an empty answer leaves body null', async () => {
    const { h, type, ctx } = setup({ url: `${rest.base}/items`, body: { name: 'a', size: 1 } });
    const stored = { ...ctx, ...(await type.create(ctx)) };
    const updated = await type.update(
      h.updateCtx(type, stored, {
        url: `${rest.base}/items`,
        body: { size: 3 },
        update_method: 'PATCH',
        headers: { 'Content-Type': 'application/merge-patch+json' },
      }),
    );
    expect(updated).toEqual({ physicalId: stored.physicalId, data: { status: 204, body: null } });
    expect(rest.requests.at(-1)).toMatchObject({ method: 'PATCH', headers: { 'content-type': 'application/merge-patch+json' } });
    expect(rest.items.get(stored.physicalId!)).toEqual({ name: 'a', size: 3, id: stored.physicalId });
  });

  it('a change of url or resource_url replaces the resource', async () => {
    const { h, type, ctx } = setup({ url: `${rest.base}/items`, body: { name: 'a' } });
    const stored = { ...ctx, ...(await type.create(ctx)) };
    const moved = h.updateCtx(type, stored, { url: `${rest.base}/v2/things`, body: { name: 'a' } });
    expect(needsReplacement(type, stored.properties, moved.properties)).toEqual({ action: 'replace', changed: ['url'] });
    expect(isReplace(await type.update(moved))).toBe(true);
    const retemplated = h.updateCtx(type, stored, {
      url: `${rest.base}/items`,
      body: { name: 'a' },
      resource_url: `${rest.base}/v2/things/{id}`,
    });
    expect(needsReplacement(type, stored.properties, retemplated.properties).action).toBe('replace');
    expect(isReplace(await type.update(retemplated))).toBe(true);
    expect(rest.requests.map((r) => r.method)).toEqual(['POST']);
  });

  it('delete DELETEs the item; a 404 counts as deleted; without an id nothing is sent', async () => {
    const { type, ctx } = setup({ url: `${rest.base}/items`, body: { name: 'doomed' } });
    const stored = { ...ctx, ...(await type.create(ctx)) };
    const id = stored.physicalId!;
    const del = { ...stored, idempotencyKey: 'run-3/delete.r/1' };
    await type.delete(del);
    expect(rest.items.has(id)).toBe(false);
    expect(rest.requests.at(-1)).toMatchObject({ method: 'DELETE', url: `/items/${id}` });
    expect(rest.requests.at(-1)!.headers['idempotency-key']).toBe(deterministicUuid('run-3/delete.r/1', TYPE));
    await expect(type.delete(del)).resolves.toBeUndefined(); // 404: already gone
    const sent = rest.requests.length;
    await type.delete({ ...ctx, physicalId: null });
    expect(rest.requests.length).toBe(sent);
  });

  it('check GETs the item and fails once it is gone; show is then null', async () => {
    const { type, ctx } = setup({ url: `${rest.base}/items`, body: { name: 'checked' } });
    const stored = { ...ctx, ...(await type.create(ctx)) };
    await expect(type.check!(stored)).resolves.toBeUndefined();
    expect(rest.requests.at(-1)).toMatchObject({ method: 'GET', url: `/items/${stored.physicalId}` });
    rest.items.delete(stored.physicalId!);
    const e = await failure(type.check!(stored));
    expect(e.errorType).toBe('HTTPError');
    expect(e.message).toBe(`GET ${rest.base}/items/${stored.physicalId} returned 404 Not Found: {"error":"no item ${stored.physicalId}"}`);
    expect(await resolveAttribute(type, 'show', stored)).toBeNull();
    expect(await resolveAttribute(type, 'body', stored)).toEqual({ name: 'checked', id: stored.physicalId }); // the last answer, as stored
  });

  it('id_path reaches into the answer; resource_url places the id', async () => {
    const { type, ctx } = setup({
      url: `${rest.base}/nested`,
      id_path: 'data.uuid',
      resource_url: `${rest.base}/v2/things/{id}?view=full`,
    });
    const result = await type.create(ctx);
    expect(result.physicalId).toBe('n-7');
    expect(await resolveAttribute(type, 'url', { ...ctx, ...result })).toBe(`${rest.base}/v2/things/n-7?view=full`);
    const list = setup({ url: `${rest.base}/nested`, id_path: 'data.tags.0' });
    expect((await list.type.create(list.ctx)).physicalId).toBe('a');
  });

  it('fails a non-2xx answer naming method, URL (no credentials, query values masked), status and the start of the body', async () => {
    const { type, ctx } = setup(
      { url: `http://alice:s3cret@${rest.base.slice('http://'.length)}/fail?token=hush&page=2`, body: { name: '' } },
      { resourceName: 'ticket' },
    );
    const e = await failure(type.create(ctx));
    expect(e.code).toBe('STOKER_RESOURCE_FAILED');
    expect(e.errorType).toBe('HTTPError');
    expect(e.message).toMatch(
      new RegExp(
        `^POST ${rest.base}/fail\\?token=…&page=… returned 422 Unprocessable Entity: \\{"error":"name is required","detail":"x+…$`,
      ),
    );
    expect(e.message.length).toBeLessThan(300);
    expect(e.message).not.toContain('s3cret');
    expect(e.message).not.toContain('hush');
    expect(resourceStatusReason(e, 'resources.ticket')).toMatch(/^HTTPError: resources\.ticket: POST /);
    // the credentials went as Basic authorization, not in the URL
    expect(rest.requests.at(-1)!.headers['authorization']).toBe(`Basic ${Buffer.from('alice:s3cret').toString('base64')}`);
  });

  it('fails an answer outside expected_status, one without an id, one that is not JSON, and a refused connection', async () => {
    const strict = setup({ url: `${rest.base}/items`, expected_status: [200] });
    expect((await failure(strict.type.create(strict.ctx))).message).toMatch(/^POST .*\/items returned 201 Created: \{/);

    const noId = setup({ url: `${rest.base}/created-no-id` });
    expect((await failure(noId.type.create(noId.ctx))).message).toBe(
      `POST ${rest.base}/created-no-id returned 201 without an id at "id": {"name":"nameless"}`,
    );
    const text = setup({ url: `${rest.base}/text`, id_path: 'id', expected_status: [200] });
    expect((await failure(text.type.create(text.ctx))).message).toContain('without an id at "id": plain text, not JSON');

    const huge = setup({ url: `${rest.base}/huge` });
    expect((await failure(huge.type.create(huge.ctx))).message).toBe(`POST ${rest.base}/huge answered a body larger than 1048576 bytes`);

    const closed = createServer();
    closed.listen(0, '127.0.0.1');
    await once(closed, 'listening');
    const port = (closed.address() as AddressInfo).port;
    closed.close();
    await once(closed, 'close');
    const refused = setup({ url: `http://127.0.0.1:${port}/items` });
    const e = await failure(refused.type.create(refused.ctx));
    expect(e.errorType).toBe('ConnectionError');
    expect(e.message).toBe(`POST http://127.0.0.1:${port}/items failed: connect ECONNREFUSED 127.0.0.1:${port}`);
  });

  it('a request slower than timeout fails with Timeout', async () => {
    const { type, ctx } = setup({ url: `${rest.base}/slow`, timeout: 0.2 });
    const e = await failure(type.create(ctx));
    expect(e.errorType).toBe('Timeout');
    expect(e.message).toBe(`POST ${rest.base}/slow timed out after 0.2 s`);
  });

  it('an abort of the signal ends the request at once, with the abort reason', async () => {
    const controller = new AbortController();
    const { type, ctx } = setup({ url: `${rest.base}/slow` }, { signal: controller.signal });
    const pending = type.create(ctx);
    await rest.slowArrived.promise;
    const reason = new Error('stack cancelled');
    controller.abort(reason);
    await expect(pending).rejects.toBe(reason);
    // already aborted: nothing is sent
    const sent = rest.requests.length;
    await expect(type.delete({ ...ctx, physicalId: '1' })).rejects.toBe(reason);
    expect(rest.requests.length).toBe(sent);
  });

  it('refuses at validation a non-http(s) URL, a bad header, its own Idempotency-Key, an unknown update method', () => {
    const h = harness();
    const type = h.type(TYPE);
    const props = (raw: JsonObject) => () => h.ctx(type, raw);
    expect(props({ url: 'ftp://example.com/items' })).toThrow(
      'Property error: resources.r.properties.url: the scheme must be http or https, not "ftp"',
    );
    expect(props({ url: 'file:///etc/passwd' })).toThrow('not "file"');
    expect(props({ url: 'example.com/items' })).toThrow('resources.r.properties.url: not a valid URL');
    expect(props({ url: 'https://example.com/items', resource_url: 'gopher://x/{id}' })).toThrow(
      'properties.resource_url: the scheme must be http',
    );
    expect(props({ url: 'https://example.com/items', headers: { 'Bad Name': 'x' } })).toThrow('"Bad Name" is not a valid header name');
    expect(props({ url: 'https://example.com/items', headers: { 'idempotency-key': 'k' } })).toThrow('Stoker sets Idempotency-Key');
    expect(props({ url: 'https://example.com/items', headers: { 'X-A': 'a\r\nX-B: b' } })).toThrow(
      'headers.X-A: the value must be a string on one line',
    );
    expect(props({ url: 'https://example.com/items', headers: { 'X-A': { nested: 1 } } })).toThrow('headers.X-A');
    expect(props({ url: 'https://example.com/items', update_method: 'DELETE' })).toThrow('properties.update_method');
    expect(props({})).toThrow('Property url not assigned');
    expect(props({ url: 'https://example.com/items', expected_status: [99] })).toThrow('expected_status[0]');
    expect(h.ctx(type, { url: 'https://example.com/items' }).properties).toEqual({
      url: 'https://example.com/items',
      body: {},
      headers: {},
      id_path: 'id',
      resource_url: null,
      update_method: 'PUT',
      timeout: 30,
      expected_status: null,
    });
  });
});
