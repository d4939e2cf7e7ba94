/**
 * Public surface of src/websocket: the WebSocket-over-HTTP event codec and header
 * helpers (events.ts) and GRIP WebSocket control messages (control.ts).
 */
export * from './events.js';
export * from './control.js';
export { encodeFrame, OPCODE, MAX_CONTROL_PAYLOAD_BYTES, type FrameKind } from './frame.js';
export { WsSession, CLOSE_GRACE_MS, CLOSE_SLOW_CONSUMER, CLOSE_SHUTDOWN, type WsSessionHooks } from './ws-session.js';
export { OverHttpConnection, postEvents, RETRY_BASE_MS, RETRY_JITTER_MS, RETRY_MAX, CLOSE_BACKEND_ERROR, type OverHttpTarget, type WohResponse } from './over-http.js';
export { startPassthrough, PASSTHROUGH_HIGH_WATER_BYTES, CLOSE_BACKEND_GONE, type PassthroughOptions } from './passthrough.js';
export { WebSocketBridge, isWsHub, rejectHandshake, MAX_MESSAGE_BYTES, type WsHub, type UpgradeOptions } from './upgrade.js';
