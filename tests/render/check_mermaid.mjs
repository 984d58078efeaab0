// Parses each Mermaid file given on the command line with Mermaid's own
// parser (in a jsdom window); exits non-zero on the first invalid one.
import { readFileSync } from 'node:fs';
import { JSDOM } from 'jsdom';

const dom = new JSDOM('<!doctype html><html><body></body></html>');
globalThis.window = dom.window;
globalThis.document = dom.window.document;
globalThis.DOMParser = dom.window.DOMParser;
const { default: mermaid } = await import('mermaid');
mermaid.initialize({ startOnLoad: false });

let failed = 0;
for (const file of process.argv.slice(2)) {
  try {
    const result = await mermaid.parse(readFileSync(file, 'utf8'));
    console.log(`valid ${result.diagramType}: ${file}`);
  } catch (error) {
    console.error(`invalid: ${file}\n${error.message}`);
    failed += 1;
  }
}
process.exit(failed === 0 ? 0 : 1);
