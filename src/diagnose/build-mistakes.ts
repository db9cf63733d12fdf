/**
 * Common C mistakes that the kernel's build flags turn into errors, each
 * matched on gcc's own message, with the fix in one line. Lab code written on
 * 32-bit x86 or with an older gcc meets these on amd64 and gcc 12-14.
 */
import type { BuildMistake, Diagnostic } from '../model/diagnostic.js';

const Q = `['‘’\`"]`;

const RULES: ReadonlyArray<{ test: RegExp; mistake: BuildMistake }> = [
  {
    test: /^(?:fatal error: )?(stdio|stdlib|unistd|fcntl|string|sys\/mman|sys\/types|sys\/stat|errno|assert)\.h: No such file/,
    mistake: {
      id: 'userspace-program',
      summary: 'this is a userspace program, not a kernel module: a module has no main() and cannot include the C library (<stdio.h>, <sys/mman.h>)',
      fix: "give check the driver's folder (the .c with module_init()); the test program is built and run by mmaplab itself",
    },
  },
  {
    // An absolute path, or one climbing out with ../: the sandbox holds only the submission, the kernel's headers and the compiler.
    test: /^(?:fatal error: )?(?:\/(?!usr\/)[^:]*|(?:\.\.\/){2,}[^:]*): No such file or directory/,
    mistake: {
      id: 'include-outside',
      summary: "an #include of a file outside the submission: the build sees only the submission's own files, the kernel's headers and the compiler",
      fix: "put the header in the driver's folder (or the lab's folder) and include it by a relative path: #include \"mmap-test.h\"",
    },
  },
  {
    test: new RegExp(`initialization of ${Q}ssize_t \\(\\*\\)\\(struct file \\*, (?:const )?char \\*, size_t,\\s+loff_t \\*\\)${Q}.*from incompatible pointer type ${Q}int \\(\\*\\)`),
    mistake: {
      id: 'int-read-write',
      summary: "read()/write() return int: file_operations wants ssize_t, which is int only on 32-bit x86 (the lab's -m32 build) and long on amd64",
      fix: 'declare them static ssize_t my_read(struct file *f, char __user *buf, size_t len, loff_t *off) (and the same for write); to check it as the lab runs it, on 32-bit x86, give --arch i386',
    },
  },
  {
    test: /\[-Werror=incompatible-pointer-types\]/,
    mistake: {
      id: 'incompatible-pointer-types',
      summary: 'a function or pointer of another type than the kernel expects: the kernel builds with -Werror=incompatible-pointer-types',
      fix: "make the function's declaration match the type gcc names, return type and every argument",
    },
  },
  {
    test: /control reaches end of non-void function|\[-Werror=return-type\]/,
    mistake: {
      id: 'missing-return',
      summary: 'a function that returns a value can reach its end without return: the kernel builds with -Werror=return-type',
      fix: 'return a value on every path (return 0; on success, a negative errno on failure)',
    },
  },
  {
    test: /implicit declaration of function|\[-Werror=implicit-function-declaration\]/,
    mistake: {
      id: 'implicit-declaration',
      summary: 'a function called before any declaration of it: a missing #include, a typo, or a helper defined further down',
      fix: 'include the header that declares it (kmalloc/kfree: <linux/slab.h>, vmalloc: <linux/vmalloc.h>), or declare the helper above its first use',
    },
  },
  {
    test: /makes (?:integer from pointer|pointer from integer) without a cast|\[-W(?:error=)?int-conversion\]/,
    mistake: {
      id: 'int-conversion',
      summary: 'a pointer stored in an integer (or the reverse) without a cast: a warning on gcc 12, an error from gcc 14 (-Wint-conversion)',
      fix: 'give the variable the pointer type it holds, or cast explicitly: (unsigned long)buf',
    },
  },
];

/** The mistakes a build's diagnostics point at, each once; the specific before the general. */
export function buildMistakesFor(diagnostics: readonly Pick<Diagnostic, 'message' | 'severity'>[]): BuildMistake[] {
  const text = diagnostics.filter((d) => d.severity !== 'note').map((d) => d.message);
  // After a syntax error gcc's later errors are its consequences (a return eaten by the parse): the first is the story.
  if (/^expected /.test(diagnostics.find((d) => d.severity === 'error')?.message ?? '')) return [];
  const found = RULES.filter((r) => text.some((m) => r.test.test(m))).map((r) => r.mistake);
  // The lab's int read()/write() is the whole story of its incompatible-pointer-types error.
  return found.some((m) => m.id === 'int-read-write') ? found.filter((m) => m.id !== 'incompatible-pointer-types') : found;
}
