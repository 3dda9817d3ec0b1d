/**
 * Headless Chromium from Debian's package, driven by playwright-core (no browser download). The
 * background-networking switches are off: this machine's network is closed.
 */
import fs from "node:fs";
import { type Browser, type BrowserContextOptions, chromium, type Page } from "playwright-core";

export const CHROMIUM = process.env.LOWBIT_CHROMIUM ?? "/usr/bin/chromium";

export function hasChromium(): boolean {
  return fs.existsSync(CHROMIUM);
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/**
 * CI runs these tests beside the CLI's on two cores, where a page can take fifteen times as long as
 * on an idle machine (the benchmarks page: under a second idle, over 30 s once in CI). Playwright's
 * 30 s default then fails a page that is only slow, so pages get a longer limit for navigations and
 * actions. The tests check what a page renders, not how fast; speed lives in the benchmarks.
 */
export const PAGE_TIMEOUT_MS = 120_000;

export async function openPage(browser: Browser, options?: BrowserContextOptions): Promise<Page> {
  const page = await browser.newPage(options);
  page.setDefaultTimeout(PAGE_TIMEOUT_MS);
  page.setDefaultNavigationTimeout(PAGE_TIMEOUT_MS);
  return page;
}
