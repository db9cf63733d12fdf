/**
 * Kernel API changes behind build failures: a driver that builds on one
 * kernel and not on another usually met one of these. Each rule matches gcc's
 * own message, so the explanation names the change and the way to write code
 * that builds on both sides of it.
 */
import type { ApiChange, Diagnostic } from '../model/diagnostic.js';

const Q = `['‘’\`"]`;

/**
 * The Debian kernels a change can be avoided on, oldest first (measured:
 * ../shared/notes/guest-facts.md). `removed`: code from before the change
 * builds on the newest of them older than it; `added`: code that needs the
 * change builds on the oldest that has it.
 */
const SUITE_KERNELS: ReadonlyArray<[string, string]> = [
  ['debian:bullseye', '5.10'],
  ['debian:bookworm', '6.1'],
  ['debian:trixie', '6.12'],
  ['debian:sid', '7.2'],
];

const versionNumber = (v: string) => v.split('.').reduce((n, x) => n * 1000 + Number(x), 0);

export function suiteFor(since: string, era: 'removed' | 'added'): string | undefined {
  const at = versionNumber(since);
  if (era === 'removed') return SUITE_KERNELS.filter(([, v]) => versionNumber(v) < at).at(-1)?.[0];
  return SUITE_KERNELS.find(([, v]) => versionNumber(v) >= at)?.[0];
}

const RULES: ReadonlyArray<{ test: RegExp; era: 'removed' | 'added'; change: ApiChange }> = [
  {
    test: new RegExp(`read-only (?:member|location)[^\\n]*vm_flags|assignment of read-only member ${Q}vm_flags${Q}`),
    era: 'removed',
    change: {
      id: 'vm-flags-read-only',
      since: '6.3',
      summary: 'vma->vm_flags is read-only since Linux 6.3 (a const member from 6.12).',
      fix: 'use vm_flags_set(vma, FLAGS) / vm_flags_clear(vma, FLAGS); keep the direct write only behind #if LINUX_VERSION_CODE < KERNEL_VERSION(6, 3, 0).',
    },
  },
  {
    test: new RegExp(`implicit declaration of function ${Q}vm_flags_(?:set|clear|mod|reset)${Q}`),
    era: 'added',
    change: {
      id: 'vm-flags-accessors-missing',
      since: '6.3',
      summary: 'vm_flags_set() and vm_flags_clear() exist only from Linux 6.3.',
      fix: 'on older kernels write vma->vm_flags |= FLAGS directly, behind #if LINUX_VERSION_CODE < KERNEL_VERSION(6, 3, 0).',
    },
  },
  {
    test: new RegExp(`(?:too many arguments to function|passed 2 arguments, but takes just 1)[^\\n]*class_create|class_create[^\\n]*(?:too many arguments|passed 2 arguments)`),
    era: 'removed',
    change: {
      id: 'class-create-one-argument',
      since: '6.4',
      summary: 'class_create() takes only the class name since Linux 6.4 (the THIS_MODULE argument is gone).',
      fix: 'call class_create(NAME) from 6.4 and class_create(THIS_MODULE, NAME) before, chosen with LINUX_VERSION_CODE.',
    },
  },
  {
    test: new RegExp(`${Q}VM_RESERVED${Q} undeclared`),
    era: 'removed',
    change: {
      id: 'vm-reserved-removed',
      since: '3.7',
      summary: 'VM_RESERVED was removed in Linux 3.7.',
      fix: 'use VM_DONTEXPAND | VM_DONTDUMP (through vm_flags_set() from 6.3).',
    },
  },
  {
    test: new RegExp(`${Q}struct (?:mm_struct|vm_area_struct)${Q} has no member named ${Q}(?:mmap|vm_next|vm_prev)${Q}`),
    era: 'removed',
    change: {
      id: 'vma-list-removed',
      since: '6.1',
      summary: 'mm->mmap and vma->vm_next are gone since Linux 6.1 (VMAs live in a maple tree).',
      fix: 'walk the VMAs with VMA_ITERATOR(vmi, mm, 0) and for_each_vma(vmi, vma).',
    },
  },
  {
    test: new RegExp(`implicit declaration of function ${Q}remap_vmalloc_range_partial${Q}|remap_vmalloc_range_partial[^\\n]*undefined`),
    era: 'removed',
    change: {
      id: 'remap-vmalloc-range-partial-unexported',
      since: '5.11',
      summary: 'remap_vmalloc_range_partial() is not available to modules after Linux 5.10.',
      fix: 'allocate with vmalloc_user() and map with remap_vmalloc_range(vma, buf, vma->vm_pgoff), or insert the pages one by one with vm_insert_page().',
    },
  },
  {
    test: new RegExp(`${Q}(?:mmap_prepare|vm_area_desc)${Q}|struct vm_area_desc|unknown field ${Q}mmap_prepare${Q}`),
    era: 'added',
    change: {
      id: 'mmap-prepare-new',
      since: '6.16',
      summary: 'f_op->mmap_prepare and struct vm_area_desc arrived in Linux 6.16; older kernels only have f_op->mmap.',
      fix: 'set .mmap_prepare only behind #if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 16, 0) and keep .mmap for older kernels (never both on one kernel: it is refused).',
    },
  },
  {
    test: new RegExp(`implicit declaration of function ${Q}is_cow_mapping${Q}`),
    era: 'added',
    change: {
      id: 'is-cow-mapping-private',
      since: '6.1',
      summary: 'is_cow_mapping() is public in <linux/mm.h> only from Linux 6.1 (before, it is internal to mm/).',
      fix: 'test (vma->vm_flags & (VM_SHARED | VM_MAYWRITE)) == VM_MAYWRITE directly.',
    },
  },
];

/** The API changes a failed build's diagnostics point at, each once, in rule order. */
export function apiChangesFor(diagnostics: readonly Pick<Diagnostic, 'message' | 'severity'>[]): ApiChange[] {
  const text = diagnostics.filter((d) => d.severity !== 'note').map((d) => d.message);
  return RULES.filter((r) => text.some((m) => r.test.test(m))).map((r) => {
    const suite = suiteFor(r.change.since, r.era);
    return suite ? { ...r.change, buildsOn: suite } : r.change;
  });
}

/** "7.2.13+deb14-cloud-amd64" -> [7, 2]. */
function majorMinor(release: string): [number, number] | undefined {
  const m = /^(\d+)\.(\d+)/.exec(release);
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

/**
 * What still builds but is on its way out on this kernel, read from the
 * driver's own sources: a note, not a failure.
 */
export function deprecationNotes(sources: readonly string[], release: string): string[] {
  const v = majorMinor(release);
  if (!v) return [];
  const notes: string[] = [];
  const text = sources.join('\n');
  const atLeast = (a: number, b: number) => v[0] > a || (v[0] === a && v[1] >= b);
  if (atLeast(6, 17) && /\.mmap\s*=/.test(text) && !/\.mmap_prepare\s*=/.test(text)) {
    notes.push(
      `f_op->mmap is deprecated since Linux 6.17 in favour of f_op->mmap_prepare (struct vm_area_desc); ${release} still calls .mmap, but new drivers should set .mmap_prepare behind #if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 16, 0).`,
    );
  }
  return notes;
}

/**
 * The Debian kernel to check a driver on instead, when every error of its
 * build is a kernel API removal: the oldest of the suites that each change
 * names, so that none of them applies there. Undefined when any error is the
 * driver's own (or a change has no older suite).
 */
export function olderKernelFor(diagnostics: readonly Pick<Diagnostic, 'message' | 'severity'>[]): { suite: string; changes: ApiChange[] } | undefined {
  const errors = diagnostics.filter((d) => d.severity === 'error');
  if (errors.length === 0) return undefined;
  const rules = errors.map((e) => RULES.find((r) => r.era === 'removed' && r.test.test(e.message)));
  if (rules.some((r) => !r)) return undefined;
  const suites = rules.map((r) => suiteFor(r!.change.since, 'removed'));
  if (suites.some((x) => !x)) return undefined;
  const order = SUITE_KERNELS.map(([suite]) => suite);
  const suite = [...suites].sort((a, b) => order.indexOf(a!) - order.indexOf(b!))[0]!;
  return { suite, changes: apiChangesFor(errors) };
}
