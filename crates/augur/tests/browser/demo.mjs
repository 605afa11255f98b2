// Drives the augur demo's listing page in headless Chromium (Debian's /usr/bin/chromium) with
// playwright-core, as a seller: the form starts empty and suggests the known models; a listing
// shows its price, range, three reasons, similar cars and the asking-price verdict, timed from
// the click; an invalid listing shows every problem at once and inserts nothing. Then the
// operator view shows the pipeline streaming.
// Usage: node demo.mjs http://127.0.0.1:8080   (prints one JSON line; exit 1 on failure)
import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
const { chromium } = require('playwright-core');

const base = process.argv[2];
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const out = {};
try {
  const page = await browser.newPage();
  // The operator view: wait until the pipeline streams (the first stats event comes within a second).
  await page.goto(base + '/operator', { waitUntil: 'load' });
  await page.waitForFunction(() => document.getElementById('f-status').textContent === 'Streaming', null, { timeout: 60000 });
  out.operator_status = await page.textContent('#f-status');

  await page.goto(base, { waitUntil: 'load' });
  out.operator_figures_on_seller_page = (await page.$$('#f-lag, #f-latency')).length;
  await page.waitForFunction(() => document.querySelectorAll('#models option').length > 0, null, { timeout: 10000 });
  out.suggested_models = await page.$$eval('#models option', os => os.map(o => o.value));
  out.prefilled = { tax: await page.inputValue('#tax'), mpg: await page.inputValue('#mpg'), year: await page.inputValue('#year') };
  // Give the event stream a moment to open.
  await page.waitForTimeout(300);

  await page.fill('#model', 'focus');
  await page.fill('#year', '2018');
  await page.selectOption('#transmission', 'Manual');
  await page.fill('#mileage', '9083');
  await page.selectOption('#fuelType', 'Petrol');
  await page.fill('#tax', '150');
  await page.fill('#mpg', '57.7');
  await page.fill('#engineSize', '1.0');
  await page.fill('#price', '20000');
  const t0 = Date.now();
  await page.click('#submit');
  await page.waitForSelector('#suggested', { timeout: 2000 });
  await page.waitForFunction(() => document.querySelector('#range') && document.querySelectorAll('li.reason').length === 3
      && document.querySelectorAll('tr.comparable').length > 0, null, { timeout: Math.max(1, 2000 - (Date.now() - t0)) });
  out.seconds = (Date.now() - t0) / 1000;
  out.price = await page.textContent('#suggested');
  out.range = await page.textContent('#range');
  out.reasons = await page.$$eval('li.reason', ls => ls.map(l => l.textContent));
  out.asking = await page.textContent('#asking');
  out.comparables = await page.$$eval('tr.comparable', rs => rs.map(r => Array.from(r.cells).map(c => c.textContent.trim())));

  // An invalid listing: every problem at once, nothing inserted.
  const maxId = async () => Math.max(0, ...(await (await page.request.get(base + '/api/listings')).json()).map(r => r.id));
  const idBefore = await maxId();
  await page.fill('#year', '2060');
  await page.fill('#mpg', '');
  await page.click('#submit');
  await page.waitForSelector('#error', { timeout: 2000 });
  out.error = await page.textContent('#error');
  out.field_errors = { year: await page.textContent('#err-year'), mpg: await page.textContent('#err-mpg'), model: await page.textContent('#err-model') };
  await page.waitForTimeout(300);
  out.inserted_after_error = (await maxId()) - idBefore;
  out.ok = true;
} catch (e) {
  out.ok = false;
  out.failure = String(e);
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
process.exit(out.ok ? 0 : 1);
