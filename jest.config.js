/** Jest runs the TypeScript sources directly; `npm run build` type-checks them first. */
module.exports = {
  testEnvironment: 'node',
  // The local IoT Hub's own unit tests live in its package (emulator/test).
  roots: ['<rootDir>/test', '<rootDir>/emulator/test'],
  testMatch: ['**/*.test.ts'],
  // Suites that need more than Node run with their own scripts (`npm run test:interop`).
  testPathIgnorePatterns: ['/node_modules/', '<rootDir>/test/interop/', '<rootDir>/test/browser/'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.jest.json' }],
  },
  testTimeout: 60000,
  maxWorkers: 2,
};
