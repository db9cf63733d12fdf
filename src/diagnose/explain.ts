/**
 * Observations -> explanations. This is where the lab's knowledge lives: the
 * kernel rule behind each outcome, checked against mm/ in Debian's 5.10-7.2
 * sources (see the notes in the README), and the fixes that follow from it.
 */
import type { MapMode } from '../guest/protocol.js';
import type { KernelLine } from '../parse/kmsg.js';
import type { Explanation, Outcome } from '../report/model.js';

export interface ExplainContext {
  strategy: string;
  mode: MapMode;
  outcome: Outcome;
  pages: number;
  /** The driver's kernel log lines while this mode ran. */
  kernelLog: readonly KernelLine[];
  seedPrintf: string | undefined;
  /** What the other modes saw, for explanations that compare them. */
  others: ReadonlyArray<{ mode: MapMode; outcome: Outcome }>;
}

const FIXES_FOR_PRIVATE = [
  'map with MAP_SHARED (the answer\'s option 1): a shared mapping is not copy-on-write, so per-page remap_pfn_range() succeeds',
  'return remap_pfn_range()\'s error from mmap(), so the mapping fails cleanly with EINVAL instead of a SIGBUS on first use',
  'or make MAP_PRIVATE work: clear VM_MAYWRITE before remapping (option 3; read-only, vm_flags_clear() on 6.3+), map one page per mmap() (option 2), or use an API built for vmalloc memory: remap_vmalloc_range() on vmalloc_user() memory, vm_map_pages()/vm_insert_page(), or a .fault handler returning vmalloc_to_page()',
];

/** The driver logs how the kernel classified the VMA: "..., MAP_PRIVATE, copy-on-write". */
function driverSawCow(log: readonly KernelLine[]): boolean | undefined {
  const line = log.find((l) => /mmaplab: mmap .*(not )?copy-on-write/.test(l.text));
  if (!line) return undefined;
  return !/not copy-on-write/.test(line.text);
}

function explainSigbus(ctx: ExplainContext, o: Extract<Outcome, { kind: 'sigbus' }>): Explanation {
  const where = `page ${o.page ?? '?'} (address ${o.addr}, ${o.code})`;
  if (ctx.mode === 'private' && ctx.strategy === 'seed') {
    const cow = driverSawCow(ctx.kernelLog);
    return {
      summary: `MAP_PRIVATE made the mapping copy-on-write, so each per-page remap_pfn_range() returned -EINVAL; the driver ignored it and the first read raised SIGBUS at ${where}`,
      why: [
        `A MAP_PRIVATE mapping that may later be made writable (VM_MAYWRITE set, VM_SHARED clear) is copy-on-write: is_cow_mapping() is true${cow === true ? ' (the driver logged "copy-on-write" for this VMA)' : ''}.`,
        `For a copy-on-write mapping remap_pfn_range() accepts only one range covering exactly vm_start..vm_end, and returns -EINVAL for anything else (mm/memory.c); the driver maps ${ctx.pages} single pages, so all ${ctx.pages} calls fail before touching a page table.`,
        'The driver ignores remap_pfn_range()\'s return value and returns 0, so mmap() succeeds with nothing mapped, and nothing appears in the kernel log.',
        `The VMA has no ->fault handler, so the first access to its empty page table ends in VM_FAULT_SIGBUS: the kernel sends SIGBUS with si_code ${o.code} at the first address touched, ${o.addr}.`,
      ],
      fixes: FIXES_FOR_PRIVATE,
    };
  }
  return {
    summary: `the read of ${where} raised SIGBUS: the mapping had no page there and no ->fault handler to supply one`,
    why: [
      'mmap() succeeded, so the driver accepted the mapping, but the page table entry for the faulting address was empty.',
      'With no vm_ops->fault to fill it, the kernel answers the page fault with VM_FAULT_SIGBUS.',
      'Check that every page-mapping call in the driver\'s mmap() succeeded (their return values), and that the whole VMA is covered.',
    ],
    fixes: ['check and return the result of every remap_pfn_range()/vm_insert_page() call', 'or provide a .fault handler that supplies the page'],
  };
}

/** EINVAL under MAP_PRIVATE only, with MAP_SHARED working: the copy-on-write refusal. */
function cowRefusal(ctx: ExplainContext, o: Extract<Outcome, { kind: 'mmap-failed' }>): boolean {
  const shared = ctx.others.find((x) => x.mode === 'shared');
  return ctx.mode === 'private' && o.errno === 'EINVAL' && shared?.outcome.kind === 'ok';
}

export function explain(ctx: ExplainContext): Explanation | undefined {
  const o = ctx.outcome;
  switch (o.kind) {
    case 'ok':
      if (ctx.seedPrintf && ctx.seedPrintf !== '[aabbccdd]' && /^\[f{6}/.test(ctx.seedPrintf)) {
        return {
          summary: `every page reads 0xaabbccdd; the question's printf("[%x]", ((char *)m)[0]) would still print ${ctx.seedPrintf}`,
          why: [
            'The first byte is 0xdd; as a (signed) char it is negative, and printf\'s %x receives it sign-extended to int: ffffffdd.',
            'The data is right; the way it was printed was not.',
          ],
          fixes: ['read the word as an unsigned 32-bit value: printf("[%x]", ((unsigned int *)m)[0]) prints [aabbccdd]'],
        };
      }
      return undefined;
    case 'sigbus':
      return explainSigbus(ctx, o);
    case 'sigsegv':
      return {
        summary: `SIGSEGV (${o.code}) at page ${o.page ?? '?'}, address ${o.addr}`,
        why: [
          o.code === 'SEGV_ACCERR'
            ? 'The access was not allowed by the mapping\'s protection (e.g. a write to a read-only mapping).'
            : 'The address is not inside any mapping: the area may be smaller than the test assumed.',
        ],
        fixes: ['compare the mapping\'s size and protection with what the test program accesses'],
      };
    case 'mmap-failed':
      return {
        summary: `mmap() failed with ${o.errno} (${o.message}): the driver's mmap handler returned an error`,
        why: cowRefusal(ctx, o)
          ? [
              'Under MAP_PRIVATE the mapping is copy-on-write, while MAP_SHARED of the same device worked.',
              'remap_pfn_range() refuses a copy-on-write mapping anything but one range covering the whole VMA, with -EINVAL, and the driver passed the error on: a clean failure, but no mapping.',
            ]
          : [`The driver's file_operations.mmap returned -${o.errno}, which mmap() reports to userspace.`],
        fixes: cowRefusal(ctx, o) ? FIXES_FOR_PRIVATE.slice(0, 1).concat(FIXES_FOR_PRIVATE.slice(2)) : ['look at the driver\'s kernel log lines for why its mmap() refused'],
      };
    case 'open-failed':
      return {
        summary: `open() of the device failed with ${o.errno} (${o.message})`,
        why: ['The device node could not be opened: the driver may not have registered its character device, or registered another name.'],
        fixes: ['check the driver registers a character device (alloc_chrdev_region/cdev_add) and that insmod succeeded'],
      };
    case 'wrong-data':
      return {
        summary: `${o.pagesOk}/${o.pages} pages read the expected data; page ${o.firstBad.page} held ${o.firstBad.word} (page index ${o.firstBad.index})`,
        why: [
          o.firstBad.index !== o.firstBad.page && o.firstBad.word === '0xaabbccdd'
            ? `Page ${o.firstBad.page} of the mapping shows buffer page ${o.firstBad.index}: the driver mapped the wrong page there (check the pfn/page computed for each address and vm_pgoff).`
            : 'The mapped memory does not hold the pattern the driver wrote: the mapping points at other memory than the buffer.',
        ],
        fixes: ['compute each page from the buffer (vmalloc_to_pfn/vmalloc_to_page of buffer + i * PAGE_SIZE) and honour vma->vm_pgoff'],
      };
    case 'killed':
      return {
        summary: `the test program was killed by ${o.signal} (exit status ${o.status})`,
        why: ['A signal the test program does not catch ended it; if the kernel log shows an oops, the kernel killed it while running driver code.'],
        fixes: ['read the kernel log below'],
      };
    case 'crash':
      return {
        summary: `the kernel crashed while this mode ran: ${o.title}`,
        why: ['The driver\'s code faulted inside the kernel; the call trace below shows where.'],
        fixes: ['look at the first frame in the driver (the RIP line) and check every pointer it dereferences'],
      };
    case 'hang':
      return {
        summary: `the guest stopped responding during ${o.step}`,
        why: ['No progress was reported before the deadline: a loop that never ends, or a lock never released, in the driver\'s code for this step.'],
        fixes: ['look at the console log for a soft-lockup report, and at the loops in the driver\'s code for this step'],
      };
    case 'not-run':
      return undefined;
  }
}
