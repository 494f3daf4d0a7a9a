/*
 * branchnet's map layers, shared by the web app (/ui) and the standalone map.html (inlined there).
 *
 * A classic script (no module syntax, so it can be inlined into an offline page) that defines
 * globalThis.branchnetMap. It never builds HTML from strings: every value of a user's file or scenario (branch,
 * stop, desk, area and scenario names) reaches the page as text nodes, so a branch named like an HTML image tag
 * with an onerror handler shows as text. The only HTML strings it hands to Leaflet (layer names in the layers
 * control, the attribution) go through esc().
 */
(function (root) {
  'use strict';

  var ROAD_STYLE = {
    major: { color: '#8a8a8a', weight: 3 },
    secondary: { color: '#a8a8a8', weight: 2 },
    minor: { color: '#c6c6c6', weight: 1 },
  };
  var PALETTE = ['#1b9e77', '#d95f02', '#7570b3', '#e7298a', '#66a61e', '#e6ab02', '#a6761d', '#1f78b4', '#b2df8a'];
  var DECISION_COLOR = {
    keep: '#2c7bb6',
    'extend hours': '#08306b',
    'reduce hours': '#92c5de',
    close: '#d7191c',
    today: '#2c7bb6',
  };
  var TIME_BANDS = [
    [5, '#1a9850', '\u2264 5'],
    [10, '#91cf60', '\u2264 10'],
    [15, '#fee08b', '\u2264 15'],
    [20, '#fc8d59', '\u2264 20'],
    [Infinity, '#d73027', '> 20'],
  ];
  // Above this many features the map draws on a canvas: SVG keeps one DOM node per feature.
  var CANVAS_ABOVE = 8000;

  /** Escape a value for HTML text or an attribute (for the few places Leaflet takes an HTML string). */
  function esc(value) {
    return String(value == null ? '' : value).replace(/[&<>"'`]/g, function (c) {
      return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;', '`': '&#96;' }[c];
    });
  }

  /** The colour of a drive time in minutes (black when no branch is reachable). */
  function timeColor(t) {
    if (t == null || !isFinite(t)) return '#000';
    for (var i = 0; i < TIME_BANDS.length; i++) if (t <= TIME_BANDS[i][0]) return TIME_BANDS[i][1];
    return '#000';
  }

  function num(value, digits) {
    if (value == null || value === '' || !isFinite(value)) return '\u2013';
    return Number(value).toLocaleString('en-GB', { maximumFractionDigits: digits || 0 });
  }

  function minutes(value) {
    return value == null || !isFinite(value) ? 'no branch reachable' : Number(value).toFixed(1) + ' min';
  }

  /** A popup or tooltip body: a bold title and one line per entry, all as text nodes. */
  function info(title, lines) {
    var box = document.createElement('div');
    box.className = 'bn-info';
    var head = document.createElement('strong');
    head.textContent = String(title == null ? '' : title);
    box.appendChild(head);
    (lines || []).forEach(function (line) {
      if (line == null || line === '') return;
      var row = document.createElement('div');
      row.textContent = String(line);
      box.appendChild(row);
    });
    return box;
  }

  function bindInfo(layer, how, build) {
    // a function: the node is built when the popup opens, from the feature's own properties
    layer[how](function () { return build(); });
  }

  function featureCount(data) {
    var n = 0;
    Object.keys(data || {}).forEach(function (k) { n += ((data[k] || {}).features || []).length; });
    return n;
  }

  /**
   * Build the overlays of one plan's layers (a dict of GeoJSON FeatureCollections: roads, areas, catchments,
   * demand, bookmobile_routes, bookmobile_stops, outreach_desks, branches).
   *
   * options.view: 'plan' (default: the plan's decisions and drive times after) or 'today' (today's network:
   *   every branch open, drive times before, no plan-only layers).
   * options.pane, options.renderer: where the layers draw (the compare view puts each side in its own pane).
   * Returns {overlays: {label: layer}, on: [labels shown at first], bounds}.
   */
  function buildLayers(L, data, options) {
    options = options || {};
    var today = options.view === 'today';
    var common = {};
    if (options.pane) common.pane = options.pane;
    if (options.renderer) common.renderer = options.renderer;
    function opts(extra) { return Object.assign({}, common, extra); }
    function style(extra) { return Object.assign({}, common, extra); }
    var overlays = {};
    var on = [];
    var bounds = L.latLngBounds([]);

    function add(label, layer, shown) {
      overlays[label] = layer;
      if (shown) on.push(label);
      if (layer.getBounds) {
        var b = layer.getBounds();
        if (b.isValid()) bounds.extend(b);
      }
    }

    if (data.roads) {
      add('Roads', L.geoJSON(data.roads, opts({
        interactive: false,
        style: function (f) { return style(ROAD_STYLE[f.properties.road_class] || ROAD_STYLE.minor); },
      })), true);
    }
    if (data.areas) {
      add('Census areas', L.geoJSON(data.areas, opts({
        style: style({ color: '#555', weight: 1, fill: false, dashArray: '3 3' }),
        onEachFeature: function (f, l) {
          bindInfo(l, 'bindTooltip', function () { return info('Area ' + f.properties.area_id, []); });
        },
      })), false);
    }
    if (data.catchments && !today) {
      add('Catchments', L.geoJSON(data.catchments, opts({
        style: function (f) {
          return style({ color: PALETTE[(f.properties.k || 0) % 9], weight: 1, fillOpacity: 0.18 });
        },
        onEachFeature: function (f, l) {
          bindInfo(l, 'bindTooltip', function () {
            return info('Catchment of ' + f.properties.branch_id, [num(f.properties.population) + ' people']);
          });
        },
      })), true);
    }
    if (data.demand) {
      var field = today ? 'time_before_min' : 'time_after_min';
      add('Demand (drive time to nearest branch)', L.geoJSON(data.demand, opts({
        pointToLayer: function (f, ll) {
          var p = f.properties;
          return L.circleMarker(ll, opts({
            radius: Math.max(2, Math.min(9, Math.sqrt(p.population || 0))), stroke: false, fillOpacity: 0.75,
            fillColor: timeColor(p[field]), className: 'bn-demand',
          }));
        },
        onEachFeature: function (f, l) {
          var p = f.properties;
          bindInfo(l, 'bindPopup', function () {
            return info(num(p.population) + ' people (area ' + p.area_id + ')', [
              'today: ' + minutes(p.time_before_min),
              today ? '' : 'plan: ' + minutes(p.time_after_min),
              today || !p.mode_after ? '' : 'served by: ' + String(p.mode_after).replace('_', ' '),
              today || !p.nearest_branch ? '' : 'nearest branch: ' + p.nearest_branch,
            ]);
          });
        },
      })), true);
    }
    if (data.bookmobile_routes && !today) {
      add('Bookmobile routes', L.geoJSON(data.bookmobile_routes, opts({
        style: function (f) {
          return style({ color: PALETTE[(f.properties.route_day || 0) % 9], weight: 3, dashArray: '6 4' });
        },
        onEachFeature: function (f, l) {
          var p = f.properties;
          bindInfo(l, 'bindTooltip', function () {
            return info(p.route, [p.stops + ' stops, ' + num(p.driving_min) + ' min driving']);
          });
        },
      })), true);
    }
    if (data.bookmobile_stops && !today) {
      add('Bookmobile stops', L.geoJSON(data.bookmobile_stops, opts({
        pointToLayer: function (f, ll) {
          return L.circleMarker(ll, opts({
            radius: 6, color: '#5e3c99', weight: 2, fillColor: f.properties.served ? '#b2abd2' : '#fff',
            fillOpacity: 1, className: 'bn-stop',
          }));
        },
        onEachFeature: function (f, l) {
          var p = f.properties;
          bindInfo(l, 'bindPopup', function () {
            return info((p.community || 'Stop') + ' (' + p.stop_id + ')', [
              num(p.population) + ' people within a walk',
              p.served ? p.day + ' ' + p.arrival + ', every ' + p.interval_weeks + ' week(s)'
                : 'not served: ' + (p.dropped_reason || 'not selected'),
              p.route ? p.route : '',
            ]);
          });
        },
      })), true);
    }
    if (data.outreach_desks && !today) {
      add('Outreach desks', L.geoJSON(data.outreach_desks, opts({
        pointToLayer: function (f, ll) {
          return L.circleMarker(ll, opts({
            radius: 7, color: '#1b7837', weight: 2, fillColor: f.properties.open ? '#5aae61' : '#fff',
            fillOpacity: 1, className: 'bn-desk',
          }));
        },
        onEachFeature: function (f, l) {
          var p = f.properties;
          bindInfo(l, 'bindPopup', function () {
            return info(p.name, [p.open ? 'open ' + num(p.hours_per_week, 1) + ' h/week' : 'candidate, not opened']);
          });
        },
      })), true);
    }
    if (data.branches) {
      add('Branches', L.geoJSON(data.branches, opts({
        pointToLayer: function (f, ll) {
          var decision = today ? 'today' : f.properties.decision;
          return L.circleMarker(ll, opts({
            radius: 9, color: '#222', weight: 2, fillOpacity: 1,
            fillColor: DECISION_COLOR[decision] || DECISION_COLOR.keep, className: 'bn-branch',
          }));
        },
        onEachFeature: function (f, l) {
          var p = f.properties;
          bindInfo(l, 'bindPopup', function () {
            var lines = today
              ? ['open today', 'staffed ' + num(p.staffed_hours_week, 1) + ' h/week',
                 'annual cost ' + num(p.annual_cost)]
              : [p.decision,
                 'staffed ' + num(p.staffed_hours_week, 1) + ' \u2192 ' + num(p.hours_plan, 1) + ' h/week',
                 'annual cost ' + num(p.annual_cost) + ' \u2192 ' + num(p.annual_cost_plan),
                 'annual saving ' + num(p.annual_saving)];
            return info(p.name || p.branch_id, lines.concat(['id ' + p.branch_id]));
          });
        },
      })), true);
    }
    return { overlays: overlays, on: on, bounds: bounds };
  }

  function swatch(color, round) {
    var i = document.createElement('i');
    i.className = round ? 'bn-swatch bn-round' : 'bn-swatch';
    i.style.background = color; // CSSOM, not a style attribute: allowed by a strict style-src
    return i;
  }

  function legendRow(label, items) {
    var row = document.createElement('div');
    row.className = 'bn-legend-row';
    if (label) row.appendChild(document.createTextNode(label + ' '));
    items.forEach(function (item) {
      row.appendChild(swatch(item[0], true));
      row.appendChild(document.createTextNode(item[1] + ' '));
    });
    return row;
  }

  /** The legend's node: branch decisions and drive-time bands (optionally below a heading node). */
  function legendNode(heading) {
    var box = document.createElement('div');
    box.className = 'bn-legend';
    if (heading) box.appendChild(heading);
    box.appendChild(legendRow('Branches:', [
      [DECISION_COLOR.keep, 'kept'], [DECISION_COLOR['extend hours'], 'extended'],
      [DECISION_COLOR['reduce hours'], 'reduced'], [DECISION_COLOR.close, 'closed'],
    ]));
    box.appendChild(legendRow('Drive time (min):', TIME_BANDS.map(function (b) { return [b[1], b[2]]; })
      .concat([['#000', 'none']])));
    box.appendChild(legendRow('', [['#b2abd2', 'bookmobile stop'], ['#5aae61', 'outreach desk']]));
    return box;
  }

  /** A Leaflet control holding the legend (bottom left). */
  function legendControl(L, heading) {
    var control = L.control({ position: 'bottomleft' });
    control.onAdd = function () {
      var div = L.DomUtil.create('div', 'bn-panel');
      div.appendChild(legendNode(heading));
      L.DomEvent.disableScrollPropagation(div);
      return div;
    };
    return control;
  }

  /**
   * Keep the stacking order of `overlays` (their insertion order: areas under demand under branches) when the
   * reader turns a layer back on, which would otherwise draw it over every other one.
   */
  function keepOrder(map, overlays) {
    map.on('overlayadd', function () {
      Object.keys(overlays).forEach(function (k) {
        var layer = overlays[k];
        if (map.hasLayer(layer) && layer.bringToFront) layer.bringToFront();
      });
    });
  }

  /** The layers control's labels are HTML in Leaflet: escape them. */
  function escapedOverlays(overlays) {
    var out = {};
    Object.keys(overlays).forEach(function (k) { out[esc(k)] = overlays[k]; });
    return out;
  }

  /**
   * A complete map of one plan in `element`: the layers, a layers control, the legend (with `options.heading`,
   * a node), a scale bar and the attribution (text). Used by map.html; returns {map, layers}.
   */
  function createMap(L, element, data, options) {
    options = options || {};
    var map = L.map(element, { preferCanvas: featureCount(data) > CANVAS_ABOVE, attributionControl: true });
    map.attributionControl.setPrefix(false);
    map.attributionControl.addAttribution(esc(options.attribution || ''));
    var built = buildLayers(L, data, options);
    built.on.forEach(function (k) { built.overlays[k].addTo(map); });
    L.control.layers(null, escapedOverlays(built.overlays), { collapsed: false }).addTo(map);
    keepOrder(map, built.overlays);
    legendControl(L, options.heading).addTo(map);
    L.control.scale({ imperial: false }).addTo(map);
    if (options.years && options.years.length) yearControl(L, map, built, options.years).addTo(map);
    if (built.bounds.isValid()) map.fitBounds(built.bounds); else map.setView([0, 0], 2);
    return { map: map, layers: built };
  }

  /**
   * A roadmap's year slider: `years` is [{year, branches (GeoJSON: decision, hours, name, branch_id)}]; moving it
   * shows that year's branches in place of the plan's (the target year's) and names the year.
   */
  function yearControl(L, map, built, years) {
    var control = L.control({ position: 'bottomleft' });
    var shown = null;
    control.onAdd = function () {
      var box = L.DomUtil.create('div', 'bn-panel bn-years');
      var label = document.createElement('div');
      label.className = 'bn-year';
      var input = document.createElement('input');
      input.type = 'range';
      input.min = '0';
      input.max = String(years.length - 1);
      input.step = '1';
      input.value = String(years.length - 1);
      input.setAttribute('aria-label', 'Roadmap year');
      function show(i) {
        var y = years[i];
        label.textContent = 'Roadmap year ' + y.year + ' (' + (i + 1) + ' of ' + years.length + ')';
        if (shown) map.removeLayer(shown);
        if (built.overlays.Branches && map.hasLayer(built.overlays.Branches)) map.removeLayer(built.overlays.Branches);
        shown = L.geoJSON(y.branches, {
          pointToLayer: function (f, ll) {
            return L.circleMarker(ll, {
              radius: 9, color: '#222', weight: 2, fillOpacity: 1,
              fillColor: DECISION_COLOR[f.properties.decision] || DECISION_COLOR.keep, className: 'bn-branch bn-year-branch',
            });
          },
          onEachFeature: function (f, l) {
            var p = f.properties;
            bindInfo(l, 'bindPopup', function () {
              return info(p.name || p.branch_id, [y.year + ': ' + p.decision,
                p.decision === 'close' ? '' : num(p.hours, 1) + ' staffed h/week', 'id ' + p.branch_id]);
            });
          },
        }).addTo(map);
      }
      input.addEventListener('input', function () { show(Number(input.value)); });
      box.appendChild(label);
      box.appendChild(input);
      L.DomEvent.disableClickPropagation(box);
      show(years.length - 1);
      return box;
    };
    return control;
  }

  root.branchnetMap = {
    esc: esc,
    timeColor: timeColor,
    info: info,
    buildLayers: buildLayers,
    legendNode: legendNode,
    legendControl: legendControl,
    escapedOverlays: escapedOverlays,
    keepOrder: keepOrder,
    createMap: createMap,
    yearControl: yearControl,
    featureCount: featureCount,
    CANVAS_ABOVE: CANVAS_ABOVE,
    DECISION_COLOR: DECISION_COLOR,
  };
})(globalThis);
