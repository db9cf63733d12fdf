/**
 * Observations -> explanations. This is where the lab's knowledge lives: the
 * kernel rule behind each outcome (checked against mm/ in Debian's 5.10-7.2
 * sources: remap_pfn_range's copy-on-write rule, do_fault()'s SIGBUS,
 * vm_map_pages' bounds), evidence from the traced calls when there is some,
 * and the fixes that follow. Each explanation has an id, so a report shows one
 * per distinct failure however many cells share it.
 */
import type { CheckName, MapMode } from '../model/checks.js';
import type { KernelLine } from '../model/kernel-log.js';
import { describeCalls } from '../parse/trace.js';
import { FLOOD_LINES, type Explanation, type Outcome, type OutcomeKind, type TracedCalls } from '../model/outcome.js';

export interface ExplainContext {
  strategy: string;
  check: CheckName;
  mode: MapMode;
  outcome: Outcome;
  pages: number;
  /** The driver's kernel log lines while this check ran. */
  kernelLog: readonly KernelLine[];
  seedPrintf: string | undefined;
  traced: readonly TracedCalls[];
}

const FIX_SHARED = "map with MAP_SHARED (the answer's option 1): a shared mapping is not copy-on-write, so per-page remap_pfn_range() succeeds";
const FIX_RETURN = "return remap_pfn_range()'s error from mmap(), so the mapping fails cleanly with EINVAL instead of a SIGBUS on first use";
const FIX_PRIVATE =
  'or make MAP_PRIVATE work: remap_vmalloc_range() on vmalloc_user() memory, vm_map_pages()/vm_insert_page(), or a .fault handler returning vmalloc_to_page(); clearing VM_MAYWRITE first (option 3) works too, read-only';

/** remap_pfn_range() calls that failed with -EINVAL, as the trace saw them. */
function failedRemaps(ctx: ExplainContext): TracedCalls | undefined {
  return ctx.traced.find((c) => c.fn === 'remap_pfn_range' && (c.returns['-22'] ?? 0) > 0);
}

function remapEvidence(ctx: ExplainContext): string {
  const t = failedRemaps(ctx);
  if (!t) return 'the driver maps one page per call';
  const sizes = t.sizes?.length ? `, each for ${t.sizes.map((b) => `${b} bytes`).join(' or ')}` : '';
  return `traced: ${describeCalls(t)}${sizes}, called from ${t.caller}`;
}

function cowRule(ctx: ExplainContext): string[] {
  const t = failedRemaps(ctx);
  return [
    'A MAP_PRIVATE mapping that may later be made writable (VM_MAYWRITE set, VM_SHARED clear) is copy-on-write: is_cow_mapping() is true.',
    `For a copy-on-write mapping remap_pfn_range() accepts only one range covering exactly vm_start..vm_end and returns -EINVAL for anything else (mm/memory.c), before touching a page table; the driver maps single pages, so ${t ? `${t.returns['-22'] === 1 ? 'its first call failed' : `all ${t.returns['-22']} calls failed`} (${remapEvidence(ctx)})` : 'every call fails'}.`,
  ];
}

function sigbus(ctx: ExplainContext, o: Extract<Outcome, { kind: 'sigbus' }>): Explanation {
  const where = `page ${o.page ?? '?'} (address ${o.addr}, ${o.code})`;
  if (ctx.mode === 'private' && (failedRemaps(ctx) || ctx.strategy === 'seed')) {
    return {
      id: 'cow-remap-ignored',
      summary: 'MAP_PRIVATE made the mapping copy-on-write, so each per-page remap_pfn_range() returned -EINVAL; the driver ignored it and the first access raised SIGBUS',
      why: [
        ...cowRule(ctx),
        "The driver ignores remap_pfn_range()'s return value and returns 0, so mmap() succeeds with nothing mapped, and nothing appears in the kernel log.",
        `The VMA has no ->fault handler, so the first access to its empty page table ends in VM_FAULT_SIGBUS: SIGBUS with si_code ${o.code} at the first address touched (here ${where}).`,
      ],
      fixes: [FIX_SHARED, FIX_RETURN, FIX_PRIVATE],
    };
  }
  return {
    id: 'sigbus-unmapped',
    summary: 'a read raised SIGBUS: the mapping had no page there and no ->fault handler to supply one',
    why: [
      `mmap() succeeded, but the page table entry for ${where} was empty.`,
      'With no vm_ops->fault to fill it, the kernel answers the page fault with VM_FAULT_SIGBUS.',
    ],
    fixes: ['check and return the result of every remap_pfn_range()/vm_insert_page() call, and cover the whole VMA', 'or provide a .fault handler that supplies the page'],
  };
}

function mmapFailed(ctx: ExplainContext, o: Extract<Outcome, { kind: 'mmap-failed' }>): Explanation {
  if (ctx.check === 'oversize') {
    const who =
      o.errno === 'ENXIO'
        ? 'vm_map_pages() refuses a VMA larger than the pages it is given, with -ENXIO'
        : o.errno === 'EIO'
          ? "the driver's own length check (length > NPAGES * PAGE_SIZE) returns -EIO"
          : o.errno === 'EINVAL'
            ? 'the size check (the driver\'s, or remap_vmalloc_range()\'s against the vmalloc area) returns -EINVAL'
            : `the driver returned -${o.errno}`;
    return {
      id: `oversize-refused-${o.errno}`,
      summary: `a mapping one page larger than the buffer is refused at mmap() with ${o.errno}, as it should be`,
      why: [`Here ${who}; userspace gets a clean error instead of a mapping that would fault past the buffer.`],
      fixes: [],
    };
  }
  if (o.errno === 'EINVAL' && ctx.mode === 'private' && (failedRemaps(ctx) || ctx.strategy === 'checked')) {
    return {
      id: 'cow-remap-returned',
      summary: 'MAP_PRIVATE is refused with EINVAL: remap_pfn_range() rejects the per-page calls on a copy-on-write mapping, and the driver passes the error on',
      why: [...cowRule(ctx), 'The driver returns the error, so mmap() fails cleanly: no mapping, but no SIGBUS later either.'],
      fixes: [FIX_SHARED, FIX_PRIVATE],
    };
  }
  if (o.errno === 'EACCES' && ctx.check === 'private-isolation') {
    return {
      id: 'no-maywrite-refuses-write',
      summary: 'a writable MAP_PRIVATE mapping is refused with EACCES: the driver makes private mappings read-only by clearing VM_MAYWRITE',
      why: [
        'Clearing VM_MAYWRITE makes a private mapping non-copy-on-write, which is what lets the per-page remap_pfn_range() calls succeed.',
        'A mapping that can never become writable cannot honour PROT_WRITE, so the driver refuses it rather than hand out pages that are not the process\'s own.',
      ],
      fixes: ['when private writable mappings matter, use an API that maps real pages (remap_vmalloc_range(), vm_map_pages(), a .fault handler): copy-on-write then just works'],
    };
  }
  return {
    id: `mmap-${o.errno}`,
    summary: `mmap() failed with ${o.errno} (${o.message}): the driver's mmap handler returned an error`,
    why: [`The driver's file_operations.mmap returned -${o.errno}, which mmap() reports to userspace.`],
    fixes: ["look at the driver's kernel log lines and traced calls for why its mmap() refused"],
  };
}

function wrongData(ctx: ExplainContext, o: Extract<Outcome, { kind: 'wrong-data' }>): Explanation {
  const b = o.firstBad;
  if (b.word === '0xaabbccdd' && b.expectIndex !== null && b.index !== b.expectIndex) {
    return {
      id: 'ignores-pgoff',
      summary: 'a mapping at a non-zero offset shows the wrong pages: the driver ignores vm_pgoff',
      why: [
        'mmap()\'s offset reaches the driver as vma->vm_pgoff, the first buffer page the mapping must show.',
        `The driver maps from the start of its buffer whatever vm_pgoff says: where page ${b.expectIndex} was asked for, page ${b.index} appears.`,
        ...(ctx.check === 'private-per-page'
          ? ["That is why the answer's option 2 (one MAP_PRIVATE mapping per page) does not work with this driver: each single-page mapping is legal under copy-on-write, but every one of them shows page 0."]
          : []),
      ],
      fixes: ['start at the page vm_pgoff names: vmalloc_to_pfn(buf + (vma->vm_pgoff + i) * PAGE_SIZE), and refuse a VMA that runs past the buffer; remap_vmalloc_range(vma, buf, vma->vm_pgoff) and vm_map_pages() do both'],
    };
  }
  return {
    id: 'wrong-data',
    summary: `${o.pagesOk}/${o.pages} pages read as written; page ${b.page} held ${b.word}${b.expectIndex === null ? '' : ` (index ${b.index}, expected ${b.expectIndex})`}`,
    why: ['The mapped memory does not hold the pattern the driver wrote: the mapping points at other memory than the buffer.'],
    fixes: ['compute each page from the buffer (vmalloc_to_pfn/vmalloc_to_page of buffer + i * PAGE_SIZE), never virt_to_phys() on vmalloc memory'],
  };
}

type Explainers = { [K in OutcomeKind]: (ctx: ExplainContext, o: Extract<Outcome, { kind: K }>) => Explanation | undefined };

/** The explanation of each outcome kind; a kind without one fails to compile. */
const EXPLAIN: Explainers = {
  ok: (ctx) => {
    // Said once per strategy, on the check that reads the whole area as the question did.
    if (ctx.check === 'shared' && ctx.seedPrintf && /^\[f{6}/.test(ctx.seedPrintf)) {
      return {
        id: 'sign-extension',
        summary: `the data is right, but the question's printf("[%x]", ((char *)m)[0]) prints ${ctx.seedPrintf}`,
        why: [
          "The first byte is 0xdd; as a (signed) char it is negative, and printf's %x receives it sign-extended to int: ffffffdd.",
        ],
        fixes: ['read the word as an unsigned 32-bit value: printf("[%x]", ((unsigned int *)m)[0]) prints [aabbccdd]'],
      };
    }
    return undefined;
  },
  sigbus: (ctx, o) => sigbus(ctx, o),
  sigsegv: (_ctx, o) => ({
    id: `sigsegv-${o.code}`,
    summary: `SIGSEGV (${o.code}) at page ${o.page ?? '?'}, address ${o.addr}`,
    why: [
      o.code === 'SEGV_ACCERR'
        ? "The access was not allowed by the mapping's protection (e.g. a write to a read-only mapping)."
        : 'The address is not inside any mapping: the area may be smaller than the test assumed.',
    ],
    fixes: ["compare the mapping's size and protection with what the test program accesses"],
  }),
  'mmap-failed': (ctx, o) => mmapFailed(ctx, o),
  'wrong-data': (ctx, o) => wrongData(ctx, o),
  'mprotect-denied': (_ctx, o) => ({
    id: `mprotect-${o.errno}`,
    summary: `mprotect(PROT_READ | PROT_WRITE) is refused with ${o.errno}: the mapping was made unable ever to become writable`,
    why: [
      'mprotect() may add PROT_WRITE only where VM_MAYWRITE is set; the driver cleared it (the answer\'s option 3), which is exactly what made its per-page remap legal under MAP_PRIVATE.',
    ],
    fixes: ['this is the intended trade-off of clearing VM_MAYWRITE; for a private mapping that can become writable, map real pages instead'],
  }),
  'write-lost': (_ctx, o) => ({
    id: 'write-lost',
    summary: `a write through MAP_SHARED did not reach the driver: read() and a second mapping show ${o.seen} at its place`,
    why: ['A shared mapping must show the driver\'s own pages; if a write shows neither in read() nor in a second mapping of the device, the mapping points at a copy or at other memory.'],
    fixes: ['map the buffer\'s own pages (their pfn or struct page), never a copy'],
  }),
  'write-allowed': (_ctx, o) => ({
    id: 'writable-ptes',
    summary: `writable PTEs in a read-only mapping: a process that opened the device O_RDONLY and mapped it PROT_READ wrote${o.reached ? ' into the driver\'s buffer' : ''} without a fault`,
    why: [
      'remap_pfn_range() installs page-table entries with the protection it is given; the mapping\'s own is vma->vm_page_prot, which is read-only for a PROT_READ mapping.',
      'PAGE_SHARED is always writable, so the CPU lets the write through, and the kernel, which believes the mapping read-only, never sees a fault.',
    ],
    fixes: ['pass vma->vm_page_prot to remap_pfn_range() (or vm_insert_page()), never PAGE_SHARED'],
  }),
  'write-leaked': (_ctx, o) => ({
    id: 'write-leaked',
    summary: `a write into a MAP_PRIVATE mapping reached ${o.via === 'read' ? 'the driver\'s buffer (read())' : 'a MAP_SHARED mapping of the same page'}`,
    why: ['A private mapping must be copy-on-write: the first write gives the process its own copy. Here the write landed in the driver\'s page itself.'],
    fixes: ['do not clear copy-on-write on a writable private mapping; map real pages and let the kernel copy them'],
  }),
  'open-failed': (_ctx, o) => ({
    id: 'open-failed',
    summary: `open() of the device failed with ${o.errno} (${o.message})`,
    why: ['The device node could not be opened: the driver may not have registered its character device, or registered another name.'],
    fixes: ['check the driver registers a character device (alloc_chrdev_region/cdev_add) and that insmod succeeded'],
  }),
  killed: (_ctx, o) => ({
    id: `killed-${o.signal}`,
    summary: `the test program was killed by ${o.signal} (exit status ${o.status})`,
    why: ['A signal the test program does not catch ended it; if the kernel log shows an oops, the kernel killed it while running driver code.'],
    fixes: ['read the kernel log below'],
  }),
  crash: (_ctx, o) => ({
    id: 'crash',
    summary: `the kernel crashed while this check ran: ${o.title}`,
    why: ["The driver's code faulted inside the kernel; the call trace shows where."],
    fixes: ['look at the first frame in the driver (the RIP line) and check every pointer it dereferences'],
  }),
  lost: () => ({
    id: 'lost',
    summary: 'the target stopped answering while this check ran',
    why: [
      'A driver that crashes, hangs or deadlocks the kernel takes the SSH server down with it: the connection broke (or keepalives went unanswered) during this check.',
      'The kernel log mmaplab received until then is kept; whatever the kernel printed after that is only on the machine itself.',
    ],
    fixes: ["read the target's own console (serial, IPMI, the cloud's console), or its previous boot's kernel log once it is back (journalctl -k -b -1)", 'then look at what the driver does in this step: an endless loop or a NULL dereference in mmap() or .fault'],
  }),
  hang: (_ctx, o) => ({
    id: 'hang',
    summary: `the guest stopped responding during ${o.step}`,
    why: ["No progress was reported before the deadline: a loop that never ends, or a lock never released, in the driver's code for this step."],
    fixes: ["look at the console for a soft-lockup report, and at the loops in the driver's code for this step"],
  }),
  flood: (_ctx, o) => ({
    id: 'flood',
    summary: `the driver printed ${o.lines} lines in ${o.seconds} s during ${o.step}; the console could not keep up`,
    why: [
      'Every kernel message goes out on the serial console; printing in a loop (per page, per call, per byte) makes the printing task wait for the console, so the mapping call takes minutes and the guest looks hung.',
      `mmaplab stops a job that prints more than ${FLOOD_LINES} lines; the console log keeps their first and last megabytes.`,
    ],
    fixes: ['print once per call, not in the loop: pr_info_once(), printk_ratelimited(), or pr_debug()/dev_dbg() (off unless dynamic debug turns them on)'],
  }),
  'not-run': () => undefined,
  skipped: () => undefined,
};

export function explain(ctx: ExplainContext): Explanation | undefined {
  return (EXPLAIN[ctx.outcome.kind] as (c: ExplainContext, o: Outcome) => Explanation | undefined)(ctx, ctx.outcome);
}
