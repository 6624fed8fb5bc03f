// Shopify theme check on the theme app extension with Shopify's theme-app-extension config.
// Prints every offense as JSON lines and exits 1 when there is any.
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const { check } = require('@shopify/theme-check-node');
const root = process.argv[2] || join(here, '..', '..', 'theme_extension');
const config = join(here, 'node_modules', '@shopify', 'theme-check-node', 'configs', 'theme-app-extension.yml');
const offenses = await check(root, config);
for (const o of offenses) {
  console.log(JSON.stringify({ check: o.check, severity: o.severity, file: o.uri, message: o.message, start: o.start }));
}
console.log(`${offenses.length} offenses`);
process.exit(offenses.length ? 1 : 0);
