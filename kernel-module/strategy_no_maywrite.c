// SPDX-License-Identifier: GPL-2.0
/*
 * no-maywrite: the answer's option 3. A private mapping is copy-on-write only
 * while it may become writable (VM_MAYWRITE); clearing that flag first makes
 * the per-page remap_pfn_range() calls legal. The price: the mapping can never
 * be made writable, so mprotect(PROT_WRITE) fails with EACCES, and a private
 * mapping asked for with PROT_WRITE is refused.
 */
#include "mmaplab.h"

static int no_maywrite_mmap(struct mmaplab_buffer *buf, struct vm_area_struct *vma)
{
	unsigned long length = vma->vm_end - vma->vm_start;
	char *area = buf->vaddr;
	unsigned long i;
	int ret;

	if (length > buf->npages * PAGE_SIZE)
		return -EIO;

	if (mmaplab_is_cow(vma->vm_flags)) {
		/* A read-only view cannot honour a writable private mapping. */
		if (vma->vm_flags & VM_WRITE)
			return -EACCES;
		mmaplab_vm_flags_clear(vma, VM_MAYWRITE);
	}

	for (i = 0; i < length; i += PAGE_SIZE) {
		ret = remap_pfn_range(vma, vma->vm_start + i, vmalloc_to_pfn(area + i), PAGE_SIZE, vma->vm_page_prot);
		if (ret)
			return ret;
	}
	return 0;
}

const struct mmaplab_strategy mmaplab_strategy_no_maywrite = {
	.name = "no-maywrite",
	.alloc = mmaplab_vmalloc_reserved_alloc,
	.free = mmaplab_vmalloc_reserved_free,
	.mmap = no_maywrite_mmap,
};
