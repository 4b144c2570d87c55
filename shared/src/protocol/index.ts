/** The device protocol: safe to import in browsers (no Node built-ins). */
export * from './frames.js';
export * from './codes.js';
export * from './codec.js';
