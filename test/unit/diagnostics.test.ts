import { describe, expect, it } from 'vitest';
import { parseDiagnostics, pathMapper } from '../../src/kbuild/diagnostics.js';
import { formatDiagnostic } from '../../src/model/diagnostic.js';
import { fixture } from '../helpers.js';

describe('compiler diagnostics', () => {
  it('reads gcc errors and warnings from a real failed Kbuild log, with file:line:col', () => {
    const d = parseDiagnostics(fixture('builds', 'compile-error.log'));
    expect(d.map(formatDiagnostic)).toEqual([
      "test/fixtures/drivers/compile-error/compile_error.c:15:9: error: expected ‘,’ or ‘;’ before ‘return’",
      'test/fixtures/drivers/compile-error/compile_error.c:14:23: warning: unused variable ‘len’ [-Wunused-variable]',
      'test/fixtures/drivers/compile-error/compile_error.c:16:1: error: no return statement in function returning non-void [-Werror=return-type]',
    ]);
  });

  it('reads modpost errors and maps build-copy paths back to the source', () => {
    const map = pathMapper('/cache/builds/x/src', 'my-driver');
    const d = parseDiagnostics('ERROR: modpost: "foo" [/cache/builds/x/src/drv.ko] undefined!\n/cache/builds/x/src/drv.c:3:1: warning: bar\n', map);
    expect(d).toEqual([
      { severity: 'error', file: undefined, line: undefined, column: undefined, message: 'modpost: "foo" [my-driver/drv.ko] undefined!' },
      { severity: 'warning', file: 'my-driver/drv.c', line: 3, column: 1, message: 'bar' },
    ]);
  });
});
