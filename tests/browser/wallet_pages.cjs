// Two students' wallet pages in headless Chromium, driven by Playwright
// (playwright-core, with Debian's chromium): each makes a key, asks the
// faucet, one pays the other, both watch the payment become final; then a
// key is saved from a page and one made by `toycoin-wallet` is taken in.
// Run by tests/tests/browser_wallet.rs, which checks the result it prints
// (one JSON line) against toycoin-wallet and the class.
//
//   node wallet_pages.cjs BASE_URL OUT_DIR CLI_KEY_FILE
//
// With WALLET_SCREENSHOT=FILE.png it also saves the first page as the
// payment became final (docs/wallet-page.png).
"use strict";
const { chromium } = require("playwright-core");

const [base, outDir, cliKey] = process.argv.slice(2);
const WAIT = 120000;

async function main() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const errors = [];
  const open = async (name) => {
    const context = await browser.newContext({ acceptDownloads: true });
    const page = await context.newPage();
    page.on("pageerror", (e) => errors.push(`${name}: ${e.message}`));
    await page.goto(`${base}/wallet`);
    return page;
  };
  const waitFor = (page, what, fn, arg) =>
    page.waitForFunction(fn, arg, { timeout: WAIT, polling: 250 }).catch(async (e) => {
      const status = await page.textContent("#status");
      const refused = await page.$$eval("#refused li", (l) => l.map((x) => x.textContent));
      throw new Error(`waiting for ${what}: ${e.message}\nstatus: ${status}\nrefused: ${refused.join(" | ")}`);
    });
  const balance = (page) => page.evaluate(() => Number(document.getElementById("balance").textContent));
  try {
    const a = await open("a");
    const b = await open("b");
    const started = Date.now();
    for (const p of [a, b]) {
      await p.click("#make-key");
      await waitFor(p, "a key", () => document.getElementById("fingerprint").textContent.length === 16);
    }
    const keysMs = Date.now() - started;
    const fa = await a.textContent("#fingerprint");
    const fb = await b.textContent("#fingerprint");
    for (const p of [a, b]) {
      await p.click("#faucet");
      await waitFor(p, "the faucet's answer", () => /granted/.test(document.getElementById("status").textContent));
    }
    for (const p of [a, b]) {
      await waitFor(p, "the faucet's coins proved", () => Number(document.getElementById("balance").textContent) >= 50);
    }
    const before = { a: await balance(a), b: await balance(b) };
    await a.fill("#pay-to", fb);
    await a.fill("#pay-amount", "20");
    await a.click("#pay");
    await waitFor(a, "the payment sent", () => /^Sent/.test(document.getElementById("status").textContent));
    const short = /transaction ([0-9a-f]{12})/.exec(await a.textContent("#status"))[1];
    for (const p of [a, b]) {
      await waitFor(p, "the payment final", (id) => {
        const row = document.querySelector(`tr[data-txid^="${id}"] td.final`);
        return row !== null;
      }, short);
    }
    const after = { a: await balance(a), b: await balance(b) };
    if (process.env.WALLET_SCREENSHOT) {
      await a.setViewportSize({ width: 900, height: 900 });
      await a.screenshot({ path: process.env.WALLET_SCREENSHOT, fullPage: true });
    }
    const [download] = await Promise.all([a.waitForEvent("download"), a.click("#export-key")]);
    await download.saveAs(`${outDir}/page-a.pem`);
    const c = await open("c");
    await c.setInputFiles("#import-key", cliKey);
    await waitFor(c, "the imported key", () => document.getElementById("fingerprint").textContent.length === 16);
    const result = {
      keys_ms: keysMs,
      a: { fingerprint: fa, before: before.a, after: after.a,
           history: await a.$$eval("#history tr", (r) => r.map((x) => x.textContent)),
           refused: await a.$$eval("#refused li", (l) => l.map((x) => x.textContent)) },
      b: { fingerprint: fb, before: before.b, after: after.b,
           history: await b.$$eval("#history tr", (r) => r.map((x) => x.textContent)) },
      payment: short,
      c: { fingerprint: await c.textContent("#fingerprint") },
      errors,
    };
    console.log(JSON.stringify(result));
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  console.error(e.stack || String(e));
  process.exit(1);
});
