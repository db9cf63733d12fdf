/**
 * What a kernel report usually means when a driver caused it, and the fix:
 * a table over the report's title, WARN() message and where it fired. The
 * driver's own line comes from the report's culprit (kbuild/symbolize).
 */
import type { KernelProblem } from '../model/kernel-log.js';

export interface KernelCause {
  id: string;
  cause: string;
  fix: string;
}

interface Rule extends KernelCause {
  /** Matched against "title | message | location". */
  when: RegExp;
}

const RULES: readonly Rule[] = [
  {
    id: 'vfree-not-vmalloc',
    when: /Trying to vfree\(\) (nonexistent vm area|bad address)/,
    cause: 'vfree() of memory that is not vmalloc()ed now: the same buffer freed twice, or memory that came from kmalloc() or was never allocated',
    fix: 'free each buffer once, with its own allocator\'s free (vfree for vmalloc, kfree for kmalloc), and set the pointer to NULL after freeing it',
  },
  {
    id: 'double-kfree',
    when: /(double free|kernel BUG at mm\/slub\.c|Object already free|invalid_op.*kfree|kfree\+)/,
    cause: 'kfree() of memory that is already free or was never kmalloc()ed',
    fix: 'free each buffer once, and set the pointer to NULL after freeing it',
  },
  {
    id: 'bad-page',
    when: /^BUG: Bad page (state|map)/,
    cause: 'pages freed or unmapped while the kernel still counted them in use (PG_reserved left set, or a page freed while still mapped)',
    fix: 'ClearPageReserved() every page that was SetPageReserved() before freeing it, and free nothing a mapping still shows',
  },
  {
    id: 'list-corruption',
    when: /list_(add|del) corruption/,
    cause: 'a list entry added twice or deleted twice: often cdev_add() or a registration repeated, or undone twice in exit',
    fix: 'register each thing once in init and undo it once in exit, in reverse order',
  },
  {
    id: 'sleep-atomic',
    when: /sleeping function called from invalid context|scheduling while atomic/,
    cause: 'a function that may sleep (kmalloc(GFP_KERNEL), copy_to_user, mutex_lock) called with a spinlock held or interrupts off',
    fix: 'do the sleeping work before taking the spinlock, or use GFP_ATOMIC',
  },
  {
    id: 'null-deref',
    // x86's words, and arm64's.
    when: /^BUG: kernel NULL pointer dereference|^Unable to handle kernel NULL pointer dereference/,
    cause: 'a pointer used before it was set: an allocation forgotten or unchecked, or file->private_data / vma->vm_private_data never assigned',
    fix: 'set every pointer before its first use and check every allocation (if (!buf) return -ENOMEM;)',
  },
  {
    id: 'page-fault',
    when: /^BUG: unable to handle page fault|^general protection fault|^Unable to handle kernel (paging request|read from unreadable memory|write to read-only memory|execute from non-executable memory)/,
    cause: 'a pointer to memory that is not there: freed already, uninitialised, or an address computed wrongly',
    fix: 'check the pointer\'s lifetime: it must be allocated before use and not used after it is freed',
  },
];

export function causeOf(p: KernelProblem): KernelCause | undefined {
  const text = `${p.title} | ${p.message ?? ''} | ${p.location ?? ''}`;
  const rule = RULES.find((r) => r.when.test(text));
  return rule && { id: rule.id, cause: rule.cause, fix: rule.fix };
}
