// SPDX-License-Identifier: GPL-2.0
/*
 * mmaplab core: buffer, pattern, character device, read-back path.
 * The mmap implementation is the selected strategy's (strategy=NAME).
 */
#include <linux/module.h>
#include <linux/init.h>
#include <linux/cdev.h>
#include <linux/vmalloc.h>
#include <linux/uaccess.h>
#include "mmaplab.h"

MODULE_DESCRIPTION("mmaplab: ways to map a driver's buffer to userspace");
MODULE_AUTHOR("mmaplab");
MODULE_LICENSE("GPL");

static char *strategy = "seed";
module_param(strategy, charp, 0444);
MODULE_PARM_DESC(strategy, "how mmap() maps the buffer: seed, checked, no-maywrite, remap-vmalloc-range, insert-page, fault, contiguous");

static unsigned int npages = 16;
module_param(npages, uint, 0444);
MODULE_PARM_DESC(npages, "number of pages in the buffer");

static const struct mmaplab_strategy *const strategies[] = {
	&mmaplab_strategy_seed,
	&mmaplab_strategy_checked,
	&mmaplab_strategy_no_maywrite,
	&mmaplab_strategy_remap_vmalloc_range,
	&mmaplab_strategy_insert_page,
	&mmaplab_strategy_fault,
	&mmaplab_strategy_contiguous,
	&mmaplab_strategy_page_shared,
};

static const struct mmaplab_strategy *active;
static struct mmaplab_buffer buffer;
static dev_t devno;
static struct cdev cdev;

int mmaplab_vmalloc_reserved_alloc(struct mmaplab_buffer *buf)
{
	unsigned long i;

	buf->vaddr = vmalloc(buf->npages * PAGE_SIZE);
	if (!buf->vaddr)
		return -ENOMEM;
	/* As the lab asks; not needed for remap_pfn_range() since 2.6.15. */
	for (i = 0; i < buf->npages; i++)
		SetPageReserved(vmalloc_to_page(buf->vaddr + i * PAGE_SIZE));
	return 0;
}

void mmaplab_vmalloc_reserved_free(struct mmaplab_buffer *buf)
{
	unsigned long i;

	for (i = 0; i < buf->npages; i++)
		ClearPageReserved(vmalloc_to_page(buf->vaddr + i * PAGE_SIZE));
	vfree(buf->vaddr);
}

int mmaplab_vmalloc_alloc(struct mmaplab_buffer *buf)
{
	buf->vaddr = vmalloc(buf->npages * PAGE_SIZE);
	return buf->vaddr ? 0 : -ENOMEM;
}

void mmaplab_vmalloc_free(struct mmaplab_buffer *buf)
{
	vfree(buf->vaddr);
}

/* Each page starts with the magic word, then its own index, so a wrong page shows. */
static void fill_pattern(struct mmaplab_buffer *buf)
{
	unsigned long i;

	for (i = 0; i < buf->npages; i++) {
		u32 *p = buf->vaddr + i * PAGE_SIZE;

		p[0] = MMAPLAB_MAGIC;
		p[1] = i;
	}
}

static int mmaplab_mmap(struct file *filp, struct vm_area_struct *vma)
{
	unsigned long len = vma->vm_end - vma->vm_start;
	int ret;

	pr_info(MMAPLAB_NAME ": mmap %s: %lu pages at pgoff %lu, %s, %s\n",
		active->name, len >> PAGE_SHIFT, vma->vm_pgoff,
		(vma->vm_flags & VM_MAYSHARE) ? "MAP_SHARED" : "MAP_PRIVATE",
		mmaplab_is_cow(vma->vm_flags) ? "copy-on-write" : "not copy-on-write");
	ret = active->mmap(&buffer, vma);
	pr_info(MMAPLAB_NAME ": mmap %s returned %d\n", active->name, ret);
	return ret;
}

static ssize_t mmaplab_read(struct file *filp, char __user *ubuf, size_t count, loff_t *ppos)
{
	return simple_read_from_buffer(ubuf, count, ppos, buffer.vaddr, buffer.npages * PAGE_SIZE);
}

static ssize_t mmaplab_write(struct file *filp, const char __user *ubuf, size_t count, loff_t *ppos)
{
	return simple_write_to_buffer(buffer.vaddr, buffer.npages * PAGE_SIZE, ppos, ubuf, count);
}

static const struct file_operations mmaplab_fops = {
	.owner = THIS_MODULE,
	.read = mmaplab_read,
	.write = mmaplab_write,
	.mmap = mmaplab_mmap,
	.llseek = default_llseek,
};

static int __init mmaplab_init(void)
{
	size_t i;
	int ret;

	for (i = 0; i < ARRAY_SIZE(strategies); i++)
		if (!strcmp(strategies[i]->name, strategy))
			active = strategies[i];
	if (!active) {
		pr_err(MMAPLAB_NAME ": unknown strategy '%s'\n", strategy);
		return -EINVAL;
	}
	if (!npages || npages > 4096)
		return -EINVAL;

	buffer.npages = npages;
	ret = active->alloc(&buffer);
	if (ret) {
		pr_err(MMAPLAB_NAME ": %s: allocation failed: %d\n", active->name, ret);
		return ret;
	}
	fill_pattern(&buffer);

	ret = alloc_chrdev_region(&devno, 0, 1, MMAPLAB_NAME);
	if (ret)
		goto out_free;
	cdev_init(&cdev, &mmaplab_fops);
	cdev.owner = THIS_MODULE;
	ret = cdev_add(&cdev, devno, 1);
	if (ret)
		goto out_unregister;

	pr_info(MMAPLAB_NAME ": strategy %s, %u pages, device %d:%d\n",
		active->name, npages, MAJOR(devno), MINOR(devno));
	return 0;

out_unregister:
	unregister_chrdev_region(devno, 1);
out_free:
	active->free(&buffer);
	return ret;
}

static void __exit mmaplab_exit(void)
{
	cdev_del(&cdev);
	unregister_chrdev_region(devno, 1);
	active->free(&buffer);
	pr_info(MMAPLAB_NAME ": unloaded\n");
}

module_init(mmaplab_init);
module_exit(mmaplab_exit);
