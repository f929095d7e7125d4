// Replication slots.
local u = import '../lib/utils.libsonnet';

function(c)
  local a = (import 'common.libsonnet')(c);
  local h = a.h, sel = a.sel, q = a.q, server = a.server, alert = a.alert, section = a.section;

  local retained = sel('pgrepl_slot_retained_wal_bytes');

  local slotRetainedExpr(bytes, ratio, horizon) = |||
    (%(retained)s > %(bytes)s)
    or
    (
      %(retained)s
      > ignoring (slot_name, slot_type, database) group_left ()
      (%(ratio)s * %(keep)s)
    )
    or
    (
      %(retained)s
      and
      predict_linear(%(safe)s[%(window)s], %(horizon)s) < 0
    )
  ||| % {
    retained: retained,
    bytes: u.bytesExpr(bytes),
    ratio: u.num(ratio),
    keep: sel('pgrepl_max_slot_wal_keep_size_bytes'),
    safe: sel('pgrepl_slot_safe_wal_size_bytes'),
    window: c.slotSafeWalWindow,
    horizon: u.secondsExpr(horizon),
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
      slotRetainedExpr(c.slotRetainedWarningBytes, c.slotKeepRatioWarning, c.slotSafeWalWarningHorizonSeconds),
      'A replication slot retains a lot of WAL.',
      slotRetainedDesc,
      c.slotRetainedWarningFor,
    ),
    alert(
      'PgReplSlotRetainedWalHigh',
      'critical',
      slotRetainedExpr(c.slotRetainedCriticalBytes, c.slotKeepRatioCritical, c.slotSafeWalCriticalHorizonSeconds),
      'A replication slot retains a lot of WAL.',
      slotRetainedDesc,
      c.slotRetainedCriticalFor,
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
  ]
