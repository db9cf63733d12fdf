import { describe, expect, it } from 'vitest';
import { choosePattern, patternIn } from '../../src/kbuild/lab-pattern.js';
import { fixture } from '../helpers.js';

const word = (text: string) => {
  const p = patternIn(text);
  return p && `0x${p.word.toString(16)}:${p.line}`;
};

describe('the bytes a source says every page starts with', () => {
  it('bytes stored one by one are in memory order, whatever the index expression', () => {
    expect(word('p[0] = 0xaa;\np[1] = 0xbb;\np[2] = 0xcc;\np[3] = 0xdd;')).toBe('0xddccbbaa:1');
    expect(word('area[i * PAGE_SIZE] = 0xaa; area[i * PAGE_SIZE + 1] = 0xbb;\narea[i * PAGE_SIZE + 2] = 0xcc; area[i * PAGE_SIZE + 3] = 0xdd;')).toBe('0xddccbbaa:1');
    expect(word('if (addr[i] != 0xaa || addr[i + 1] != 0xbb ||\n    addr[i + 2] != 0xcc || addr[i + 3] != 0xdd)')).toBe('0xddccbbaa:1');
  });

  it('a u32 store is little-endian; listed bytes and string bytes keep their order; comments do not count', () => {
    expect(word('/* 0xaa 0xbb 0xcc 0xdd */\n*(u32 *)p = 0xaabbccdd;')).toBe('0xaabbccdd:2');
    expect(word('static const u8 pat[] = { 0xaa, 0xbb, 0xcc, 0xdd };')).toBe('0xddccbbaa:1');
    expect(word('memcpy(p, "\\xaa\\xbb\\xcc\\xdd", 4);')).toBe('0xddccbbaa:1');
    expect(word('return 0;')).toBeUndefined();
    // [4] is not one of the pattern's four bytes.
    expect(word('kbuf[4] = 0xdd; p[0] = 0xaa; p[1] = 0xbb; p[2] = 0xcc; p[3] = 0xdd;')).toBe('0xddccbbaa:1');
  });

  it('reads any source in one pass: a 1 MiB line with no ;, an open comment, a flood of byte constants', () => {
    // Each took minutes (quadratic regexes) before; a source is untrusted text.
    expect(patternIn('a'.repeat(1 << 20))).toBeUndefined();
    expect(patternIn('/*'.repeat(1 << 19))).toBeUndefined();
    expect(patternIn('0xaa '.repeat(200_000))).toBeUndefined();
  });

  it("reads students' drivers and the lab's test program (written without seeing mmaplab)", () => {
    expect(word(fixture('students', 'u32-pattern', 'mmapdrv.c'))).toMatch(/^0xaabbccdd:/);
    expect(word(fixture('students', 'read-stub', 'so2_kmmap.c'))).toMatch(/^0xddccbbaa:/);
    expect(word(fixture('students', 'lab-vmmap-layout', 'test', 'mmap-test.c'))).toMatch(/^0xddccbbaa:/);
  });
});

describe('which pattern check expects', () => {
  const dir = 'test/fixtures/students';
  it("the lab's test program beside the driver wins, strictly; else the driver's own, leniently; --expect-pattern over both", async () => {
    expect(await choosePattern({ source: `${dir}/lab-vmmap-layout`, driverFiles: [`${dir}/lab-vmmap-layout/vmmap.c`], override: undefined })).toMatchObject({ bytes: 'aa bb cc dd', from: 'lab-test', strict: true, where: expect.stringMatching(/test\/mmap-test\.c:\d+$/) });
    expect(await choosePattern({ source: `${dir}/u32-pattern`, driverFiles: [`${dir}/u32-pattern/mmapdrv.c`], override: undefined })).toMatchObject({ bytes: 'dd cc bb aa', from: 'driver', strict: false });
    expect(await choosePattern({ source: `${dir}/u32-pattern`, driverFiles: [`${dir}/u32-pattern/mmapdrv.c`], override: 0xddccbbaa })).toMatchObject({ word: '0xddccbbaa', from: 'option', strict: true });
    expect(await choosePattern({ source: 'test/fixtures/drivers/null-deref-mmap', driverFiles: ['test/fixtures/drivers/null-deref-mmap/null_deref.c'], override: undefined })).toMatchObject({ bytes: 'aa bb cc dd', from: 'default', strict: false });
  });
});
