// A small YAML writer for the files the repository ships, so that they stay
// readable: block style, keys of rules in the order people read them
// (alert, expr, for, labels, annotations), multi-line strings as literal
// blocks (`|`), long one-line strings (descriptions) as folded blocks (`>-`)
// wrapped at spaces, and the hidden field `yamlComment` of an object written
// as `#` comment lines above it. An object's hidden field `yamlFolded`
// ({key: [lines]}) tells where to break the one-line string of that key. Strings that could be misread are quoted.
// No anchors, no aliases. std.manifestYamlDoc would sort keys
// alphabetically and quote every long description on one line.
local keyOrder = [
  'apiVersion', 'kind', 'metadata', 'spec',
  'name', 'groups', 'interval', 'rules',
  'record', 'alert', 'expr', 'for', 'labels', 'annotations',
  'summary', 'description', 'runbook_url',
];
local rank(k) =
  local i = std.find(k, keyOrder);
  if std.length(i) > 0 then i[0] else std.length(keyOrder);
local sortedKeys(o) = std.sort(std.objectFields(o), function(k) std.toString(100 + rank(k)) + k);

local width = 100;

// C++ jsonnet's std.findSubstr and std.stringChars are slow on long
// strings; std.split and std.strReplace are native.
local contains(s, sub) = std.length(std.split(s, sub)) > 1;
local indicators = { [c]: true for c in std.stringChars('-?:,[]{}#&*!|>\'"%@` ') };
local keywords = { [k]: true for k in ['y', 'n', 'yes', 'no', 'on', 'off', 'true', 'false', 'null', '~'] };
local numberStart = { [c]: true for c in std.stringChars('0123456789.+-') };
local numberLike(s) =
  std.objectHas(numberStart, s[0])
  && std.foldl(function(acc, ch) std.strReplace(acc, ch, ''),
               std.stringChars('0123456789.+-eE_:xXoO'), s) == '';

// A one-line string YAML reads back as the same string without quotes.
local isPlain(s) =
  local n = std.length(s);
  n > 0
  && !std.objectHas(indicators, s[0])
  && s[n - 1] != ' '
  && s[n - 1] != ':'
  && !contains(s, ': ')
  && !contains(s, ' #')
  && !contains(s, '\n')
  && !contains(s, '\t')
  && !contains(s, '\r')
  && !std.objectHas(keywords, std.asciiLower(s))
  && !numberLike(s);

local quote(s) = if isPlain(s) then s else std.escapeStringJson(s);

local hasTrouble(s) = contains(s, '\t') || contains(s, '\r');

// Greedy wrap of a one-line string at single spaces.
local wrap(s) =
  local words = std.split(s, ' ');
  local step(acc, w) =
    if acc.cur == '' then acc { cur: w }
    else if std.length(acc.cur) + 1 + std.length(w) > width then acc { lines+: [acc.cur], cur: w }
    else acc { cur: acc.cur + ' ' + w };
  local r = std.foldl(step, words, { lines: [], cur: '' });
  r.lines + [r.cur];

// Lines of a string value written after `key:` (first element goes on the
// key's line) with continuation lines indented by `ind`. `folded`: the
// lines to write a one-line string as a `>-` block (null: wrap at spaces
// when it is long and its key is in `foldKeys`).
local foldKeys = ['description'];
local foldable(s, lines) =
  lines != null
  && std.join(' ', lines) == s
  && std.all([l != '' && l[0] != ' ' && l[std.length(l) - 1] != ' ' for l in lines]);
local scalarString(s, ind, key='', folded=null) =
  local n = std.length(s);
  if n > 0 && contains(s, '\n') && !hasTrouble(s) && s[0] != ' ' then
    local trailing = s[n - 1] == '\n';
    local body = if trailing then s[0:n - 1] else s;
    if trailing && std.length(body) > 0 && body[std.length(body) - 1] == '\n' then
      [std.escapeStringJson(s)]
    else
      [if trailing then '|' else '|-']
      + [if l == '' then '' else ind + l for l in std.split(body, '\n')]
  else if !hasTrouble(s) && foldable(s, folded) then
    ['>-'] + [ind + l for l in folded]
  else if n > width && std.member(foldKeys, key) && !hasTrouble(s) && s[0] != ' ' && s[n - 1] != ' '
          && !contains(s, '  ') && !contains(s, '\n') then
    ['>-'] + [ind + l for l in wrap(s)]
  else
    [quote(s)];

local isComposite(v) = std.isObject(v) || std.isArray(v);
local isEmpty(v) = (std.isObject(v) && std.length(std.objectFields(v)) == 0)
                   || (std.isArray(v) && std.length(v) == 0);

local scalar(v, ind, key='', folded=null) =
  if std.isString(v) then scalarString(v, ind, key, folded)
  else if std.isBoolean(v) then [if v then 'true' else 'false']
  else if v == null then ['null']
  else if std.isNumber(v) then [std.toString(v)]
  else if std.isObject(v) then ['{}']
  else if std.isArray(v) then ['[]']
  else error 'yaml: unsupported value';

local comment(o, ind) =
  if std.isObject(o) && std.objectHasAll(o, 'yamlComment') then
    [if l == '' then ind + '#' else ind + '# ' + l for l in std.split(std.rstripChars(o.yamlComment, '\n'), '\n')]
  else [];

// Lines of a value at indentation `ind` (a mapping's keys or a sequence's
// dashes start there). `spaced`: a blank line between sequence items.
local lines(v, ind, spaced=false) =
  if std.isObject(v) && !isEmpty(v) then
    std.flattenArrays([
      local x = v[k];
      if isComposite(x) && !isEmpty(x) then
        [ind + quote(k) + ':'] + lines(x, ind + '  ', std.member(['groups', 'rules'], k))
      else
        local folded =
          if std.objectHasAll(v, 'yamlFolded') && std.objectHas(v.yamlFolded, k) then v.yamlFolded[k] else null;
        local s = scalar(x, ind + '  ', k, folded);
        [ind + quote(k) + ': ' + s[0]] + s[1:]
      for k in sortedKeys(v)
    ])
  else if std.isArray(v) && !isEmpty(v) then
    std.flattenArrays([
      local x = v[i];
      local sep = if spaced && i > 0 then [''] else [];
      local inner =
        if isComposite(x) && !isEmpty(x) then
          local l = lines(x, ind + '  ');
          // The first line moves up next to the dash.
          [ind + '- ' + std.lstripChars(l[0], ' ')] + l[1:]
        else
          local s = scalar(x, ind + '  ');
          [ind + '- ' + s[0]] + s[1:];
      sep + comment(x, ind) + inner
      for i in std.range(0, std.length(v) - 1)
    ])
  else scalar(v, ind);

{
  // A YAML document (ending with a newline) for a JSON-like value, with an
  // optional header comment.
  manifest(value, header=''):: std.join('\n', (
    if header == '' then [] else [if l == '' then '#' else '# ' + l for l in std.split(std.rstripChars(header, '\n'), '\n')]
  ) + lines(value, '')) + '\n',
}
