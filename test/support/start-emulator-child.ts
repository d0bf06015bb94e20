/**
 * A process that starts a local IoT Hub through the test support, prints its data folder and
 * keeps running: `test/conformance/emulator-orphans.test.ts` kills it to prove the hub goes too.
 */
import { startEmulator } from './emulator';

startEmulator({ inMemory: true })
  .then((emulator) => process.stdout.write(`DATA ${emulator.dataDir}\n`))
  .catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
