// SPDX-License-Identifier: GPL-2.0
/*
 * seed: the driver from the question, as written.
 *
 * vmalloc() memory is not physically contiguous, so each page is mapped with
 * its own remap_pfn_range() call. The return value is ignored: under
 * MAP_PRIVATE every call fails with -EINVAL (a copy-on-write mapping may only
 * be remapped as one range covering vm_start..vm_end), nothing is mapped, and
 * the first access to the area is a SIGBUS.
 */
#include <linux/vmalloc.h>
#include "mmaplab.h"

static int seed_mmap(struct mmaplab_buffer *buf, struct vm_area_struct *vma)
{
	unsigned long length = vma->vm_end - vma->vm_start;
	char *area = buf->vaddr;
	unsigned long i, pfn;

	if (length > buf->npages * PAGE_SIZE)
		return -EIO;

	for (i = 0; i < length; i += PAGE_SIZE) {
		pfn = vmalloc_to_pfn(area + i);
		remap_pfn_range(vma, vma->vm_start + i, pfn, PAGE_SIZE, vma->vm_page_prot);
	}
	return 0;
}

const struct mmaplab_strategy mmaplab_strategy_seed = {
	.name = "seed",
	.alloc = mmaplab_vmalloc_reserved_alloc,
	.free = mmaplab_vmalloc_reserved_free,
	.mmap = seed_mmap,
};
