/**
 * Public surface of publishing: the HTTP publish API.
 */
export { startPublishApi, type PublishApi, type PublishApiOptions, type PublishTarget, PUBLISH_API_MAX_CONNECTIONS } from './http-api.js';
