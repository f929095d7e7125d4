// A small panel library for the dashboards (no grafonnet: nothing is
// fetched at build time). Panels are plain objects; `layout` places them
// on Grafana's 24-column grid, left to right, top to bottom.
{
  new(c):: {
    local g = self,
    local ds = { type: 'prometheus', uid: '${%s}' % c.datasourceName },
    datasource:: ds,

    // ------------------------------------------------------------------
    // Layout
    // ------------------------------------------------------------------
    row(title):: { kind:: 'row', title:: title },
    at(panel, w, h):: { kind:: 'panel', panel:: panel, w:: w, h:: h },

    // Items from row() and at(): panels with ids and grid positions. A row
    // starts below the tallest panel of the line before it.
    layout(items)::
      local step(st, it) =
        if it.kind == 'row' then
          local y = if st.x != 0 then st.y + st.rowH else st.y;
          st {
            panels+: [{
              collapsed: false,
              gridPos: { h: 1, w: 24, x: 0, y: y },
              id: st.id,
              panels: [],
              title: it.title,
              type: 'row',
            }],
            id: st.id + 1,
            x: 0,
            y: y + 1,
            rowH: 0,
          }
        else
          local wrap = st.x + it.w > 24;
          local y = if wrap then st.y + st.rowH else st.y;
          local x = if wrap then 0 else st.x;
          local rowH = if wrap then 0 else st.rowH;
          st {
            panels+: [it.panel { id: st.id, gridPos: { h: it.h, w: it.w, x: x, y: y } }],
            id: st.id + 1,
            x: x + it.w,
            y: y,
            rowH: std.max(rowH, it.h),
          };
      std.foldl(step, items, { panels: [], id: 1, x: 0, y: 0, rowH: 0 }).panels,

    // ------------------------------------------------------------------
    // Queries
    // ------------------------------------------------------------------
    target(expr, legend='', ref='A', instant=false, table=false)::
      { datasource: ds, expr: expr, refId: ref }
      + (
        if table then { format: 'table', instant: true, range: false }
        else if instant then { instant: true, range: false, legendFormat: if legend == '' then '__auto' else legend }
        else { range: true, legendFormat: if legend == '' then '__auto' else legend }
      ),

    // ------------------------------------------------------------------
    // Field configuration
    // ------------------------------------------------------------------
    // steps([['green', null], ['orange', 10], ['red', 20]])
    steps(pairs):: {
      mode: 'absolute',
      steps: [{ color: p[0], value: p[1] } for p in pairs],
    },

    // valueMap([[0, 'primary', 'green'], [1, 'standby', 'blue']])
    valueMap(entries):: [{
      type: 'value',
      options: {
        [std.toString(entries[i][0])]: { text: entries[i][1], color: entries[i][2], index: i }
        for i in std.range(0, std.length(entries) - 1)
      },
    }],

    // Field overrides by (renamed) field name; properties from the
    // functions below.
    ov(name, properties):: { matcher: { id: 'byName', options: name }, properties: properties },
    ovRegex(regex, properties):: { matcher: { id: 'byRegexp', options: regex }, properties: properties },
    pMappings(m):: [{ id: 'mappings', value: m }],
    pCell(type):: [{ id: 'custom.cellOptions', value: { type: type } }],
    pUnit(unit):: [{ id: 'unit', value: unit }],
    pLinks(links):: [{ id: 'links', value: links }],
    pColor(color):: [{ id: 'color', value: { mode: 'fixed', fixedColor: color } }],
    // A dashed red reference line (a limit drawn next to a measured value).
    pDashed():: [
      { id: 'custom.lineStyle', value: { fill: 'dash', dash: [10, 10] } },
      { id: 'custom.fillOpacity', value: 0 },
    ] + self.pColor('red'),

    // ------------------------------------------------------------------
    // Panels
    // ------------------------------------------------------------------
    base(kind, title, description, targets, unit, links=[]):: {
      type: kind,
      title: title,
      description: description,
      datasource: ds,
      targets: targets,
      fieldConfig: { defaults: { unit: unit }, overrides: [] },
      options: {},
    } + (if std.length(links) > 0 then { links: links } else {}),

    timeseries(title, description, targets, unit, links=[], overrides=[], minimum=null,
               stack=false, thresholds=null, drawStyle='line')::
      g.base('timeseries', title, description, targets, unit, links) {
        fieldConfig+: {
          defaults+: {
            custom: {
              drawStyle: drawStyle,
              lineWidth: 1,
              fillOpacity: 10,
              showPoints: 'never',
              spanNulls: false,
              stacking: { mode: if stack then 'normal' else 'none', group: 'A' },
            } + (if thresholds != null then { thresholdsStyle: { mode: 'dashed' } } else {}),
          } + (if minimum != null then { min: minimum } else {})
          + (if thresholds != null then { thresholds: thresholds } else {}),
          overrides: overrides,
        },
        options: {
          legend: { displayMode: 'table', placement: 'bottom', calcs: ['lastNotNull', 'max'], showLegend: true },
          tooltip: { mode: 'multi', sort: 'desc' },
        },
      },

    stat(title, description, expr, unit, thresholds, links=[], mappings=null, noValue='none',
         legend='', colorMode='background', exprs=null)::
      g.base('stat', title, description,
             if exprs != null then exprs else [g.target(expr, legend=legend, instant=true)],
             unit, links) {
        fieldConfig+: {
          defaults+: { thresholds: thresholds, noValue: noValue }
                     + (if mappings != null then { mappings: mappings } else {}),
        },
        options: {
          colorMode: colorMode,
          graphMode: 'none',
          justifyMode: 'auto',
          textMode: 'auto',
          reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
        },
      },

    stateTimeline(title, description, expr, legend, mappings, links=[])::
      g.base('state-timeline', title, description, [g.target(expr, legend)], 'none', links) {
        fieldConfig+: {
          defaults+: {
            mappings: mappings,
            color: { mode: 'thresholds' },
            thresholds: g.steps([['text', null]]),
            custom: { fillOpacity: 80, lineWidth: 0 },
          },
        },
        options: {
          mergeValues: true,
          showValue: 'auto',
          alignValue: 'left',
          rowHeight: 0.9,
          legend: { displayMode: 'list', placement: 'bottom', showLegend: false },
          tooltip: { mode: 'single' },
        },
      },

    table(title, description, targets, unit, exclude=[], rename={}, overrides=[], links=[], order=[])::
      g.base('table', title, description, targets, unit, links) {
        transformations: [
          { id: 'merge', options: {} },
          {
            id: 'organize',
            options: {
              excludeByName: { Time: true } + { [k]: true for k in exclude },
              renameByName: rename,
              indexByName: { [order[i]]: i for i in std.range(0, std.length(order) - 1) },
            },
          },
        ],
        fieldConfig+: {
          defaults+: { custom: { align: 'auto', cellOptions: { type: 'auto' } } },
          overrides: overrides,
        },
        options: { showHeader: true, cellHeight: 'sm', footer: { show: false } },
      },

    // ------------------------------------------------------------------
    // Dashboard parts
    // ------------------------------------------------------------------
    datasourceVar():: {
      name: c.datasourceName,
      label: 'Data source',
      type: 'datasource',
      query: 'prometheus',
      current: {},
      hide: 0,
      refresh: 1,
      regex: '',
      includeAll: false,
      multi: false,
      options: [],
    },

    queryVar(name, label, query, multi=true, includeAll=true, allValue='.+', hide=0):: {
      name: name,
      label: label,
      type: 'query',
      datasource: ds,
      definition: query,
      query: query,
      refresh: 2,
      sort: 1,
      regex: '',
      multi: multi,
      includeAll: includeAll,
      current: {},
      options: [],
      hide: hide,
    } + (
      if includeAll then {
        allValue: allValue,
        current: {
          selected: true,
          text: if multi then ['All'] else 'All',
          value: if multi then ['$__all'] else '$__all',
        },
      } else {}
    ),

    builtinAnnotation():: {
      builtIn: 1,
      datasource: { type: 'grafana', uid: '-- Grafana --' },
      enable: true,
      hide: true,
      iconColor: 'rgba(0, 211, 255, 1)',
      name: 'Annotations & Alerts',
      type: 'dashboard',
    },

    dashboard(uid, title, description, panels, variables, links, annotations):: {
      __inputs: [],
      __requires: [
        { type: 'grafana', id: 'grafana', name: 'Grafana', version: '12.0.0' },
        { type: 'datasource', id: 'prometheus', name: 'Prometheus', version: '1.0.0' },
      ],
      annotations: { list: [g.builtinAnnotation()] + annotations },
      description: description,
      editable: true,
      fiscalYearStartMonth: 0,
      graphTooltip: 1,
      id: null,
      links: links,
      panels: panels,
      refresh: c.dashboardRefresh,
      schemaVersion: 41,
      tags: c.dashboardTags,
      templating: { list: variables },
      time: { from: c.dashboardTimeFrom, to: 'now' },
      timepicker: {},
      timezone: c.dashboardTimezone,
      title: title,
      uid: uid,
      version: 1,
      weekStart: '',
    },
  },
}
