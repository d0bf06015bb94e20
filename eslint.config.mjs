// Type-aware linting for every TypeScript source; prettier owns formatting.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * Import boundaries (issue 11). The local IoT Hub (`emulator/`) is the workspace package
 * `@iot-hub-functions/local-iothub`: outside it, only that name; inside it, nothing of the app.
 * Relative paths are matched by the folder they climb to (`../../lib/…`), so each rule lists
 * only top-level folders that have no namesake below the folder it guards.
 */
const hubPackage = '@iot-hub-functions/local-iothub';
const climbingTo = (folders, message) => ({
  regex: `^(\\.\\./)+(${folders.join('|')})(/|$)`,
  message,
});
const noHubPackage = {
  group: [hubPackage, `${hubPackage}/*`],
  message: 'the local IoT Hub is a dev/test tool; the deployed app never imports it',
};
const hubByPackageName = climbingTo(
  ['emulator'],
  `use the local IoT Hub through its public API: import from '${hubPackage}'`,
);
/** The emulator's own unit tests, which test its internals; they move into the package later. */
const emulatorUnitTests = [
  'test/conformance/emulator-garbage-frames.test.ts',
  'test/unit/amqp-device-addresses.test.ts',
  'test/unit/amqp-service-adapter.test.ts',
  'test/unit/amqp-service-messages.test.ts',
  'test/unit/c2d-limits.test.ts',
  'test/unit/ca-bundle.test.ts',
  'test/unit/data-lock.test.ts',
  'test/unit/device-http-messages.test.ts',
  'test/unit/emulator-core.test.ts',
  'test/unit/emulator-sas.test.ts',
  'test/unit/emulator-segment-log.test.ts',
  'test/unit/emulator-store-durable.test.ts',
  'test/unit/emulator-store-log.test.ts',
  'test/unit/emulator-twins-methods.test.ts',
  'test/unit/emulator-websocket.test.ts',
  'test/unit/emulator-x509.test.ts',
  'test/unit/events-adapter.test.ts',
  'test/unit/events-parts.test.ts',
  'test/unit/interop-parts.test.ts',
  'test/unit/mqtt-device-session.test.ts',
  'test/unit/mqtt-wire-format.test.ts',
];
const restrict = (...patterns) => ({ 'no-restricted-imports': ['error', { patterns }] });

export default tseslint.config(
  { ignores: ['**/dist/', '**/node_modules/', 'coverage/', '.local/', '**/*.js', '**/*.mjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/return-await': ['error', 'in-try-catch'],
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
      '@typescript-eslint/explicit-module-boundary-types': 'off',
      'no-console': 'off',
    },
  },
  {
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/unbound-method': 'off',
    },
  },
  // The Functions import only lib/ (and packages).
  {
    files: ['functions/**/*.ts'],
    rules: restrict(
      { regex: '^\\.\\./(?!lib/)', message: 'functions/ import only lib/' },
      noHubPackage,
    ),
  },
  {
    files: ['lib/**/*.ts'],
    rules: restrict(
      climbingTo(['emulator', 'devhost', 'test', 'bench'], 'lib/ is the app: no dev or test code'),
      noHubPackage,
    ),
  },
  {
    files: ['emulator/**/*.ts'],
    rules: restrict(
      climbingTo(
        ['lib', 'functions', 'devhost', 'simulator', 'test', 'bench', 'examples', 'web'],
        'the local IoT Hub is a package of its own: it imports nothing of the app',
      ),
    ),
  },
  {
    files: ['devhost/**/*.ts', 'simulator/**/*.ts', 'bench/**/*.ts', 'examples/**/*.ts'],
    rules: restrict(hubByPackageName),
  },
  { files: ['test/**/*.ts'], ignores: emulatorUnitTests, rules: restrict(hubByPackageName) },
);
