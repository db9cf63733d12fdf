import { untracedNote } from '../../src/machines/setup.js';
import { describe, expect, it } from 'vitest';
import { jobEnv, type LabJob } from '../../src/guest/job.js';
import { LineSplitter, parseRecordLine } from '../../src/guest/protocol.js';
import { describeExitStatus, signalOfStatus } from '../../src/parse/job-records.js';
import { modinfo } from '../../src/kernel/modules.js';

describe('guest protocol', () => {
  it('keeps a partial line until the rest arrives', () => {
    const s = new LineSplitter();
    expect(s.push('{"t":"ready","kern')).toEqual([]);
    expect(s.push('el":"6.1"}\n{"t":"job-end"')).toEqual(['{"t":"ready","kernel":"6.1"}']);
    expect(s.flush()).toEqual(['{"t":"job-end"']);
  });

  it('types JSON records and keeps anything else as text', () => {
    expect(parseRecordLine('{"t":"exit","check":"private","status":135}')).toEqual({ t: 'exit', check: 'private', status: 135 });
    expect(parseRecordLine('insmod: can\'t insert x.ko\r')).toEqual({ t: 'text', text: "insmod: can't insert x.ko" });
    expect(parseRecordLine('{"no":"type"}')).toEqual({ t: 'text', text: '{"no":"type"}' });
  });

  it('writes a job.env the guest shell can source safely', () => {
    const job: LabJob = {
      id: 3, strategy: 'seed', modulePath: '/c/mmaplab.ko', moduleName: 'mmaplab', moduleParams: ['strategy=seed'], deviceName: 'mmaplab',
      device: '/dev/mmaplab0', testProgram: '/c/mmap-test', checks: ['private', 'shared'], pages: 16, pattern: 0xaabbccdd, stepTimeoutS: 20,
    };
    const env = jobEnv(job, { module: 'abc-mmaplab.ko', test: 'def-mmap-test' }, { traceKeep: true, linkTest: true, arch: 'x86_64' });
    expect(env).toBe(
      "JOB_ID='3'\nSTRATEGY='seed'\nMODULE='../files/abc-mmaplab.ko'\nMODULE_NAME='mmaplab'\nMODULE_PARAMS='strategy=seed'\n" +
        "DEVICE_NAME='mmaplab'\nDEVICE='/dev/mmaplab0'\nTEST='../files/def-mmap-test'\nCHECKS='private,shared'\nPAGES='16'\n" +
        "PATTERN='0xaabbccdd'\nSTEP_TIMEOUT='20'\nTRACE_KEEP='1'\nLINK_TEST='1'\nINSPECT='0'\nSTATE='0'\nTEST_FLAGS=''\nKEEP_LOADED='0'\nPG_RESERVED_BIT=''\n" +
        "REMAP_ARGS='addr=%si:x64 pfn=%dx:x64 size=%cx:x64'\nPAGE_FREE_ARGS='flags=+0(%di):x64 order=%si:u32'\nMACHINE='x86_64'\n",
    );
    expect(jobEnv({ ...job, deviceName: "it's" }, { module: 'm', test: 't' }, { traceKeep: false, linkTest: false, arch: 'x86_64' })).toMatch(/DEVICE_NAME='it'\\''s'\n[^]*TRACE_KEEP='0'\nLINK_TEST='0'/);
  });

  it('asks for no tracing on an architecture whose registers it does not know, rather than read the wrong ones', () => {
    const job: LabJob = {
      id: 1, strategy: 'custom', modulePath: '/c/d.ko', moduleName: 'd', moduleParams: [], deviceName: '', device: '', testProgram: '/c/t', checks: ['shared'], pages: 16, pattern: 0xaabbccdd, stepTimeoutS: 20,
    };
    const env = jobEnv(job, { module: 'm', test: 't' }, { traceKeep: false, linkTest: false, arch: 'riscv64' });
    expect(env).toMatch(/\nREMAP_ARGS=''\nPAGE_FREE_ARGS=''\nMACHINE='riscv64'\n$/);
    expect(untracedNote('riscv64')).toMatch(/^tracing off: .* only on x86_64, i686, i586, i386, aarch64, not on riscv64; the lab ran untraced/);
  });
});

describe('exit statuses as a shell reports them', () => {
  it('names the signal behind 128+n', () => {
    expect(signalOfStatus(135)).toEqual({ name: 'SIGBUS', description: 'Bus error', number: 7 });
    expect(describeExitStatus(135)).toBe('Bus error (exit status 135, SIGBUS)');
    expect(describeExitStatus(139)).toBe('Segmentation fault (exit status 139, SIGSEGV)');
    expect(describeExitStatus(2)).toBe('exit status 2');
    expect(describeExitStatus(null)).toBe('did not exit');
  });
});

describe('module .modinfo', () => {
  it('reads every value of a key', () => {
    const ko = Buffer.concat([Buffer.from('\x7fELF junk\0'), Buffer.from('depends=virtio,virtio_ring\0name=virtio_pci\0parmtype=strategy:charp\0parmtype=npages:uint\0')]);
    expect(modinfo(ko, 'depends')).toEqual(['virtio,virtio_ring']);
    expect(modinfo(ko, 'parmtype')).toEqual(['strategy:charp', 'npages:uint']);
    expect(modinfo(ko, 'license')).toEqual([]);
  });
});
