/* SPDX-License-Identifier: GPL-2.0 */
/*
 * mmaplab: one character device, several ways to map its buffer to userspace.
 *
 * The core (mmaplab_main.c) allocates NPAGES pages through the selected
 * strategy, writes a pattern into each page, and exposes them through
 * /dev/mmaplab0 with read(), write() and mmap(). Each strategy_*.c file holds
 * one readable mmap implementation and nothing else.
 */
#ifndef MMAPLAB_H
#define MMAPLAB_H

#include <linux/mm.h>
#include <linux/fs.h>
#include <linux/version.h>

#define MMAPLAB_NAME "mmaplab"

/* The seed's pattern: bytes dd cc bb aa, the 32-bit little-endian 0xaabbccdd. */
#define MMAPLAB_MAGIC 0xaabbccddU

struct mmaplab_buffer {
	void *vaddr;		/* kernel virtual address of the pages */
	unsigned long npages;
	struct page **pages;	/* insert-page: the pages, for vm_map_pages() */
	struct page *block;	/* contiguous: the first page of the block */
};

struct mmaplab_strategy {
	const char *name;
	/* Allocate buf->npages pages and set buf->vaddr; return 0 or -errno. */
	int (*alloc)(struct mmaplab_buffer *buf);
	void (*free)(struct mmaplab_buffer *buf);
	/* The file_operations.mmap body: map buf into vma. */
	int (*mmap)(struct mmaplab_buffer *buf, struct vm_area_struct *vma);
};

/* Shared allocators: the seed's vmalloc() with every page marked reserved, and plain vmalloc(). */
int mmaplab_vmalloc_reserved_alloc(struct mmaplab_buffer *buf);
void mmaplab_vmalloc_reserved_free(struct mmaplab_buffer *buf);
int mmaplab_vmalloc_alloc(struct mmaplab_buffer *buf);
void mmaplab_vmalloc_free(struct mmaplab_buffer *buf);

/* Does [vm_pgoff, vm_pgoff + pages of vma) fit in the buffer? */
static inline bool mmaplab_fits(const struct mmaplab_buffer *buf, struct vm_area_struct *vma)
{
	unsigned long pages = vma_pages(vma);

	return vma->vm_pgoff < buf->npages && pages <= buf->npages - vma->vm_pgoff;
}

extern const struct mmaplab_strategy mmaplab_strategy_seed;
extern const struct mmaplab_strategy mmaplab_strategy_checked;
extern const struct mmaplab_strategy mmaplab_strategy_no_maywrite;
extern const struct mmaplab_strategy mmaplab_strategy_remap_vmalloc_range;
extern const struct mmaplab_strategy mmaplab_strategy_insert_page;
extern const struct mmaplab_strategy mmaplab_strategy_fault;
extern const struct mmaplab_strategy mmaplab_strategy_contiguous;
extern const struct mmaplab_strategy mmaplab_strategy_page_shared;

/* vm_flags became read-only in 6.3: these compile on both sides of the change. */
static inline void mmaplab_vm_flags_set(struct vm_area_struct *vma, vm_flags_t flags)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 3, 0)
	vm_flags_set(vma, flags);
#else
	vma->vm_flags |= flags;
#endif
}

static inline void mmaplab_vm_flags_clear(struct vm_area_struct *vma, vm_flags_t flags)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 3, 0)
	vm_flags_clear(vma, flags);
#else
	vma->vm_flags &= ~flags;
#endif
}

/* Same definition as the kernel's is_cow_mapping(), which 5.10 keeps private. */
static inline bool mmaplab_is_cow(vm_flags_t flags)
{
	return (flags & (VM_SHARED | VM_MAYWRITE)) == VM_MAYWRITE;
}

#endif
