// SPDX-License-Identifier: GPL-2.0
/*
 * contiguous: the lab's exercise 1. A physically contiguous block from
 * alloc_pages() is mapped by one remap_pfn_range() over the whole VMA, which
 * is the one range a copy-on-write (MAP_PRIVATE) mapping accepts.
 */
#include <linux/gfp.h>
#include "mmaplab.h"

static int contiguous_alloc(struct mmaplab_buffer *buf)
{
	buf->block = alloc_pages(GFP_KERNEL | __GFP_ZERO, get_order(buf->npages * PAGE_SIZE));
	if (!buf->block)
		return -ENOMEM;
	buf->vaddr = page_address(buf->block);
	return 0;
}

static void contiguous_free(struct mmaplab_buffer *buf)
{
	__free_pages(buf->block, get_order(buf->npages * PAGE_SIZE));
}

static int contiguous_mmap(struct mmaplab_buffer *buf, struct vm_area_struct *vma)
{
	if (!mmaplab_fits(buf, vma))
		return -EINVAL;
	return remap_pfn_range(vma, vma->vm_start, page_to_pfn(buf->block) + vma->vm_pgoff,
			       vma->vm_end - vma->vm_start, vma->vm_page_prot);
}

const struct mmaplab_strategy mmaplab_strategy_contiguous = {
	.name = "contiguous",
	.alloc = contiguous_alloc,
	.free = contiguous_free,
	.mmap = contiguous_mmap,
};
