// End-to-end test of the page in headless Chromium (WebGPU on SwiftShader): load it, train ~20
// steps, check that the loss fell and the reconstruction grid was drawn, compare the
// classifiers, run the conformance check and require every row to pass. Saves screenshots.
//
//   node web/e2e.mjs [--url http://localhost:8000/] [--steps 20] [--out web/screenshots]
//
// Serve web/ first (python3 -m http.server -d web 8000). Needs playwright-core (npm install
// --prefix web) and a Chromium (CHROMIUM, default /usr/bin/chromium).

import { createRequire } from 'node:module';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, 'package.json'));
const { chromium } = require('playwright-core');

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
};
const url = arg('url', 'http://localhost:8000/');
const steps = Number(arg('steps', '20'));
const out = arg('out', path.join(here, 'screenshots'));
mkdirSync(out, { recursive: true });

function check(cond, what) {
  if (!cond) throw new Error(`e2e: ${what}`);
  console.log(`ok: ${what}`);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: [
    '--headless=new', '--no-sandbox', '--enable-unsafe-webgpu', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--disable-quic',
  ],
});
let failed = false;
try {
  const page = await browser.newPage({ viewport: { width: 1180, height: 1400 } });
  page.on('console', (m) => console.log(`[page ${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => console.log(`[page error] ${e.message}`));
  await page.goto(url);
  await page.waitForFunction(() => window.wgrad && (window.wgrad.ready || window.wgrad.error), null, { timeout: 60_000 });
  const adapter = await page.textContent('#adapter-name');
  check(await page.evaluate(() => window.wgrad.ready), `WebGPU adapter opened: ${adapter}`);
  await page.screenshot({ path: path.join(out, '1-adapter.png'), fullPage: true });

  await page.fill('#steps', String(steps));
  const t0 = Date.now();
  await page.click('#train-button');
  await page.waitForFunction(() => !window.wgrad.training && window.wgrad.classify.done || window.wgrad.error, null, { timeout: 900_000 });
  const s = await page.evaluate(() => window.wgrad);
  check(!s.error, `no error (${s.error})`);
  check(s.steps === steps, `${s.steps} of ${steps} steps trained`);
  const losses = s.losses.map((l) => l[1]);
  check(losses.length === steps, `${losses.length} losses reported`);
  const mean = (a) => a.reduce((x, y) => x + y, 0) / a.length;
  const first = mean(losses.slice(0, 3)), last = mean(losses.slice(-3));
  check(last < 0.9 * first, `the loss fell: ${first.toFixed(5)} -> ${last.toFixed(5)}`);
  check(s.gridDrawn >= 1, `the reconstruction grid was drawn ${s.gridDrawn} times`);
  const lit = await page.evaluate(() => {
    const c = document.getElementById('grid');
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 0; i < d.length; i += 4) if (d[i] > 60) n++;
    return n;
  });
  check(lit > 500, `the grid has content (${lit} bright pixels)`);
  console.log(`training: ${s.imagesPerS.toFixed(1)} images/s in the browser on ${adapter}; ` +
    `held-out loss ${s.heldOut}; ${((Date.now() - t0) / 1000).toFixed(1)} s with the classifiers`);
  check(s.classify.frozen.accuracy > 0 && s.classify.joint.accuracy > 0,
    `classifiers: frozen ${(100 * s.classify.frozen.accuracy).toFixed(1)}%, joint ${(100 * s.classify.joint.accuracy).toFixed(1)}%`);
  await page.screenshot({ path: path.join(out, '2-trained.png'), fullPage: true });

  const c0 = Date.now();
  await page.click('#check-button');
  await page.waitForFunction(() => window.wgrad.check.done, null, { timeout: 900_000 });
  const c = await page.evaluate(() => window.wgrad.check);
  console.log(`check: ${c.passed} passed, ${c.failed} failed in ${((Date.now() - c0) / 1000).toFixed(1)} s`);
  await page.screenshot({ path: path.join(out, '3-checked.png'), fullPage: true });
  if (c.failed > 0) {
    const failures = await page.$$eval('tr.failed', (rows) => rows.map((r) => r.innerText + ' ' + (r.lastChild.title || '')));
    console.log(failures.join('\n'));
  }
  check(c.failed === 0 && c.passed > 100, `every check row passed (${c.passed})`);
} catch (e) {
  console.error(e.message);
  failed = true;
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
