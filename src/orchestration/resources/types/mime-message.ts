/**
 * The MIME of OS::Heat::MultipartMime, as Python's `email` package writes and reads it (the
 * compat32 policy, no header folding): text parts `text/<subtype>` in `us-ascii` (7bit) or, for
 * any other text, `utf-8` (base64 in 76-column lines), an optional attachment file name,
 * joined as `multipart/mixed` under a boundary of 15 `=`, 19 digits and `==` that occurs in no
 * part. Reading a config of type `multipart` gives back its parts the way Heat uses them (raw
 * payload, content subtype, file name).
 */

/**
 * One text part to write.
 *
 * @example
 * ```ts
 * const part: MimeTextPart = { text: '#!/bin/sh\necho hi', subtype: 'x-shellscript', filename: 'boot.sh' };
 * ```
 */
export interface MimeTextPart {
  text: string;
  /** `plain` when empty or null */
  subtype: string | null;
  filename: string | null;
}

/**
 * One part read from a multipart message: its payload as written (a nested multipart's is
 * null), its content subtype and its file name.
 *
 * @example
 * ```ts
 * const read: MimeReadPart = { payload: 'xxxx', subtype: 'plain', filename: null };
 * ```
 */
export interface MimeReadPart {
  payload: string | null;
  subtype: string;
  filename: string | null;
}

const isAscii = (text: string): boolean => [...text].every((c) => c.charCodeAt(0) < 128);

/** Python's `_write_lines`: every line ending becomes `\n`. */
const normaliseLines = (text: string): string => text.replace(/\r\n|\r/g, '\n');

/** Python's `email.utils.quote` inside `name="…"`, or RFC 2231 for non-ASCII values. */
function formatParam(name: string, value: string): string {
  if (isAscii(value)) return `${name}="${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
  const encoded = [...Buffer.from(value, 'utf8')]
    .map((b) =>
      /[A-Za-z0-9_.~-]/.test(String.fromCharCode(b)) ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`,
    )
    .join('');
  return `${name}*=utf-8''${encoded}`;
}

/** Python's compat32 header value: non-ASCII text becomes one RFC 2047 encoded word, base64 or Q, the shorter (Q on a tie). */
function headerValue(value: string): string {
  if (isAscii(value)) return value;
  const bytes = Buffer.from(value, 'utf8');
  const q = [...bytes]
    .map((b) =>
      b === 0x20
        ? '_'
        : /[-!*+/A-Za-z0-9]/.test(String.fromCharCode(b))
          ? String.fromCharCode(b)
          : `=${b.toString(16).toUpperCase().padStart(2, '0')}`,
    )
    .join('');
  return Math.ceil(bytes.length / 3) * 4 < q.length ? `=?utf-8?b?${bytes.toString('base64')}?=` : `=?utf-8?q?${q}?=`;
}

/** One part as `MIMEText(text, subtype, charset)` flattens (headers, blank line, body). */
function textPart(part: MimeTextPart): string {
  const ascii = isAscii(part.text);
  const headers = [
    `Content-Type: ${headerValue(`text/${part.subtype || 'plain'}; charset="${ascii ? 'us-ascii' : 'utf-8'}"`)}`,
    'MIME-Version: 1.0',
    `Content-Transfer-Encoding: ${ascii ? '7bit' : 'base64'}`,
  ];
  if (part.filename) headers.push(`Content-Disposition: attachment; ${formatParam('filename', part.filename)}`);
  let body: string;
  if (ascii) body = normaliseLines(part.text);
  else {
    const bytes = Buffer.from(part.text, 'utf8');
    body = '';
    for (let i = 0; i < bytes.length; i += 57) body += `${bytes.subarray(i, i + 57).toString('base64')}\n`;
  }
  return `${headers.join('\n')}\n\n${body}`;
}

/**
 * `MIMEMultipart(_subparts=parts).as_string()`. `token` is the random number Python draws for
 * the boundary (below 2^63); a boundary that occurs in a part gets `.0`, `.1`, … appended.
 *
 * @example
 * ```ts
 * multipartMixed([{ text: 'xxxx', subtype: null, filename: null }], 1234n);
 * // 'Content-Type: multipart/mixed; boundary="===============0000000000000001234=="\nMIME-Version: 1.0\n\n--====…'
 * ```
 */
export function multipartMixed(parts: readonly MimeTextPart[], token: bigint): string {
  const texts = parts.map(textPart);
  const all = texts.join('\n');
  const base = `${'='.repeat(15)}${token.toString().padStart(19, '0')}==`;
  let boundary = base;
  for (let counter = 0; all.split('\n').some((line) => line === `--${boundary}` || line === `--${boundary}--`); counter++)
    boundary = `${base}.${counter}`;
  const head = `Content-Type: multipart/mixed; boundary="${boundary}"\nMIME-Version: 1.0\n\n`;
  return `${head}--${boundary}\n${texts.join(`\n--${boundary}\n`)}\n--${boundary}--\n`;
}

interface Parsed {
  headers: [string, string][];
  body: string;
}

/** Headers up to the first blank line (or the first line that is not a header), then the body. */
function parseEntity(text: string): Parsed {
  const lines = normaliseLines(text).split('\n');
  const headers: [string, string][] = [];
  let i = 0;
  for (; i < lines.length; i++) {
    const line = lines[i]!;
    if (line === '') {
      i++;
      break;
    }
    if (/^[ \t]/.test(line) && headers.length > 0) {
      const last = headers[headers.length - 1]!;
      last[1] += `\n${line}`;
      continue;
    }
    const m = /^([\x21-\x39\x3b-\x7e]+):[ \t]*(.*)$/.exec(line);
    if (!m) break;
    headers.push([m[1]!.toLowerCase(), m[2]!]);
  }
  return { headers, body: lines.slice(i).join('\n') };
}

const header = (p: Parsed, name: string): string | undefined => p.headers.find(([n]) => n === name)?.[1];

/** The parameters of a header value (`type/sub; a="b"; c=d`), names lower-cased, RFC 2231 values decoded. */
function params(value: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  if (value === undefined) return out;
  const re = /;\s*([^\s=;]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)/g;
  for (let m = re.exec(value); m; m = re.exec(value)) {
    const name = m[1]!.toLowerCase();
    let v = m[2]!.trim();
    if (v.startsWith('"')) v = v.slice(1, -1).replace(/\\(.)/g, '$1');
    if (name.endsWith('*')) {
      const [, charset = 'utf-8', encoded = v] = /^([^']*)'[^']*'(.*)$/.exec(v) ?? [];
      try {
        v = Buffer.from(decodeURIComponent(encoded), charset.toLowerCase() === 'utf-8' ? 'utf8' : 'latin1').toString();
      } catch {
        v = encoded;
      }
      out.set(name.slice(0, -1), v);
    } else if (!out.has(name)) out.set(name, v);
  }
  return out;
}

/** `type/subtype` of an entity, lower-cased; text/plain when absent or malformed. */
function contentType(p: Parsed): string {
  const raw = header(p, 'content-type')?.split(';')[0]?.trim().toLowerCase() ?? '';
  return /^[^/\s]+\/[^/\s]+$/.test(raw) ? raw : 'text/plain';
}

/**
 * The parts of a multipart message, or null when `text` has no headers or is not multipart
 * (Heat then adds nothing).
 *
 * @example
 * ```ts
 * multipartParts(multipartMixed([{ text: 'xxxx', subtype: null, filename: 'a.txt' }], 1n));
 * // [{ payload: 'xxxx', subtype: 'plain', filename: 'a.txt' }]
 * ```
 */
export function multipartParts(text: string): MimeReadPart[] | null {
  const message = parseEntity(text);
  if (message.headers.length === 0 || !contentType(message).startsWith('multipart/')) return null;
  const boundary = params(header(message, 'content-type')).get('boundary');
  if (boundary === undefined) return [];
  const parts: MimeReadPart[] = [];
  let current: string[] | null = null;
  for (const line of message.body.split('\n')) {
    const trimmed = line.replace(/[ \t]+$/, '');
    if (trimmed === `--${boundary}` || trimmed === `--${boundary}--`) {
      if (current) parts.push(readPart(current.join('\n')));
      current = trimmed.endsWith(`${boundary}--`) ? null : [];
      if (current === null) break;
    } else current?.push(line);
  }
  return parts;
}

function readPart(text: string): MimeReadPart {
  const p = parseEntity(text);
  const type = contentType(p);
  const filename = params(header(p, 'content-disposition')).get('filename') ?? params(header(p, 'content-type')).get('name') ?? null;
  return { payload: type.startsWith('multipart/') ? null : p.body, subtype: type.split('/')[1]!, filename: filename?.trim() ?? null };
}
