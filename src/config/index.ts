/**
 * Public surface of src/config: pushpin.conf -> typed, frozen Config.
 */
export type { Config, ListenAddress, LocalListener, XffRules } from './types.js';
export { loadConfig, findConfigFile, configSearchPaths, DEFAULT_LIBDIR, COMMAND_LINE } from './load.js';
export type { LoadConfigOptions, LoadConfigResult } from './load.js';
export { parseIni, parseIniValue } from './ini.js';
export type { IniDocument, IniEntry, IniSection } from './ini.js';
export { DEFAULTS, keyStatus, keysByStatus } from './schema.js';
export type { KeyStatus, Section } from './schema.js';
export { parseListenAddress, parseLogLevelSpec, parseXffRules } from './values.js';
