/**
 * Public surface of the GRIP handler: holds, subscriptions, delivery, and the built-in
 * test handler.
 */
export { Handler, OUTBOUND_MAX_BYTES, type HandlerCounters, type HandlerOptions, type HandlerEvents } from './handler.js';
export type { InstructDecoder } from './host.js';
export { testHandler, TEST_REQUEST_MAX_BYTES, type TestRequest } from './test-handler.js';
export { TimerWheel, WHEEL_TICK_MS } from './timer-wheel.js';
