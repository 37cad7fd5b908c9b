/**
 * OS::Heat::MultipartMime: joins configs into one multipart MIME message, stored as a software
 * config. As Heat's: each part is inline text, or the id of a stored config whose text is used
 * (an id that names no config stays as text); a part of type `multipart` contributes the parts
 * of the message it holds; a part's subtype defaults to its file name without extension; the
 * message is Python's `MIMEMultipart(...).as_string()`; any change replaces the resource.
 *
 * Differs from Heat: the boundary's random number is derived from the operation's idempotency
 * key, so an execution of the same create again writes the same message.
 */
import { ResourceFailure } from '../resource-failure.js';
import { KeyedRandom } from '../keyed-random.js';
import { isMapping } from '../../template/python-values.js';
import { supported } from '../property-schema.js';
import type { ResourceType } from '../resource-type.js';
import type { SoftwareConfigStore } from './config-store.js';
import { multipartMixed, multipartParts, type MimeTextPart } from './mime-message.js';
import { configResourceType } from './software-config.js';

/** oslo's `is_uuid_like`: 32 hex digits once `urn:`, `uuid:`, braces and hyphens are dropped. */
function isUuidLike(value: string): boolean {
  const hex = value
    .replace(/urn:/g, '')
    .replace(/uuid:/g, '')
    .replace(/^[{}]+|[{}]+$/g, '')
    .replace(/-/g, '');
  return /^[0-9a-fA-F]{32}$/.test(hex);
}

/** Python's `os.path.splitext(name)[0]`. */
function withoutExtension(name: string): string {
  const dot = name.lastIndexOf('.');
  const base = name.lastIndexOf('/') + 1;
  if (dot <= base) return name;
  // leading dots of the file name do not start an extension
  return name.slice(base, dot).replace(/^\.+/, '') === '' ? name : name.slice(0, dot);
}

/** A part's text, where Heat's would fail on a missing one (it encodes whatever it got). */
function textOf(value: unknown): string {
  if (typeof value === 'string') return value;
  const pyType = value === null || value === undefined ? 'NoneType' : Array.isArray(value) ? 'list' : typeof value;
  throw new ResourceFailure('AttributeError', `'${pyType}' object has no attribute 'encode'`);
}

/**
 * Builds the OS::Heat::MultipartMime type over `store`.
 *
 * @example
 * ```ts
 * const type = multipartMimeType(configs);
 * // parts [{ config: cloudConfigId }, { config: 'xxxx', type: 'text' }] → 'Content-Type: multipart/mixed; boundary="…'
 * ```
 */
export function multipartMimeType(store: SoftwareConfigStore): ResourceType {
  return configResourceType(
    {
      type: 'OS::Heat::MultipartMime',
      description: 'Joins configs, inline or stored ones, into one multipart MIME message stored as a config.',
      supportStatus: supported('2014.1'),
      properties: {
        group: {
          type: 'string',
          description: 'The namespace of the config, which tells the server which tool applies it.',
          default: 'Heat::Ungrouped',
          supportStatus: supported('14.0.0'),
        },
        parts: {
          type: 'list',
          description: 'The parts of the message.',
          default: [],
          schema: {
            type: 'map',
            schema: {
              config: { type: 'string', description: 'The content of the part, or the id of a stored config.', required: true },
              filename: { type: 'string', description: 'A file name for the part.' },
              type: {
                type: 'string',
                description: 'Whether the content is text or a multipart message whose parts to add.',
                default: 'text',
                constraints: [{ allowed_values: ['text', 'multipart'] }],
              },
              subtype: { type: 'string', description: 'The MIME subtype of a text part.' },
            },
          },
        },
      },
      async render(ctx, configs) {
        const parts: MimeTextPart[] = [];
        const items = Array.isArray(ctx.properties['parts']) ? ctx.properties['parts'].filter(isMapping) : [];
        for (const item of items) {
          const config = item['config'];
          let content: unknown = config;
          if (typeof config === 'string' && isUuidLike(config)) {
            const stored = await configs.get(config);
            if (stored) content = stored.config;
          }
          if (item['type'] === 'multipart') {
            for (const sub of multipartParts(textOf(content)) ?? [])
              parts.push({ text: textOf(sub.payload === null ? [] : sub.payload), subtype: sub.subtype, filename: sub.filename });
            continue;
          }
          const filename = typeof item['filename'] === 'string' ? item['filename'] : '';
          let subtype = typeof item['subtype'] === 'string' ? item['subtype'] : '';
          if (!subtype && filename) subtype = withoutExtension(filename);
          parts.push({ text: textOf(content), subtype, filename });
        }
        const token = KeyedRandom.fromKey('OS::Heat::MultipartMime', ctx.idempotencyKey).bigint63();
        const group = typeof ctx.properties['group'] === 'string' ? ctx.properties['group'] : 'Heat::Ungrouped';
        return { group, config: multipartMixed(parts, token), inputs: [], outputs: [], options: null };
      },
    },
    store,
  );
}
