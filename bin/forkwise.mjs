#!/usr/bin/env node
// The forkwise CLI: TypeScript sources run directly (tsx), shaders imported as text.
import '../scripts/node-hooks/register.mjs';

const { run } = await import('../src/cli.ts');
await run(process.argv.slice(2));
// Dawn keeps the event loop alive; leave once the work is done.
process.exit(process.exitCode ?? 0);
