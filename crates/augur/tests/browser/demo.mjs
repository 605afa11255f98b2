// Drives the augur demo's listing page in headless Chromium (Debian's /usr/bin/chromium) with
// playwright-core: submit a listing and time how long its suggested price takes to appear;
// then submit an invalid one and check the message and that nothing was inserted.
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
  await page.goto(base, { waitUntil: 'load' });
  // Wait for the event stream to be open (the first stats event arrives within a second).
  await page.waitForFunction(() => document.getElementById('f-status').textContent === 'Streaming', null, { timeout: 30000 });
  const before = await (await page.request.get(base + '/api/listings')).json();
  await page.fill('#model', 'Focus');
  await page.fill('#year', '2018');
  await page.selectOption('#transmission', 'Manual');
  await page.fill('#mileage', '9083');
  await page.selectOption('#fuelType', 'Petrol');
  await page.fill('#tax', '150');
  await page.fill('#mpg', '57.7');
  await page.fill('#engineSize', '1.0');
  const t0 = Date.now();
  await page.click('#submit');
  await page.waitForSelector('#suggested', { timeout: 2000 });
  out.seconds = (Date.now() - t0) / 1000;
  out.price = await page.textContent('#suggested');
  out.listed = (await page.$$('#listings tr')).length;

  // An invalid listing: a clear message, nothing inserted.
  const count = async () => (await (await page.request.get(base + '/api/listings')).json()).length;
  const maxId = async () => Math.max(0, ...(await (await page.request.get(base + '/api/listings')).json()).map(r => r.id));
  const idBefore = await maxId();
  await page.fill('#year', '2060');
  await page.click('#submit');
  await page.waitForSelector('#error', { timeout: 2000 });
  out.error = await page.textContent('#error');
  await page.waitForTimeout(300);
  out.inserted_after_error = (await maxId()) - idBefore;
  out.before = before.length;
  out.after = await count();
  out.ok = true;
} catch (e) {
  out.ok = false;
  out.failure = String(e);
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
process.exit(out.ok ? 0 : 1);
