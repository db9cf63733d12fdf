import { describe, expect, it } from 'vitest';
import { pgReservedBit } from '../../src/kernel/page-flags.js';

describe("PG_reserved's bit from the headers", () => {
  it('counts the enum up to PG_reserved (6.1)', () => {
    const h = `enum pageflags {
	PG_locked,		/* Page is locked. Don't touch. */
	PG_referenced,
	PG_uptodate,
	PG_dirty,
	PG_lru,
	PG_active,
	PG_workingset,
	PG_waiters,		/* Page has waiters, check its waitqueue. Must be bit #7 */
	PG_error,
	PG_slab,
	PG_owner_priv_1,	/* Owner use. If pagecache, fs may use*/
	PG_arch_1,
	PG_reserved,
	PG_private,`;
    expect(pgReservedBit(h)).toBe(12);
  });

  it('honours explicit values, and guesses nothing past a conditional', () => {
    expect(pgReservedBit('enum pageflags {\n\tPG_locked,\n\tPG_waiters = 7,\n\tPG_reserved,\n')).toBe(8);
    expect(pgReservedBit('enum pageflags {\n\tPG_locked,\n#ifdef CONFIG_X\n\tPG_x,\n#endif\n\tPG_reserved,\n')).toBeUndefined();
    expect(pgReservedBit('no enum here')).toBeUndefined();
  });
});
