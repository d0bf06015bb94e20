/**
 * Browser tests (`npm run test:browser`): headless Chromium against the local stack. Kept apart
 * from `npm test` (test/browser/*.browser.ts do not match its *.test.ts), so that one stays Node-only.
 */
const base = require('./jest.config.js');

module.exports = {
  ...base,
  roots: ['<rootDir>/test/browser'],
  testMatch: ['**/*.browser.ts'],
  testTimeout: 180000,
  maxWorkers: 1,
};
