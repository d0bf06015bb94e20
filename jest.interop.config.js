/** `npm run test:interop`: the suite with non-Node clients (see test/interop/support.ts). */
const base = require('./jest.config.js');

module.exports = {
  ...base,
  roots: ['<rootDir>/test/interop'],
  testPathIgnorePatterns: ['/node_modules/'],
  // One emulator per file; the Python and mosquitto processes are heavy enough on a small box.
  maxWorkers: 1,
};
