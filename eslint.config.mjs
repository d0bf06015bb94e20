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
/**
 * Tests outside the package that may reach into it: the one test that checks the app's C2D limit
 * arithmetic against the exact topic and property bag the hub's MQTT surface writes.
 */
const crossBoundaryTests = ['test/unit/lib/messages/c2d-limits.test.ts'];
const appFolders = ['lib', 'functions', 'devhost', 'simulator', 'bench', 'examples', 'web'];
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
    files: ['test/**/*.ts', 'emulator/test/**/*.ts'],
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
        [...appFolders, 'test'],
        'the local IoT Hub is a package of its own: it imports nothing of the app',
      ),
    ),
  },
  // The package's own tests (emulator/test) test its internals; of the repository's test support
  // they use only the two helpers that know nothing of the app or the hub.
  {
    files: ['emulator/test/**/*.ts'],
    rules: restrict(
      climbingTo(
        appFolders,
        'the local IoT Hub is a package of its own: it imports nothing of the app',
      ),
      {
        regex: '^(\\.\\./)+test/(?!support/(wait|amqp-round-trip)$)',
        message: 'the package tests use only test/support/wait and test/support/amqp-round-trip',
      },
    ),
  },
  {
    files: ['devhost/**/*.ts', 'simulator/**/*.ts', 'bench/**/*.ts', 'examples/**/*.ts'],
    rules: restrict(hubByPackageName),
  },
  { files: ['test/**/*.ts'], ignores: crossBoundaryTests, rules: restrict(hubByPackageName) },
);
