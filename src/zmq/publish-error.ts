import { PublishError } from '../publish/errors.js';

/**
 * The reason a publish item was rejected, without the "Invalid format: " prefix that
 * PublishError.message carries, so callers that add their own prefix never double it.
 * Other errors give their message, less a leading "Invalid format: " if they have one.
 */
export function publishErrorDetail(e: unknown): string {
  if (e instanceof PublishError) return e.detail;
  const msg = e instanceof Error ? e.message : String(e);
  return msg.replace(/^(Invalid format: )+/, '');
}
