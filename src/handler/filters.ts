/**
 * Pushpin's per-subscription message filters (skip-self, skip-users, require-sub,
 * var-subst, build-id). Pure: decide, per subscriber, whether a published item goes out
 * and with which content.
 */

/** What a subscriber's filters know about it. */
export interface FilterContext {
  /** Grip-Set-Meta / instruct meta of the subscription. */
  subscriptionMeta: Record<string, string>;
  /** Meta of the published item. */
  publishMeta: Record<string, string>;
  /** Names of every channel the subscriber holds. */
  channels: ReadonlySet<string>;
}

/** Upper bound on templated output, guarding against `%(x)s` bombs with huge meta values. */
export const VAR_SUBST_MAX_BYTES = 10_000_000;

/** The filters gripd knows; others are ignored as Pushpin ignores unknown names. */
export const KNOWN_FILTERS: ReadonlySet<string> = new Set(['skip-self', 'skip-users', 'require-sub', 'build-id', 'var-subst']);

/** True when any of `filters` says this subscriber must not get the item. */
export function isDroppedByFilters(filters: readonly string[], ctx: FilterContext): boolean {
  for (const f of filters) {
    if (f === 'skip-self') {
      const user = ctx.subscriptionMeta['user'];
      const sender = ctx.publishMeta['sender'];
      if (user && sender && user === sender) return true;
    } else if (f === 'skip-users') {
      const user = ctx.subscriptionMeta['user'];
      if (!user) continue;
      const skip = (ctx.publishMeta['skip_users'] ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
      if (skip.includes(user)) return true;
    } else if (f === 'require-sub') {
      const need = ctx.publishMeta['require_sub'];
      if (need && !ctx.channels.has(need)) return true;
    }
  }
  return false;
}

/** True when `filters` may change the content (so the shared encoded buffer cannot be used). */
export function hasContentFilter(filters: readonly string[]): boolean {
  return filters.includes('var-subst') || filters.includes('build-id');
}

export class FilterError extends Error {}

/** Resolves one `%` directive: `type` is the directive letter, `arg` the `(…)` argument. Throws FilterError. */
type DirectiveHandler = (type: string, arg: string | undefined) => string;

/**
 * Pushpin's small template language: `%%` is a percent sign, `%X` and `%(arg)X` are
 * directives resolved by `handle` (`\` escapes inside the parentheses). Works on bytes as
 * latin1 so any content survives unchanged. Throws FilterError naming the position.
 */
export function processFormat(input: Buffer, handle: DirectiveHandler): Buffer {
  const s = input.toString('latin1');
  if (!s.includes('%')) return input;
  let out = '';
  for (let n = 0; n < s.length; n++) {
    const c = s[n]!;
    if (c !== '%') {
      out += c;
      continue;
    }
    if (n + 1 >= s.length) throw new FilterError(`Expected directive after '%' at position ${n}`);
    n++;
    const d = s[n]!;
    if (d === '%') {
      out += '%';
      continue;
    }
    let arg: string | undefined;
    if (d === '(') {
      const start = n;
      if (n + 1 >= s.length) throw new FilterError(`Expected character after '(' at position ${n}`);
      let name = '';
      let closed = false;
      for (n++; n < s.length; n++) {
        const e = s[n]!;
        if (e === '\\') {
          if (n + 1 >= s.length) throw new FilterError(`Expected character after '\\' at position ${n}`);
          name += s[++n];
        } else if (e === ')') {
          closed = true;
          break;
        } else {
          name += e;
        }
      }
      if (!closed) throw new FilterError(`Unterminated field starting at position ${start}`);
      if (n + 1 >= s.length) throw new FilterError(`Expected directive after ')' at position ${n}`);
      n++;
      arg = name;
    } else if (!/[A-Za-z]/.test(d)) {
      throw new FilterError(`Unknown directive '${d}' at position ${n}`);
    }
    try {
      out += handle(s[n]!, arg);
    } catch (err) {
      throw new FilterError(`${(err as Error).message} at position ${n}`);
    }
    if (out.length > VAR_SUBST_MAX_BYTES) throw new FilterError(`output exceeds ${VAR_SUBST_MAX_BYTES} bytes`);
  }
  return Buffer.from(out, 'latin1');
}

/**
 * var-subst: `%(name)s` becomes the subscription meta value `name` (UTF-8). Throws
 * FilterError for unknown variables or directives.
 */
export function substituteVars(content: Buffer, vars: Record<string, string>): Buffer {
  return processFormat(content, (type, arg) => {
    if (type !== 's') throw new Error(`Unknown directive '${type}'`);
    if (arg === undefined) throw new Error(`Directive 's' requires argument`);
    const value = vars[Buffer.from(arg, 'latin1').toString('utf8')];
    if (value === undefined) throw new Error(`No such variable '${Buffer.from(arg, 'latin1').toString('utf8')}'`);
    return Buffer.from(value, 'utf8').toString('latin1');
  });
}

/**
 * build-id: renders the subscription meta `id_format` (`%(channel)s` = that channel's
 * prev-id) and puts the result wherever the content says `%I` (`%(literal)I` inserts the
 * literal instead); meta `id_encoding=hex` hex-encodes it. Throws FilterError.
 */
export function buildIdContent(content: Buffer, meta: Record<string, string>, prevIds: ReadonlyMap<string, string>): Buffer {
  const idFormat = meta['id_format'];
  if (idFormat === undefined) throw new FilterError("no sub meta 'id_format'");
  let id: string | undefined;
  if (prevIds.size > 0) {
    try {
      id = processFormat(Buffer.from(idFormat, 'utf8'), (type, arg) => {
        if (type !== 's') throw new Error(`Unknown directive '${type}'`);
        if (arg === undefined) throw new Error(`Directive 's' requires argument`);
        const v = prevIds.get(Buffer.from(arg, 'latin1').toString('utf8'));
        if (v === undefined) throw new Error(`No such variable '${arg}'`);
        return Buffer.from(v, 'utf8').toString('latin1');
      }).toString('latin1');
    } catch (err) {
      throw new FilterError(`failed to render ID: ${(err as Error).message}`);
    }
  }
  const enc = meta['id_encoding'];
  if (enc !== undefined && enc !== 'hex') throw new FilterError(`unsupported encoding: ${enc}`);
  return processFormat(content, (type, arg) => {
    if (type !== 'I') throw new Error(`Unknown directive '${type}'`);
    const raw = arg ?? id;
    if (raw === undefined) throw new Error('No ID specified and no default ID in context');
    return enc === 'hex' ? Buffer.from(raw, 'latin1').toString('hex') : raw;
  });
}

/**
 * Applies the content filters among `filters` (var-subst, build-id) in their listed
 * order. `prevIds` maps channel names (as the backend gave them) to their prev-ids.
 */
export function applyContentFilters(filters: readonly string[], content: Buffer, meta: Record<string, string>, prevIds: ReadonlyMap<string, string>): Buffer {
  let out = content;
  for (const f of filters) {
    if (f === 'var-subst') out = substituteVars(out, meta);
    else if (f === 'build-id') out = buildIdContent(out, meta, prevIds);
  }
  return out;
}
