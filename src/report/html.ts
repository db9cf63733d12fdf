/**
 * The one page shell of mmaplab's HTML (the class summary, the run and check
 * reports): a single file that opens offline, inline CSS, no script, nothing
 * fetched, colours as the terminal's. All text put in it goes through
 * escapeHtml: names, printk lines and source lines are the student's.
 */

/** Any value, numbers too: a results file read back (merge) or a guest's record may hold anything where a number belongs. */
export function escapeHtml(v: string | number | boolean | null | undefined): string {
  return String(v).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

const CSS = `
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:72em;color:#222;padding:0 1em}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em}h3{font-size:1em;margin-bottom:.3em}
table{border-collapse:collapse}td,th{padding:.2em .5em;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}
.bar{background:#4a7fd4;height:1em;display:inline-block}.pass{color:#17803d}.fail{color:#c0262d}.error{color:#8a2be2}
.skip,.missing{color:#999}.dim{color:#777}.num{text-align:right;font-variant-numeric:tabular-nums}
td.mark{text-align:center}a{color:#1a56b0}
td.ok{color:#17803d}td.expected{color:#a86b00}td.unexpected{color:#c0262d;font-weight:bold}
code,pre{font:12px/1.4 ui-monospace,monospace}pre{background:#f6f6f6;padding:.6em;overflow-x:auto}
pre .problem{background:#fde2e2;color:#8b0000;display:block}.src{background:#fff7d6;padding:0 .3em}
.pages{display:flex;flex-wrap:wrap;gap:2px;margin:.2em 0 .6em}.pages span{width:1.9em;text-align:center;border:1px solid #ccc;font:12px ui-monospace,monospace}
.pages .good{background:#e3f4e8}.pages .bad{background:#fde2e2;color:#c0262d}.pages .gone{color:#999;border-style:dashed}
.fix{color:#17803d}.hint{color:#a86b00}
`;

export function htmlPage(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>${escapeHtml(title)}</title><style>${CSS}</style></head>
<body>
<h1>${escapeHtml(title)}</h1>
${body}
</body></html>
`;
}
