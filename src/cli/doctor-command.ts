/** `mmaplab doctor` and `mmaplab setup`: what this machine has for mmaplab, and installing what it lacks. */
import type { Command } from 'commander';
import { makeStyle } from '../report/style.js';
import { cacheRoot } from '../util/paths.js';

export function addDoctor(program: Command): void {
  program
    .command('doctor')
    .description('check every tool and condition mmaplab needs (QEMU, compilers, the build sandbox, KVM, disk, the cache) and say what to do about each')
    .option('--tests', "also the packages only mmaplab's own test suite needs")
    .option('--json', 'print the findings as JSON')
    .option('--no-color', 'plain output even on a terminal')
    .action(async (o: { tests?: boolean; json?: boolean; color?: boolean }) => {
      const { doctor } = await import('../commands/doctor.js');
      const { renderDoctorText } = await import('../report/doctor-text.js');
      const r = await doctor({ cacheDir: cacheRoot(), tests: !!o.tests });
      process.stdout.write(o.json ? `${JSON.stringify(r, null, 2)}\n` : renderDoctorText(r, makeStyle({ color: o.color === false ? false : undefined })));
      process.exitCode = r.exitCode;
    });
  program
    .command('setup')
    .description('install the system packages mmaplab needs (Debian/Ubuntu, with sudo), then run doctor')
    .option('--tests', "also the packages mmaplab's own test suite needs")
    .option('--dry-run', 'print the command that would install them, and install nothing')
    .option('--no-color', 'plain output even on a terminal')
    .action(async (o: { tests?: boolean; dryRun?: boolean; color?: boolean }) => {
      const { setupPlan, runSetup } = await import('../commands/setup.js');
      const plan = setupPlan({ tests: !!o.tests });
      if (o.dryRun) {
        process.stdout.write(`${plan.argv.join(' ')}\n`);
        return;
      }
      await runSetup(plan);
      const { doctor } = await import('../commands/doctor.js');
      const { renderDoctorText } = await import('../report/doctor-text.js');
      const r = await doctor({ cacheDir: cacheRoot(), tests: !!o.tests });
      process.stdout.write(renderDoctorText(r, makeStyle({ color: o.color === false ? false : undefined })));
      process.exitCode = r.exitCode;
    });
}
