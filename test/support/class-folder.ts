/**
 * A class folder as Moodle and Canvas download them, made from the repo's
 * fixture drivers (test/fixtures): Moodle folders (one holding a zip),
 * Moodle's flat files, Canvas's flat files (a late re-upload among them),
 * plain .c, .tar and .tar.gz entries, an archive that is not one, a tar whose
 * entry escapes it, a folder with no driver, and a copy of one driver with its
 * comments rewritten. CLASS says what each student handed in.
 */
import { cpSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { ROOT } from '../helpers.js';
import { tarOf, zipOf } from './archives.js';

const FIX = join(ROOT, 'test', 'fixtures');

function filesOf(dir: string, prefix = ''): Array<{ name: string; data: Buffer }> {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? filesOf(join(dir, e.name), `${prefix}${e.name}/`) : e.name === 'README.txt' ? [] : [{ name: `${prefix}${e.name}`, data: readFileSync(join(dir, e.name)) }],
  );
}



/** Who is in the class, as the platform names them, and what their driver is. */
export const CLASS = {
  ada: { name: 'Ada Lovelace', id: '1001', driver: 'students/lab-vmalloc', form: 'Moodle folder' },
  alan: { name: 'Alan Turing', id: '1002', driver: 'students/lab-vmmap-layout', form: 'Moodle folder holding lab5.zip with a lab5/ folder' },
  grace: { name: 'Grace Hopper', id: '1003', driver: 'drivers/vmalloc-leak', form: "Moodle's flat files" },
  edsger: { name: 'Edsger Dijkstra', id: '1004', driver: 'students/wrong-byte-order', form: 'Moodle folder holding lab6.tar.gz: the lab layout, kernel/ beside test/' },
  hedy: { name: 'lamarrhedy', id: '2003', driver: 'students/vmalloc-per-page', form: 'Canvas files' },
  charles: { name: 'babbagecharles', id: '2001', driver: 'students/oops-in-mmap-2', form: 'Canvas file' },
  margaret: { name: 'hamiltonmargaret', id: '2002', driver: 'students/loop-in-init', form: 'Canvas files: an early upload that does not compile, a late one that hangs' },
  same: { name: 'same-page', id: '', driver: 'students/same-page-2', form: '.tar.gz' },
  typo: { name: 'typo', id: '', driver: 'drivers/compile-error', form: '.c' },
  broken: { name: 'broken', id: '', driver: '', form: 'a .zip that is not one' },
  escape: { name: 'escape', id: '', driver: '', form: 'a .tar whose entry is ../evil.c' },
  empty: { name: 'empty-handed', id: '', driver: '', form: 'a folder with only a README' },
  copycat: { name: 'copycat', id: '', driver: 'students/lab-vmalloc', form: 'a folder: lab-vmalloc with its comments rewritten' },
} as const;

/** The class folder, made in dir. */
export async function makeClassFolder(dir: string): Promise<string> {
  mkdirSync(dir, { recursive: true });
  const put = (name: string, data: Buffer | string) => writeFileSync(join(dir, name), data);

  const adaDir = join(dir, 'Ada Lovelace_1001_assignsubmission_file_');
  cpSync(join(FIX, CLASS.ada.driver), adaDir, { recursive: true });

  const alanDir = join(dir, 'Alan Turing_1002_assignsubmission_file_');
  mkdirSync(alanDir);
  writeFileSync(join(alanDir, 'lab5.zip'), await zipOf((z) => { for (const f of filesOf(join(FIX, CLASS.alan.driver), 'lab5/')) z.addBuffer(f.data, f.name); }));

  for (const f of filesOf(join(FIX, CLASS.grace.driver))) put(`Grace Hopper_1003_assignsubmission_file_${f.name}`, f.data);

  const edsgerDir = join(dir, 'Edsger Dijkstra_1004_assignsubmission_file_');
  mkdirSync(edsgerDir);
  writeFileSync(join(edsgerDir, 'lab6.tar.gz'), gzipSync(await tarOf(filesOf(join(FIX, CLASS.edsger.driver)))));

  for (const f of filesOf(join(FIX, CLASS.hedy.driver))) put(`lamarrhedy_2003_7004_${f.name}`, f.data);
  for (const f of filesOf(join(FIX, CLASS.charles.driver))) put(`babbagecharles_2001_7001_${f.name}`, f.data);

  put('hamiltonmargaret_2002_7002_pfnmap.c', readFileSync(join(FIX, 'drivers/compile-error/compile_error.c')));
  for (const f of filesOf(join(FIX, CLASS.margaret.driver))) put(`hamiltonmargaret_LATE_2002_7010_${f.name}`, f.data);

  put('same-page.tar.gz', gzipSync(await tarOf(filesOf(join(FIX, CLASS.same.driver), 'same-page/'))));
  put('typo.c', filesOf(join(FIX, CLASS.typo.driver)).find((f) => f.name.endsWith('.c'))!.data);
  put('broken.zip', Buffer.from('PK\u0003\u0004 this was a zip until the upload was cut short'));
  put('escape.tar', await tarOf([{ name: '../evil.c', data: Buffer.from('int x;\n') }]));
  mkdirSync(join(dir, 'empty-handed'));
  put('empty-handed/README.md', 'I could not get it to work, sorry.\n');

  const copy = join(dir, 'copycat');
  cpSync(join(FIX, CLASS.copycat.driver), copy, { recursive: true });
  const c = join(copy, 'lab_vmalloc.c');
  writeFileSync(c, `/* my own work, honest */\n${readFileSync(c, 'utf8').replace(/\/\*[\s\S]*?\*\//g, '/* rewritten */').replace(/\/\/[^\n]*/g, '// mine')}`);
  return dir;
}
