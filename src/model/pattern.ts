/** Which four bytes a driver's pages must start with, and why mmap-test expects them. */

export interface PatternChoice {
  /** The first 32-bit word of a page as mmap-test reads it (little-endian): aa bb cc dd is "0xddccbbaa". */
  word: string;
  /** The same in memory order: "aa bb cc dd". */
  bytes: string;
  from: 'option' | 'lab-test' | 'driver' | 'default';
  /** file:line that says so (lab-test, driver). */
  where?: string;
  /**
   * The other byte order fails the check (the lab's test program or the user
   * said which bytes); otherwise a driver storing them the other way round is
   * only named.
   */
  strict: boolean;
}

/** The lab's bytes, aa bb cc dd at offset 0 of every page. */
export const LAB_WORD = 0xddccbbaa;

export function swap32(w: number): number {
  return (((w & 0xff) << 24) | ((w & 0xff00) << 8) | ((w >>> 8) & 0xff00) | (w >>> 24)) >>> 0;
}

/** "aa bb cc dd": the word's bytes in memory order. */
export function bytesOf(word: number): string {
  return [0, 8, 16, 24].map((s) => ((word >>> s) & 0xff).toString(16).padStart(2, '0')).join(' ');
}

export function wordText(word: number): string {
  return `0x${(word >>> 0).toString(16).padStart(8, '0')}`;
}

export function patternChoice(word: number, from: PatternChoice['from'], strict: boolean, where?: string): PatternChoice {
  return { word: wordText(word), bytes: bytesOf(word), from, ...(where ? { where } : {}), strict };
}

/** Whether a word is the other byte order of the one chosen. */
export function isSwapped(choice: PatternChoice, word: string): boolean {
  return Number.parseInt(word, 16) === swap32(Number.parseInt(choice.word, 16)) && word !== choice.word;
}
