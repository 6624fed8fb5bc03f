// Builds the storefront scripts: connectors/storefront/<name>.js (readable source) → theme_extension/assets/<name>.js
// (minified; Shopify allows no source folder inside a theme app extension). `--check` fails when an
// asset is stale instead of writing it.
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { minify } from 'terser';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const names = ['cartresq-tracker.js', 'cartresq-popup.js'];
const check = process.argv.includes('--check');
let stale = 0;
for (const name of names) {
  const source = readFileSync(join(root, 'connectors', 'storefront', name), 'utf8');
  const out = await minify(source, {
    ecma: 2020,
    compress: { passes: 2 },
    mangle: true,
    format: { comments: false, preamble: `/* source: connectors/storefront/${name} */` },
  });
  const target = join(root, 'theme_extension', 'assets', name);
  const code = out.code + '\n';
  let current = '';
  try { current = readFileSync(target, 'utf8'); } catch {}
  if (current === code) continue;
  if (check) { console.error(`stale: theme_extension/assets/${name} (run: npm --prefix .ci/node run build)`); stale = 1; }
  else { writeFileSync(target, code); console.log(`built theme_extension/assets/${name} (${code.length} bytes)`); }
}
process.exit(stale);
