/**
 * Pushpin's per-subscription message filters (skip-self, skip-users, require-sub,
 * var-subst). Pure: decide, per subscriber, whether a published item goes out and with
 * which content. build-id is recognised but passes content through unchanged.
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

/** Upper bound on var-subst output, guarding against `%(x)s` bombs with huge meta values. */
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
  return filters.includes('var-subst');
}

export class FilterError extends Error {}

/**
 * Substitutes `%(name)s` directives with subscription meta values (`%%` is a literal
 * percent sign). Throws FilterError naming the position or variable at fault.
 */
export function substituteVars(content: Buffer, vars: Record<string, string>): Buffer {
  const s = content.toString('utf8');
  if (!s.includes('%')) return content;
  let out = '';
  for (let n = 0; n < s.length; n++) {
    const c = s[n]!;
    if (c !== '%') {
      out += c;
      continue;
    }
    if (n + 1 >= s.length) throw new FilterError(`Expected directive after '%' at position ${n}`);
    n++;
    if (s[n] === '%') {
      out += '%';
      continue;
    }
    let arg: string | undefined;
    if (s[n] === '(') {
      const start = n;
      let name = '';
      let closed = false;
      for (n++; n < s.length; n++) {
        const d = s[n]!;
        if (d === '\\' && n + 1 < s.length) {
          name += s[++n];
        } else if (d === ')') {
          closed = true;
          break;
        } else {
          name += d;
        }
      }
      if (!closed) throw new FilterError(`Unterminated field starting at position ${start}`);
      if (n + 1 >= s.length) throw new FilterError(`Expected directive after ')' at position ${n}`);
      n++;
      arg = name;
    }
    const type = s[n];
    if (type !== 's') throw new FilterError(`Unknown directive '${type ?? ''}'`);
    if (arg === undefined) throw new FilterError(`Directive 's' requires argument`);
    const value = vars[arg];
    if (value === undefined) throw new FilterError(`No such variable '${arg}'`);
    out += value;
    if (out.length > VAR_SUBST_MAX_BYTES) throw new FilterError(`var-subst output exceeds ${VAR_SUBST_MAX_BYTES} bytes`);
  }
  return Buffer.from(out, 'utf8');
}
