// Recording rules for "how long do I have": the WAL rate of each primary,
// the time until each slot's safe_wal_size is used up, how fast each
// standby's replay lag grows and the time it needs to catch up. Over 5
// minutes (what the pages use: it follows a change within minutes) and 1
// hour (the warnings: it forgives a burst).
local u = import '../lib/utils.libsonnet';

function(c)
  local server = u.server(c);
  local safe = u.sel(c, 'pgrepl_slot_safe_wal_size_bytes');
  local windows = ['5m', '1h'];
  // The comment goes above the first rule of a pair only.
  local firstOnly(w, comment) = if w == windows[0] then { yamlComment:: comment } else {};

  [
    {
      record: 'pgrepl:wal_written_bytes:deriv' + w,
      expr: |||
        clamp_min(
          max without (position) (deriv(%(lsn)s[%(w)s])),
          0
        )
        * on (%(server)s) group_left (system_identifier, cluster)
        pgrepl:primary:info
      ||| % { lsn: u.sel(c, 'pgrepl_wal_lsn_bytes', 'position="current"'), w: w, server: server },
    } + firstOnly(w, |||
        WAL written per second by each primary (pg_current_wal_lsn()), with the
        cluster and system_identifier of pgrepl:primary:info. deriv(), not
        rate(): the position is a gauge, and a position that moves back (another
        server behind the same target name after a failover) must read as a
        drop, never as the huge increase of a counter reset.
      |||)
    for w in windows
  ]
  + [
    {
      record: 'pgrepl:slot_safe_wal_used_bytes:rate' + w,
      expr: |||
        (
          (%(decline)s >= %(unconsumed)s)
          or
          %(unconsumed)s
          or
          %(decline)s
        )
        > 0
      ||| % {
        decline: 'clamp_min(-deriv(%s[%s]), 0)' % [safe, w],
        unconsumed: '(0 * (%s == 0) + on (%s) group_left () pgrepl:wal_written_bytes:deriv%s)'
                    % [u.sel(c, 'pgrepl_slot_active'), server, w],
      },
    } + firstOnly(w, |||
        Bytes per second by which a slot's safe_wal_size shrinks: what its
        measured decline says, and for a slot without a consumer at least the
        WAL rate of its server (known before the consumer went away, so the
        runway is right from the first evaluation after it left). Only where
        above 0: a slot whose consumer keeps up has no runway to run out of.
      |||)
    for w in windows
  ]
  + [
    {
      record: 'pgrepl:slot_runway_seconds:rate' + w,
      expr: 'clamp_min(%s, 0) / pgrepl:slot_safe_wal_used_bytes:rate%s' % [safe, w],
    } + firstOnly(w, |||
        Seconds until a slot's safe_wal_size is used up at that rate: then
        wal_status turns "unreserved" and the next checkpoint removes WAL its
        consumer needs ("lost"). 0 once it is unreserved.
      |||)
    for w in windows
  ]
  + [
    {
      yamlComment:: |||
        Bytes per second by which a standby's replay lag, seen from its
        upstream, grows (above 0: it falls further behind) or shrinks (below 0:
        it catches up): its replay rate against the WAL rate of the primary.
      |||,
      record: 'pgrepl:standby_lag_bytes:deriv5m',
      expr: 'deriv(%s[5m])' % u.sel(c, 'pgrepl_standby_lag_bytes', 'stage="replay"'),
    },
    {
      yamlComment:: |||
        Seconds a lagging standby needs to catch up at its current pace; only
        while its lag shrinks (none: it is caught up, or does not catch up).
      |||,
      record: 'pgrepl:standby_catchup_seconds:deriv5m',
      expr: |||
        (%(lag)s > 0)
        / -(pgrepl:standby_lag_bytes:deriv5m < 0)
      ||| % { lag: u.sel(c, 'pgrepl_standby_lag_bytes', 'stage="replay"') },
    },
  ]
