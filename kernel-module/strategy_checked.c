// SPDX-License-Identifier: GPL-2.0
/*
 * checked: the seed's loop, but remap_pfn_range()'s error is returned.
 *
 * Under MAP_PRIVATE the first call fails with -EINVAL (copy-on-write mapping,
 * range is not the whole VMA) and mmap() now fails cleanly with EINVAL instead
 * of succeeding with nothing mapped. Like the seed, it maps from the start of
 * the buffer whatever vm_pgoff says.
 */
#include "mmaplab.h"

static int checked_mmap(struct mmaplab_buffer *buf, struct vm_area_struct *vma)
{
	unsigned long length = vma->vm_end - vma->vm_start;
	char *area = buf->vaddr;
	unsigned long i;
	int ret;

	if (length > buf->npages * PAGE_SIZE)
		return -EIO;

	for (i = 0; i < length; i += PAGE_SIZE) {
		ret = remap_pfn_range(vma, vma->vm_start + i, vmalloc_to_pfn(area + i), PAGE_SIZE, vma->vm_page_prot);
		if (ret)
			return ret;
	}
	return 0;
}

const struct mmaplab_strategy mmaplab_strategy_checked = {
	.name = "checked",
	.alloc = mmaplab_vmalloc_reserved_alloc,
	.free = mmaplab_vmalloc_reserved_free,
	.mmap = checked_mmap,
};
