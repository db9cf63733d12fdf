/**
 * A mapping as a row of pages, as data: for each page of the mapping, which
 * page of the driver's buffer it showed. Computed once per check
 * (diagnose/mapping-picture.ts), kept in results.json, drawn by the terminal
 * and HTML reports.
 */

export interface PicturePage {
  page: number;
  /** The buffer page shown; fault: the page faulted or was never reached; unknown: not one of the buffer's pages (another word, a lost marker) or nothing to tell by. */
  shows: number | 'fault' | 'unknown';
  /** The buffer page it should show, when the lab's pages say. */
  expect: number | null;
  ok: boolean;
}

export interface MappingPicture {
  /**
   * How pages were told apart: the lab's page index (the number is the buffer
   * page), the page frame or a marker written into each (numbered as first
   * seen, so a repeated number is an alias).
   */
  by: 'index' | 'frame' | 'marker';
  pages: PicturePage[];
  /** The test died at this page: the pages after it were never reached. */
  stoppedAt?: { page: number; signal: 'SIGBUS' | 'SIGSEGV' };
}
