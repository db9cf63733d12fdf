// SPDX-License-Identifier: GPL-2.0
/*
 * insert-page: vm_map_pages() over an array of the buffer's pages.
 *
 * vm_map_pages() calls vm_insert_page() for each page, starting at the page
 * vm_pgoff names, and refuses a VMA larger than what is left with -ENXIO.
 * Inserted pages are ordinary pages (VM_MIXEDMAP), so MAP_PRIVATE works.
 */
#include <linux/slab.h>
#include <linux/vmalloc.h>
#include "mmaplab.h"

static int insert_page_alloc(struct mmaplab_buffer *buf)
{
	unsigned long i;
	int ret = mmaplab_vmalloc_alloc(buf);

	if (ret)
		return ret;
	buf->pages = kcalloc(buf->npages, sizeof(*buf->pages), GFP_KERNEL);
	if (!buf->pages) {
		vfree(buf->vaddr);
		return -ENOMEM;
	}
	for (i = 0; i < buf->npages; i++)
		buf->pages[i] = vmalloc_to_page(buf->vaddr + i * PAGE_SIZE);
	return 0;
}

static void insert_page_free(struct mmaplab_buffer *buf)
{
	kfree(buf->pages);
	vfree(buf->vaddr);
}

static int insert_page_mmap(struct mmaplab_buffer *buf, struct vm_area_struct *vma)
{
	return vm_map_pages(vma, buf->pages, buf->npages);
}

const struct mmaplab_strategy mmaplab_strategy_insert_page = {
	.name = "insert-page",
	.alloc = insert_page_alloc,
	.free = insert_page_free,
	.mmap = insert_page_mmap,
};
