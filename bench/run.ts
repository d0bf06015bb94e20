/**
 * `npm run bench` entry point. Benchmarks register here as they are written; until then it says
 * so rather than printing made-up figures.
 */
const benchmarks: ReadonlyArray<{ name: string; run: () => Promise<void> }> = [];

async function main(): Promise<void> {
  if (benchmarks.length === 0) {
    console.log('no benchmarks yet');
    return;
  }
  for (const b of benchmarks) {
    console.log(`== ${b.name}`);
    await b.run();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
