/**
 * Public surface of src/websocket: the WebSocket-over-HTTP event codec and header
 * helpers (events.ts) and GRIP WebSocket control messages (control.ts).
 */
export * from './events.js';
export * from './control.js';
