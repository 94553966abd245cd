// `node --import ./scripts/node-hooks/register.mjs file.ts`: TypeScript (tsx) + `?raw` imports.
import { register } from 'node:module';
import { register as registerTsx } from 'tsx/esm/api';

registerTsx();
register(new URL('./raw-hooks.mjs', import.meta.url).href);
