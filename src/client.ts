/** The typed HTTP client, kept importable from its former path (see ./client/index.ts). */
export * from './client/index.js';
