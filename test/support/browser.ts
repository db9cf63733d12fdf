/**
 * A page opened in a real browser: Debian's headless Chromium driven by
 * puppeteer-core, with every request that is not the page's own file recorded
 * (and refused), so a test can say the page needs no network.
 */
import { execFileSync } from 'node:child_process';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';

function chromium(): string {
  for (const name of ['chromium', 'chromium-browser']) {
    try {
      return execFileSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).trim();
    } catch {
      // next
    }
  }
  throw new Error('no chromium on PATH: bin/install-deps installs it (Debian: apt-get install chromium)');
}

/** What a test reads of an element: its data- attributes, text and links (the DOM stays in the browser). */
export interface Seen {
  data: Record<string, string>;
  text: string;
  /** The href attribute as written, and as the browser resolved it. */
  href: string | null;
  resolved: string | null;
  /** The colour the browser drew its text in (computed style), e.g. rgb(192, 38, 45). */
  color: string;
  /** The element's class names. */
  classes: string[];
}

export interface OpenPage {
  /** Every element the selector matches, in document order. */
  all(selector: string): Promise<Seen[]>;
  /** Requests the page made beyond its own file (refused). */
  requests(): string[];
  close(): Promise<void>;
}

const READ = `(sel) => [...document.querySelectorAll(sel)].map((e) => ({ data: { ...e.dataset }, text: e.textContent, href: e.getAttribute('href'), resolved: e.href ?? null, color: getComputedStyle(e).color, classes: [...e.classList] }))`;

export async function openPage(file: string): Promise<OpenPage> {
  const browser: Browser = await puppeteer.launch({ executablePath: chromium(), headless: true, args: ['--no-sandbox', '--disable-gpu'] });
  const outside: string[] = [];
  try {
    const page: Page = await browser.newPage();
    await page.setRequestInterception(true);
    const own = `file://${file}`;
    page.on('request', (req) => {
      if (req.url() === own) void req.continue();
      else {
        outside.push(req.url());
        void req.abort();
      }
    });
    await page.goto(own, { waitUntil: 'load' });
    return {
      all: async (selector) => (await page.evaluate(`(${READ})(${JSON.stringify(selector)})`)) as Seen[],
      requests: () => [...outside],
      close: () => browser.close(),
    };
  } catch (e) {
    await browser.close();
    throw e;
  }
}
