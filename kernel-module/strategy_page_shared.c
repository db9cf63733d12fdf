// SPDX-License-Identifier: GPL-2.0
/*
 * page-shared: checked's loop, but with PAGE_SHARED where vma->vm_page_prot
 * belongs, as many lab solutions (and the published one) write it.
 *
 * Everything reads as it should, yet each page-table entry is writable
 * whatever the mapping asked for: a process that opened the device read-only
 * and mapped it PROT_READ can change the driver's buffer, and the kernel,
 * which believes the mapping read-only, never sees the write fault.
 */
#include "mmaplab.h"

static int page_shared_mmap(struct mmaplab_buffer *buf, struct vm_area_struct *vma)
{
	unsigned long length = vma->vm_end - vma->vm_start;
	char *area = buf->vaddr;
	unsigned long i;
	int ret;

	if (length > buf->npages * PAGE_SIZE)
		return -EIO;

	for (i = 0; i < length; i += PAGE_SIZE) {
		ret = remap_pfn_range(vma, vma->vm_start + i, vmalloc_to_pfn(area + i), PAGE_SIZE, PAGE_SHARED);
		if (ret)
			return ret;
	}
	return 0;
}

const struct mmaplab_strategy mmaplab_strategy_page_shared = {
	.name = "page-shared",
	.alloc = mmaplab_vmalloc_reserved_alloc,
	.free = mmaplab_vmalloc_reserved_free,
	.mmap = page_shared_mmap,
};
