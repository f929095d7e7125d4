// Helpers of the alert files: `alert` builds a rule whose thresholds and
// `for:` come from _config (config.libsonnet) and whose description states
// the configured values; `section` is a heading comment of the rendered file.
local u = import '../lib/utils.libsonnet';

function(c) {
  h:: u.humanDuration,
  sel(metric, extra=''):: u.sel(c, metric, extra),
  q(before, labels=['target'], after=''):: u.tq(c, before, labels, after),
  server:: u.server(c),

  alert(name, severity, expr, summary, description, forDuration=null, comment=null)::
    {
      alert: name,
      expr: expr,
      labels: { severity: severity },
      annotations: {
        summary: summary,
        description: u.fold(description),
        runbook_url: u.runbook(c, name),
        // The rendered YAML breaks the description where this file does.
        yamlFolded:: { description: u.lines(description) },
      },
    }
    + (if forDuration != null then { 'for': forDuration } else {})
    + (if comment != null then { yamlComment:: comment } else {}),

  // A heading comment in the rendered file, above the first rule of a
  // section.
  section(title, text='')::
    '------------------------------------------------------------------\n'
    + title + '\n'
    + '------------------------------------------------------------------\n'
    + text,
}
