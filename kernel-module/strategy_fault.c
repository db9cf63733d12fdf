// SPDX-License-Identifier: GPL-2.0
/*
 * fault: map nothing up front; hand the kernel each page when it is touched
 * (LDD3's nopage way). The .fault handler looks the page up with
 * vmalloc_to_page(), takes a reference and returns it in vmf->page; the
 * kernel maps it, or copies it for a private write.
 */
#include "mmaplab.h"

static vm_fault_t fault_fault(struct vm_fault *vmf)
{
	struct mmaplab_buffer *buf = vmf->vma->vm_private_data;
	struct page *page;

	/* vmf->pgoff already includes the mapping's vm_pgoff. */
	if (vmf->pgoff >= buf->npages)
		return VM_FAULT_SIGBUS;
	page = vmalloc_to_page(buf->vaddr + vmf->pgoff * PAGE_SIZE);
	get_page(page);
	vmf->page = page;
	return 0;
}

static const struct vm_operations_struct fault_vm_ops = {
	.fault = fault_fault,
};

static int fault_mmap(struct mmaplab_buffer *buf, struct vm_area_struct *vma)
{
	if (!mmaplab_fits(buf, vma))
		return -EINVAL;
	vma->vm_private_data = buf;
	vma->vm_ops = &fault_vm_ops;
	mmaplab_vm_flags_set(vma, VM_DONTEXPAND | VM_DONTDUMP);
	return 0;
}

const struct mmaplab_strategy mmaplab_strategy_fault = {
	.name = "fault",
	.alloc = mmaplab_vmalloc_alloc,
	.free = mmaplab_vmalloc_free,
	.mmap = fault_mmap,
};
