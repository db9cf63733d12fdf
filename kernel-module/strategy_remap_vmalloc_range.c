// SPDX-License-Identifier: GPL-2.0
/*
 * remap-vmalloc-range: the kernel's own helper for exactly this job.
 *
 * remap_vmalloc_range() inserts each page of a vmalloc_user() area (it refuses
 * plain vmalloc() memory, which lacks VM_USERMAP) with vm_insert_page(), so the
 * mapping holds real pages and copy-on-write works under MAP_PRIVATE. It
 * honours vm_pgoff and refuses a VMA larger than the area with -EINVAL.
 */
#include <linux/vmalloc.h>
#include "mmaplab.h"

static int vmalloc_user_alloc(struct mmaplab_buffer *buf)
{
	buf->vaddr = vmalloc_user(buf->npages * PAGE_SIZE);
	return buf->vaddr ? 0 : -ENOMEM;
}

static int remap_vmalloc_range_mmap(struct mmaplab_buffer *buf, struct vm_area_struct *vma)
{
	return remap_vmalloc_range(vma, buf->vaddr, vma->vm_pgoff);
}

const struct mmaplab_strategy mmaplab_strategy_remap_vmalloc_range = {
	.name = "remap-vmalloc-range",
	.alloc = vmalloc_user_alloc,
	.free = mmaplab_vmalloc_free,
	.mmap = remap_vmalloc_range_mmap,
};
