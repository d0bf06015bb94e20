/**
 * `npm start`: the whole local stack. Until the local IoT Hub and devhost land, it says what is
 * missing and exits non-zero instead of pretending to run.
 */
console.error(
  'npm start: the local stack (local IoT Hub, Azurite and the Functions host) is not built yet; see README "Status".',
);
process.exitCode = 1;
