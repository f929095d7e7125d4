// Replication slots.
local u = import '../lib/utils.libsonnet';

function(c)
  local a = (import 'common.libsonnet')(c);
  local h = a.h, sel = a.sel, q = a.q, server = a.server, alert = a.alert, section = a.section;

  local retained = sel('pgrepl_slot_retained_wal_bytes');

  local slotRetainedExpr(bytes, ratio) = |||
    (%(retained)s > %(bytes)s)
    or
    (
      %(retained)s
      > ignoring (slot_name, slot_type, database) group_left ()
      (%(ratio)s * %(keep)s)
    )
  ||| % {
    retained: retained,
    bytes: u.bytesExpr(bytes),
    ratio: u.num(ratio),
    keep: sel('pgrepl_max_slot_wal_keep_size_bytes'),
  };

  local slotKeys = ['target', 'slot_name'];
  local runwayDesc(severity, seconds, window, words) = |||
    Slot {{ $labels.slot_name }} on {{ $labels.target }}
    {{- if gt $value 0.0 }} loses the WAL its consumer needs in about {{ $value | humanizeDuration }}
    {{- else }} no longer reserves the WAL its consumer needs (wal_status unreserved){{ end }}:
    {{ with %(safe)s | query }}{{ . | first | value | humanize1024 }}B{{ else }}nothing{{ end }} of safe_wal_size left,
    used at {{ with %(used)s | query }}{{ . | first | value | humanize1024 }}B/s{{ end }} over the last %(words)s
    {{- with %(inactive)s | query }}, no consumer connected{{ end }}
    (%(severity)s below %(seconds)s).
    Then the next checkpoint removes that WAL and the slot is lost: its consumer must be re-seeded.
  ||| % {
    safe: q('pgrepl_slot_safe_wal_size_bytes', slotKeys),
    used: q('pgrepl:slot_safe_wal_used_bytes:rate' + window, slotKeys),
    inactive: q('pgrepl_slot_active', slotKeys, ' == 0'),
    severity: severity,
    seconds: u.humanSeconds(seconds),
    words: words,
  };

  // What holds the xmin horizon back, for the descriptions: a slot, or (a
  // family of a later exporter) a standby's walsender.
  local xminExpr(threshold) = std.join('\nor\n', [
    '(%s > %s)' % [sel(f), u.num(threshold)]
    for f in c.xminAgeFamilies
  ]) + '\n';
  local xminDesc(severity, threshold, forDuration) = |||
    {{ if $labels.slot_name -}}
    Slot {{ $labels.slot_name }} ({{ $labels.slot_type }}{{ with $labels.database }}, database {{ . }}{{ end }})
    {{- else -}}
    Standby {{ $labels.application_name }} ({{ $labels.client_addr }})
    {{- end }} on {{ $labels.target }} holds the xmin horizon {{ $value | humanize }} transactions back
    (%(severity)s above %(threshold)s for %(for)s): VACUUM cannot remove the rows deleted since, and
    anti-wraparound vacuums cannot freeze past it.
    {{- if $labels.slot_name }}{{ with %(rate)s | query }}
    It ages by {{ . | first | value | humanize }} transactions a second (the last hour): held for about
    {{ with %(held)s | query }}{{ . | first | value | humanizeDuration }}{{ end }} at that rate;
    PostgreSQL stops assigning transaction IDs, about 2.1 billion behind it, in about
    {{ with %(left)s | query }}{{ . | first | value | humanizeDuration }}{{ end }}{{ end }}{{ end }}.
  ||| % {
    severity: severity,
    threshold: if threshold % 1000000000 == 0 then '%d billion' % (threshold / 1000000000)
    else if threshold % 100000000 == 0 && threshold > 1000000000 then '%s billion' % u.num(threshold / 1000000000)
    else if threshold % 1000000 == 0 then '%d million' % (threshold / 1000000)
    else u.num(threshold),
    'for': h(forDuration),
    local age = 'pgrepl_slot_xmin_age_xids{%s}' % std.join(', ', (if c.pgreplSelector != '' then [c.pgreplSelector] else []) + [l + '=%q' for l in u.keep(c) + slotKeys]),
    local args = std.join(' ', ['$labels.' + l for l in u.keep(c) + slotKeys]),
    rate: 'printf `deriv(%s[1h]) > 0` %s' % [age, args],
    held: 'printf `%s / (deriv(%s[1h]) > 0)` %s %s' % [age, age, args, args],
    left: 'printf `(2^31 - 3000000 - %s) / (deriv(%s[1h]) > 0)` %s %s' % [age, age, args, args],
  };

  local slotRetainedDesc = |||
    Slot {{ $labels.slot_name }} on {{ $labels.target }} retains {{ $value | humanize1024 }}B of WAL
    {{- with %(keep)s | query }}
    (max_slot_wal_keep_size {{ . | first | value | humanize1024 }}B){{ end }}
    {{- with %(safe)s | query }};
    {{ . | first | value | humanize1024 }}B can still be written before it is at risk{{ end }}.
    pg_wal keeps growing until its consumer catches up or the slot is dropped.
  ||| % {
    keep: q('pgrepl_max_slot_wal_keep_size_bytes'),
    safe: q('pgrepl_slot_safe_wal_size_bytes', ['target', 'slot_name']),
  };

  [

    // ------------------------------------------------------------------
    // Replication slots
    // ------------------------------------------------------------------
    alert(
      'PgReplSlotInactive',
      'warning',
      '%s == 0' % sel('pgrepl_slot_active'),
      'A replication slot has no consumer.',
      |||
        Slot {{ $labels.slot_name }} ({{ $labels.slot_type }}) on {{ $labels.target }} has had no consumer
        for more than %(for)s and retains
        {{ with %(retained)s | query }}{{ . | first | value | humanize1024 }}B{{ else }}an unknown amount{{ end }}
        of WAL, growing with every write.
      ||| % { 'for': h(c.slotInactiveFor), retained: q('pgrepl_slot_retained_wal_bytes', ['target', 'slot_name']) },
      c.slotInactiveFor,
      section('Replication slots'),
    ),
    alert(
      'PgReplSlotRetainedWalHigh',
      'warning',
      slotRetainedExpr(c.slotRetainedWarningBytes, c.slotKeepRatioWarning),
      'A replication slot retains a lot of WAL.',
      slotRetainedDesc,
      c.slotRetainedWarningFor,
    ),
    alert(
      'PgReplSlotRetainedWalHigh',
      'critical',
      slotRetainedExpr(c.slotRetainedCriticalBytes, c.slotKeepRatioCritical),
      'A replication slot retains a lot of WAL.',
      slotRetainedDesc,
      c.slotRetainedCriticalFor,
    ),
    alert(
      'PgReplSlotWillBeLost',
      'critical',
      'pgrepl:slot_runway_seconds:rate5m < %s' % u.secondsExpr(c.slotRunwayCriticalSeconds),
      'A replication slot runs out of WAL soon at the current rate; its standby will then need a re-seed.',
      runwayDesc('critical', c.slotRunwayCriticalSeconds, '5m', '5 minutes'),
      if u.seconds(c.slotRunwayCriticalFor) == 0 then null else c.slotRunwayCriticalFor,
      |||
        Time until safe_wal_size is used up at the rate it shrinks (at least the
        WAL rate of its server when no consumer is connected): see the recording
        rules pgrepl:slot_runway_seconds:*. Critical at the 5-minute rates
        without waiting (a runway of minutes cannot wait for `for:`), warning at
        the 1-hour rates. Detection takes a collection, a scrape and a rule
        evaluation: evaluate these rules every 15 to 30 s where slots can be
        used up within minutes.
      |||,
    ),
    alert(
      'PgReplSlotWillBeLost',
      'warning',
      'pgrepl:slot_runway_seconds:rate1h < %s' % u.secondsExpr(c.slotRunwayWarningSeconds),
      'A replication slot runs out of WAL soon at the current rate; its standby will then need a re-seed.',
      runwayDesc('warning', c.slotRunwayWarningSeconds, '1h', 'hour'),
      if u.seconds(c.slotRunwayWarningFor) == 0 then null else c.slotRunwayWarningFor,
    ),
    alert(
      'PgReplSlotWalAtRisk',
      'critical',
      '%s == 1' % sel('pgrepl_slot_wal_status', 'wal_status="unreserved"'),
      'A replication slot no longer reserves the WAL its consumer needs.',
      |||
        Slot {{ $labels.slot_name }} on {{ $labels.target }} has wal_status "unreserved": it retains more
        than max_slot_wal_keep_size and will be invalidated ("lost") at the next checkpoint unless its
        consumer catches up.
      |||,
      c.slotWalAtRiskFor,
    ),
    alert(
      'PgReplSlotLost',
      'critical',
      '%s == 1' % sel('pgrepl_slot_wal_status', 'wal_status="lost"'),
      'A replication slot lost the WAL its consumer needs; the standby must be re-seeded.',
      |||
        Slot {{ $labels.slot_name }} on {{ $labels.target }} has wal_status "lost": WAL its standby still
        needs was removed. The standby can only recover from the WAL archive, otherwise it must be
        rebuilt with pg_basebackup.
      |||,
      c.slotLostFor,
    ),
    alert(
      'PgReplFailoverSlotNotSynced',
      'warning',
      |||
        (
          (
            (%(failover)s == 1)
            * on (%(server)s) group_left (system_identifier, cluster)
            pgrepl:primary:info
          )
          unless on (%(sysSlot)s)
          (
            (%(synced)s == 1)
            * on (%(server)s) group_left (system_identifier)
            pgrepl:standby:info
          )
        )
        and on (%(sys)s) pgrepl:standby:info
      ||| % {
        failover: sel('pgrepl_slot_failover'),
        synced: sel('pgrepl_slot_synced'),
        server: server,
        sysSlot: u.by(c, ['system_identifier', 'slot_name']),
        sys: u.by(c, ['system_identifier']),
      },
      'A failover slot has no synchronized copy on any standby.',
      |||
        Logical slot {{ $labels.slot_name }} on primary {{ $labels.target }} is marked for failover,
        but no standby of cluster {{ $labels.cluster }} has a synced copy of it. After a failover its
        subscriber would find no slot and would have to be re-created with a full copy.
      |||,
      c.failoverSlotNotSyncedFor,
      |||
        PostgreSQL 17+: a logical slot created with failover => true on a
        primary, and no monitored standby of the same system_identifier has
        a synchronized copy of it: after a failover its subscriber has no
        slot to resume from. Only where a standby of that system is
        monitored, so a DR site this Prometheus does not see stays quiet.
      |||,
    ),

    // ------------------------------------------------------------------
    // Transaction horizon held back (vacuum)
    // ------------------------------------------------------------------
    alert(
      'PgReplXminHeldBack',
      'warning',
      xminExpr(c.xminAgeWarning),
      'A replication slot or standby holds back the xmin horizon, so vacuum cannot clean up.',
      xminDesc('warning', c.xminAgeWarning, c.xminAgeWarningFor),
      c.xminAgeWarningFor,
      section('Transaction horizon held back (vacuum)', |||
        The xmin (or a logical slot's catalog_xmin) a slot holds, as an age in
        transactions (%(families)s). Old enough, it keeps VACUUM from removing
        dead rows (bloat) and, near 2 billion, makes PostgreSQL stop assigning
        transaction IDs to protect against wraparound.
      ||| % { families: std.join(', ', c.xminAgeFamilies) }),
    ),
    alert(
      'PgReplXminHeldBack',
      'critical',
      xminExpr(c.xminAgeCritical),
      'A replication slot or standby holds back the xmin horizon, so vacuum cannot clean up.',
      xminDesc('critical', c.xminAgeCritical, c.xminAgeCriticalFor),
      c.xminAgeCriticalFor,
    ),
  ]
