/**
 * Public surface of src/grip: pure GRIP codecs (instructions, Grip-* headers, Grip-Last)
 * and Grip-Sig signing/verification.
 */
export type * from './types.js';
export { InstructError, KeySpecError } from './errors.js';
export {
  GRIP_INSTRUCT_CONTENT_TYPE,
  GRIP_LAST_HEADER,
  MAX_GRIP_LAST_ENTRIES,
  formatGripLast,
  isGripHeaderName,
  isGripResponse,
  isInstructContentType,
  parseGripLastHeader,
  stripGripHeaders,
  type GripLastEntry,
} from './headers.js';
export {
  DEFAULT_HOLD_TIMEOUT_S,
  DEFAULT_KEEP_ALIVE_TIMEOUT_S,
  DEFAULT_NEXT_LINK_TIMEOUT_S,
  MAX_FILTERS_PER_CHANNEL,
  MAX_INSTRUCT_BODY_BYTES,
  MAX_TIMER_S,
  MIN_HOLD_TIMEOUT_S,
  MIN_KEEP_ALIVE_TIMEOUT_S,
  parseGripHeaders,
  parseInstructBody,
  unescapeCString,
  type InstructLimits,
} from './instruct.js';
export {
  GRIP_FEATURE,
  GRIP_SIG_REFRESH_MS,
  GRIP_SIG_TTL_S,
  MAX_GRIP_SIG_BYTES,
  createGripSigVerifier,
  createGripSigner,
  isPemKey,
  verifyGripSig,
  type GripSigAlgorithm,
  type GripSigVerifier,
  type GripSigner,
  type GripSignerOptions,
} from './signature.js';
export { reasonForStatus } from './status-reasons.js';
export { applyCorsHeaders, splitHeaderList, CORS_DEFAULT_ALLOW_METHODS, CORS_MAX_AGE_S, MAX_CORS_LIST_ITEMS } from './cors.js';
export {
  JsonpError,
  jsonpOptionsFromRoute,
  parseJsonpRequest,
  wrapJsonpResponse,
  wrapJsonpHeldResponse,
  createJsonpStreamEncoder,
  JSONP_CONTENT_TYPE,
  type JsonpOptions,
  type JsonpRequest,
  type JsonpResponse,
} from './jsonp.js';
