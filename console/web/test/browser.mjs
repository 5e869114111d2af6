// Debian's Chromium driven by Playwright (playwright-core: never downloads a browser). Each
// launch gets a fresh profile (Playwright passes a new --user-data-dir), and each user of a test a
// browser context of its own (own cookies).
import { chromium } from "playwright-core";

export const CHROMIUM = process.env.FAULTLINE_CHROMIUM ?? "/usr/bin/chromium";

export async function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      // FAULTLINE_NETLOG=FILE: Chromium's own network log (diagnosis: aborted loads, TLS, sockets).
      ...(process.env.FAULTLINE_NETLOG ? [`--log-net-log=${process.env.FAULTLINE_NETLOG}`, "--net-log-capture-mode=Everything"] : []),
    ],
  });
}

// A signed-in page on the console at `url`. `credential` is a token (signed in through the page's
// own login form) or {cert, key} (PEM files: a client certificate the browser presents, so the
// page opens signed in). Console errors and CSP violations are collected in page.problems.
export async function signedIn(browser, url, credential) {
  const cert = typeof credential === "object" ? credential : null;
  const context = await browser.newContext({
    ignoreHTTPSErrors: true,
    viewport: { width: 1400, height: 1000 },
    deviceScaleFactor: 1,
    ...(cert ? { clientCertificates: [{ origin: new URL(url).origin, certPath: cert.cert, keyPath: cert.key }] } : {}),
  });
  const page = await context.newPage();
  page.problems = [];
  page.on("console", (m) => {
    // An error answer the test provoked (401, 403, 409) is logged by Chromium too: not a problem.
    if (m.type() === "error" && !/^Failed to load resource: the server responded with a status of (401|403|409)/.test(m.text())) {
      page.problems.push(m.text());
    }
  });
  page.on("pageerror", (e) => page.problems.push(String(e)));
  // The page's requests as they happen, shown when the login form does not come.
  const t0 = Date.now();
  const net = [];
  const at = () => `+${Date.now() - t0}ms`;
  page.on("request", (r) => net.push(`${at()} > ${r.method()} ${r.url()}`));
  page.on("response", (r) => net.push(`${at()} < ${r.status()} ${r.url()}`));
  page.on("requestfailed", (r) => net.push(`${at()} ! ${r.url()} ${r.failure()?.errorText}`));
  page.on("load", () => net.push(`${at()} load`));
  await page.goto(url + "/");
  if (!cert) {
    // When the login form does not come, say what the page showed, what it logged and which of
    // its requests were answered or failed (e.g. net::ERR_NETWORK_CHANGED).
    await page.locator("#token").waitFor({ timeout: 30000 }).catch(async (err) => {
      const html = (await page.content().catch(() => "")).slice(0, 2000);
      throw new Error(`${err.message}\npage problems: ${JSON.stringify(page.problems)}\nrequests:\n${net.join("\n")}\npage: ${html}`);
    });
    await page.locator("#token").fill(credential);
    await page.locator("#login-form button[type=submit]").click();
  }
  await page.locator("#me").waitFor();
  return page;
}
