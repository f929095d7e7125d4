// PromQL and text helpers shared by the rules, the alerts and the
// dashboards. Every function takes the mixin's `_config` as `c`.
local join(parts) = std.join(', ', std.filter(function(p) p != '', parts));

{
  // Labels every join and aggregation keeps: the cluster label and the
  // group labels.
  keep(c)::
    assert c.clusterLabel != 'cluster' && c.clusterLabel != 'target' :
           "_config.clusterLabel must not be 'cluster' or 'target': the exporter uses them for the PostgreSQL cluster and server";
    assert std.isArray(c.groupLabels) : '_config.groupLabels must be an array of label names';
    (if c.clusterLabel != '' then [c.clusterLabel] else []) + c.groupLabels,

  // "a, b, c" for by / on / without lists: the kept labels first.
  by(c, labels=[]):: std.join(', ', self.keep(c) + labels),

  // Labels that identify one server as seen by one exporter scrape.
  server(c):: self.by(c, ['instance', 'job', 'target']),

  // metric{<selector>, <extra matchers>}
  sel(c, metric, extra=''):: metric + '{' + join([c.pgreplSelector, extra]) + '}',

  // up{<selector>}
  up(c):: self.sel(c, 'up'),

  // A Go template `printf` that builds a query for the series of the
  // alert's own server, for `{{ with <this> | query }}`:
  //   printf `<before>{<selector>, <label>=%q...}<after>` $labels.<label>...
  // The kept labels are matched too, so that a central Prometheus never
  // mixes two clusters' servers of the same name.
  tq(c, before, labels, after='', selector=true)::
    local all = self.keep(c) + labels;
    'printf `' + before + '{'
    + std.join(', ', (if selector && c.pgreplSelector != '' then [c.pgreplSelector] else []) + [l + '=%q' for l in all])
    + '}' + after + '` ' + std.join(' ', ['$labels.' + l for l in all]),

  // YAML's `>-`: lines joined by one space, no trailing newline. Lets the
  // descriptions be written as ||| blocks.
  fold(s):: std.join(' ', self.lines(s)),
  lines(s):: std.filter(function(l) l != '', std.split(s, '\n')),

  // A number as people write it: std.toString prints 0.8 as
  // 0.80000000000000004 (17 significant digits).
  num(x)::
    if std.isString(x) then x
    else if x == std.floor(x) && std.abs(x) < 1e15 then '%d' % x
    else std.rstripChars(std.rstripChars('%.9f' % x, '0'), '.'),

  // 268435456 -> "256 * 1024 ^ 2" (PromQL), 1073741824 -> "1024 ^ 3".
  bytesExpr(n)::
    local g = 1024 * 1024 * 1024, m = 1024 * 1024;
    if n >= g && n % g == 0 then (if n == g then '1024 ^ 3' else '%d * 1024 ^ 3' % (n / g))
    else if n >= m && n % m == 0 then (if n == m then '1024 ^ 2' else '%d * 1024 ^ 2' % (n / m))
    else self.num(n),

  // 268435456 -> "256 MiB".
  humanBytes(n)::
    local g = 1024 * 1024 * 1024, m = 1024 * 1024;
    if n >= g && n % g == 0 then '%d GiB' % (n / g)
    else if n >= m && n % m == 0 then '%d MiB' % (n / m)
    else '%d bytes' % n,

  // 21600 -> "6 * 3600" (PromQL).
  secondsExpr(n)::
    if n > 3600 && n % 3600 == 0 then '%d * 3600' % (n / 3600) else self.num(n),

  // Seconds in words: 300 -> "5 minutes", 3600 -> "1 hour".
  humanSeconds(n)::
    local u = self;
    local unit(v, one) = '%s %s%s' % [u.num(v), one, if v == 1 then '' else 's'];
    if n >= 86400 && n % 86400 == 0 then unit(n / 86400, 'day')
    else if n >= 3600 && n % 3600 == 0 then unit(n / 3600, 'hour')
    else if n >= 60 && n % 60 == 0 then unit(n / 60, 'minute')
    else unit(n, 'second'),

  // A Prometheus duration in seconds: "5m" -> 300, "1h30m" is not supported.
  seconds(d)::
    local units = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };
    local u = d[std.length(d) - 1];
    assert std.objectHas(units, u) : 'unsupported duration %s (use a number and one of s, m, h, d, w)' % d;
    std.parseInt(d[0:std.length(d) - 1]) * units[u],

  // A Prometheus duration in words: "5m" -> "5 minutes".
  humanDuration(d):: self.humanSeconds(self.seconds(d)),

  // The runbook of an alert.
  runbook(c, alert):: c.runbookURLPattern % std.asciiLower(alert),
}
