/**
 * The mapping experiments the test program runs (userspace/mmap-test.c
 * --check NAME), in the order the grid shows them.
 */

export type MapMode = 'private' | 'shared';

export const CHECKS = [
  { name: 'private', mode: 'private', what: 'MAP_PRIVATE, read-only, whole area: read every page' },
  { name: 'shared', mode: 'shared', what: 'MAP_SHARED, read-only, whole area: read every page' },
  { name: 'private-per-page', mode: 'private', what: "one MAP_PRIVATE mapping per page at offset i*PAGE_SIZE (the answer's option 2)" },
  { name: 'shared-write', mode: 'shared', what: 'a write through MAP_SHARED reaches the driver (seen by read())' },
  { name: 'private-isolation', mode: 'private', what: 'a write into MAP_PRIVATE reaches neither the driver nor a MAP_SHARED mapping' },
  { name: 'mprotect', mode: 'private', what: 'mprotect(PROT_WRITE) on a read-only MAP_PRIVATE mapping' },
  { name: 'offset', mode: 'shared', what: 'MAP_SHARED at page offset 3: the first page must be page 3' },
  { name: 'oversize', mode: 'shared', what: 'MAP_SHARED one page larger than the buffer: must be refused' },
  { name: 'readonly', mode: 'shared', what: 'MAP_SHARED, PROT_READ, opened O_RDONLY: a write must fault (no writable page-table entries)' },
] as const satisfies ReadonlyArray<{ name: string; mode: MapMode; what: string }>;

export type CheckName = (typeof CHECKS)[number]['name'];

export const CHECK_NAMES: readonly CheckName[] = CHECKS.map((c) => c.name);

export function isCheckName(s: string): s is CheckName {
  return (CHECK_NAMES as readonly string[]).includes(s);
}

export function checkMode(name: CheckName): MapMode {
  return CHECKS.find((c) => c.name === name)!.mode;
}
