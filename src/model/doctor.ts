/**
 * What `mmaplab doctor` found: one finding per tool or condition mmaplab
 * needs, each ok, a warning (mmaplab works, slower or with less), or missing
 * (mmaplab cannot work until it is fixed), with what to do.
 */
export type FindingStatus = 'ok' | 'warn' | 'missing';

export interface Finding {
  id: string;
  /** What was looked at: "QEMU", "bubblewrap (the build sandbox)". */
  title: string;
  status: FindingStatus;
  /** What was seen: a version, a path, the reason it is not usable. */
  detail: string;
  /** What to do, in one line, when not ok. */
  fix?: string;
  /** The packages that fix it, by distribution. */
  packages?: { debian: string; fedora: string | undefined; arch: string | undefined };
}

export type DoctorReport =
  | {
      kind: 'linux';
      findings: Finding[];
      /** The install commands for what is missing, per distribution; empty when nothing is. */
      install: { debian: string | undefined; fedora: string | undefined; arch: string | undefined };
      /** 0: mmaplab can work here; 1: something it needs is missing. */
      exitCode: 0 | 1;
    }
  | {
      /** macOS, Windows, ...: what does work instead of a list of missing tools. */
      kind: 'unsupported';
      platform: string;
      advice: string[];
      exitCode: 1;
    };

export function doctorExit(findings: readonly Finding[]): 0 | 1 {
  return findings.some((f) => f.status === 'missing') ? 1 : 0;
}
