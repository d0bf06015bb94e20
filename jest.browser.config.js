/**
 * Browser tests (`npm run test:browser`): headless Chromium against the local stack. Kept apart
 * from `npm test` (test/browser/*.browser.ts do not match its *.test.ts), so that one stays Node-only.
 */
const base = require('./jest.config.js');

module.exports = {
  ...base,
  roots: ['<rootDir>/test/browser'],
  // The default run leaves test/browser out; this one is only that folder.
  testPathIgnorePatterns: ['/node_modules/'],
  testMatch: ['**/*.browser.ts'],
  testTimeout: 180000,
  maxWorkers: 1,
};
