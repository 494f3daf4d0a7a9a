"""The bad-input catalogue (issue 16, item 2): every entry sends one bad input through a real entry point and checks

1. the message: it names the file, row or field (the entry's expected text must appear in it, with the file's path
   on the command line or ``field (client file name)`` in the API), and is never an internal error or a traceback;
2. the outcome: the CLI's exit code (2, the user's error) or the API's 4xx status;
3. that stored data is unchanged byte for byte: the SHA-256 of every file under the data folder and every row of
   every database table (by reflection) before and after the call (:func:`tests.catalogue._support.snapshot`;
   the audit log may only gain refusals).

Tables of :class:`~tests.catalogue._support.Entry` drive the tests, so each test id is the entry's id
(``test_region_files.py::test_api[population-negative]``). Each module shares one data folder, one app (SQLite) and
one good tiny region (``tests/data/tiny.osm``, two census areas, two branches): the bad calls change nothing, which
is what they check. The whole catalogue runs in about half a minute. Where an entry found a vague message or a
leaked exception, the reader or validator that let it in was fixed (see the commits of issue 16).

Index
-----

115 entries, each a test (several through more than one entry point).

Region files (``branchnet region import``: exit 2; ``POST /api/v1/regions``: 422), ``test_region_files.py``:

- ``osm-corrupt-pbf``: random bytes as roads.osm.pbf -> exit 2 / 422: "not a readable OSM file (unknown pbf field
  type"
- ``osm-truncated-pbf``: the first half of a real PBF -> exit 2 / 422: "not a readable OSM file (PBF error"
- ``osm-zero-bytes``: a 0-byte roads.osm.pbf -> exit 2 / 422: "cli: OSM file is empty | api: is empty"
- ``osm-png-named-pbf``: a PNG image named roads.osm.pbf -> exit 2 / 422: "not a readable OSM file"
- ``osm-no-roads``: valid OSM XML with a river and no highway -> exit 2 / 422: "no driveable highway ways found"
- ``osm-truncated-xml``: the first 40% of an .osm file -> exit 2 / 422: "not a readable OSM file (XML parsing error"
- ``osm-html-error-page``: a web server's error page saved as roads.osm -> exit 2 / 422: "not a readable OSM file
  (Unknown top-level element: html)"
- ``population-negative``: area A2 with population -5 -> exit 2 / 422: "row 'A2': field 'population' is -5;
  population must be a number >= 0"
- ``population-nan``: a points CSV whose row 3 population is NaN -> exit 2 / 422: "row 3: field 'population' is
  'NaN'; not a number of people"
- ``population-non-numeric``: a points CSV whose row 3 population is 'many' -> exit 2 / 422: "row 3: field
  'population' is 'many'; not a number of people"
- ``population-empty-count``: a points CSV whose row 2 population is empty -> exit 2 / 422: "row 2: field
  'population' is empty; a population count is needed"
- ``population-huge``: area A1 with population 1e20 -> exit 2 / 422: "row 'A1': field 'population' is 1e+20; more
  than 1e+09 people in one row is not a population count"
- ``population-no-crs``: a GeoPackage of areas without a CRS -> exit 2 / 422: "the file has no coordinate reference
  system"
- ``population-invalid-polygon``: area A2 as a self-intersecting bow-tie -> exit 2 / 422: "1 polygon(s) are invalid
  and cannot be repaired without changing their area (feature 2: Self-intersection"
- ``population-duplicate-ids``: two areas coded A1 -> exit 2 / 422: "area id 'A1' repeats in field 'code'"
- ``population-png-named-gpkg``: a PNG image named areas.gpkg -> exit 2 / 422: "not a readable spatial file"
- ``population-zero-bytes``: a 0-byte areas.geojson -> exit 2 / 422: "cli: the file is empty (0 bytes) | api: is
  empty"
- ``population-mixed-geometry``: one point and one polygon -> exit 2 / 422: "geometry must be all points or all
  polygons, found ['Point', 'Polygon']"
- ``population-table-latin1``: a population table in Latin-1 with é on line 3 -> exit 2 / 422: "line 3: byte 0xe9 is
  not UTF-8 (it looks like Latin-1 or Windows-1252 text); save the file as UTF-8"
- ``population-table-no-match``: a population table whose codes match no area -> exit 2 / 422: "matched no rows
  (tried every pair of columns)"
- ``population-field-missing``: --population-field people, which the file lacks -> exit 2 / 422: "population field
  'people' not found; columns are code, population"
- ``branches-duplicate-ids``: two branches with id main -> exit 2 / 422: "branch id 'main' in field 'branch_id'
  repeats (features 1, 2)"
- ``branches-outside-network``: a branch 150 km from the roads -> exit 2 / 422: "1 branch(s) lie outside the road
  network's area, more than 2 km from any road: 'moon'"
- ``branches-latin1``: a branches CSV in Latin-1 with è on line 3 -> exit 2 / 422: "line 3: byte 0xe8 is not UTF-8"
- ``branches-huge-name``: a branch name of 100,000 characters -> exit 2 / 422: "feature 2: field 'name' is 100,000
  characters long; at most 200"
- ``branches-bad-coordinates``: lon 'east' on row 3 -> exit 2 / 422: "row 3: fields 'lon'/'lat' are not numeric
  coordinates"
- ``branches-unreadable-hours``: Monday staffed hours '9-5' -> exit 2 / 422: "branch 'main': field 'Monday staffed
  hours': cannot read hours '9-5'"
- ``branches-no-id-field``: a branches CSV with coordinates only -> exit 2 / 422: "no branch id field (looked for
  branch_id"
- ``branches-empty-id``: a branch with an empty id -> exit 2 / 422: "feature 2: field 'branch_id' (branch id) is
  empty"
- ``branches-truncated-geojson``: a GeoJSON cut mid-string -> exit 2 / 422: "not a readable spatial file"
- ``branches-null-geometry``: a GeoJSON feature with geometry null -> exit 2 / 422: "1 feature(s) have no geometry
  (field 'geometry')"
- ``branches-infinite-cost``: annual_cost 1e400 -> exit 2 / 422: "field 'annual_cost': '1e400' must be a
  non-negative number"
- ``branches-png-named-geojson``: a PNG image named branches.geojson -> exit 2 / 422: "not a readable spatial file"

Scenarios (``branchnet plan``: exit 2; ``POST`` and ``PUT /api/v1/scenarios``: 422), ``test_scenarios.py``:

- ``budget-wrong-type``: budget: 'lots' -> exit 2 / 422: "budget: Input should be a valid number"
- ``budget-negative``: budget: -1 -> exit 2 / 422: "budget: Input should be greater than 0"
- ``budget-share-zero``: budget_share: 0 -> exit 2 / 422: "budget_share: Input should be greater than 0"
- ``objective-unknown``: objective: cheapest -> exit 2 / 422: "objective: Input should be 'min_cost',
  'max_coverage', 'pareto', 'location' or 'roadmap'"
- ``unknown-key``: a top-level key colour -> exit 2 / 422: "colour: Extra inputs are not permitted"
- ``unknown-nested-key``: standards.branch_drive (a typo of branch_drive_min) -> exit 2 / 422:
  "standards.branch_drive: Extra inputs are not permitted"
- ``standards-wrong-type``: standards: 15 (a number, not a section) -> exit 2 / 422: "standards: Input should be a
  valid dictionary or instance of StandardsSpec"
- ``budget-and-share``: budget and budget_share together -> exit 2 / 422: "give budget or budget_share, not both"
- ``max-coverage-without-budget``: objective max_coverage without a budget -> exit 2 / 422: "max_coverage needs a
  budget (or budget_share)"
- ``keep-and-close``: branch main in forced.keep and forced.close -> exit 2 / 422: "forced: branch(es) ['main'] are
  both in keep and in close"
- ``forced-unknown-branch``: forced.keep: [atlantis], no such branch -> exit 2 / 422: "cli: forced.keep: unknown
  branch id(s) ['atlantis']; the region's branches are ['main', 'east'] | api: forced.keep: unknown branch id(s)
  atlantis in region 'tiny'"
- ``region-missing``: no region -> exit 2 / 422: "region: Field required"
- ``region-unknown``: region: atlantis, never imported -> exit 2 / 422: "cli: region 'atlantis' has not been
  imported (imported regions: tiny) | api: region: region 'atlantis' is not imported in your organisation (its
  regions: tiny)"
- ``region-name-too-long``: a region name of 64 characters -> exit 2 / 422: "region: String should have at most 63
  characters"
- ``weekday-out-of-range``: fleet.weekdays: [7] -> exit 2 / 422: "fleet.weekdays: distinct weekdays 0 (Monday) to 6
  (Sunday)"
- ``shift-too-long``: fleet.shift_hours: 20 -> exit 2 / 422: "fleet.shift_hours: Input should be less than or equal
  to 14"
- ``interval-unsupported``: fleet.intervals_weeks: [5] -> exit 2 / 422: "fleet.intervals_weeks: visit intervals
  among 1, 2, 3, 4 weeks"
- ``hours-levels-negative``: hours.levels: [-1] -> exit 2 / 422: "hours.levels: hours levels must be positive
  factors"
- ``coverage-target-above-1``: standards.coverage_target: 1.5 -> exit 2 / 422: "standards.coverage_target: Input
  should be less than or equal to 1"
- ``group-target-unknown-group``: standards.group_targets: {teens: 0.5} -> exit 2 / 422: "standards.group_targets:
  key 'teens': Input should be 'age_0_17', 'age_18_64' or 'age_65_plus'"
- ``projection-years-reversed``: projection target_year 2020 before today_year 2025 -> exit 2 / 422: "projection:
  target_year 2020 must come after today_year 2025"
- ``dwell-contradiction``: stops.setup_min 130 above max_dwell_min 120 -> exit 2 / 422: "stops: max_dwell_min (120)
  must exceed setup_min (130)"
- ``location-with-objective``: a location section with objective max_coverage -> exit 2 / 422: "location: a location
  section makes a branch-only study, but objective is 'max_coverage'"
- ``roadmap-savings-year-outside``: roadmap savings_year 2040 after target_year 2030 -> exit 2 / 422:
  "roadmap.savings_year: 2040 is not a year of the horizon 2025-2030"
- ``seed-negative``: solve.seed: -1 (the solvers take 0 to 2**31 - 1) -> exit 2 / 422: "solve.seed: Input should be
  greater than or equal to 0"
- ``seed-huge``: solve.seed: 10**30 -> exit 2 / 422: "solve.seed: Input should be less than or equal to 2147483647"
- ``name-too-long``: a name of 201 characters -> exit 2 / 422: "name: at most 200 characters, not 201"
- ``desk-latitude``: an outreach site at latitude 100 -> exit 2 / 422: "outreach.sites.0.lat: Input should be less
  than or equal to 90"
- ``not-a-mapping``: a list of scenarios -> exit 2 / 422: "a scenario is a mapping of fields, not list"
- ``time-limit-infinite``: solve.time_limit_s: .inf (YAML) -> exit 2 / 422: "solve.time_limit_s: Input should be a
  finite number"
- ``yaml-syntax-error``: a YAML file with an unclosed bracket -> exit 2 / 422: "not a readable YAML/JSON scenario"
- ``not-utf8``: a scenario in Latin-1 with é on line 1 -> exit 2 / 422: "line 1: byte 0xe9 is not UTF-8"
- ``seed-flag-negative``: a good file with --seed -1 -> exit 2 / 422: "command-line flags --time-limit/--seed:
  solve.seed: Input should be greater than or equal to 0"

Timetables (``branchnet timetable check`` and ``replan``: exit 2), ``test_timetables.py``:

- ``missing-file``: a path where there is no file -> exit 2: "file not found"
- ``zero-bytes``: a 0-byte file -> exit 2: "the file is empty (0 bytes)"
- ``png-named-csv``: a PNG image named stops.csv -> exit 2: "line 1: byte 0x89 is not UTF-8"
- ``latin1``: a Latin-1 file with é on line 3 -> exit 2: "line 3: byte 0xe9 is not UTF-8"
- ``field-too-large``: a community name of 200,000 characters on line 3 -> exit 2: "line 3: not a readable CSV line
  (field larger than field limit"
- ``missing-columns``: a file without geox and geoy -> exit 2: "column(s) geox, geoy missing"
- ``header-only``: the header and no rows -> exit 2: "the table has no rows"
- ``rrule-unknown-freq``: frequency FREQ=FORTNIGHTLY -> exit 2: "row 3, field 'frequency': RRULE 'FREQ=FORTNIGHTLY':
  FREQ must be WEEKLY or MONTHLY"
- ``rrule-bad-interval``: frequency FREQ=WEEKLY;INTERVAL=x -> exit 2: "row 3, field 'frequency': RRULE
  'FREQ=WEEKLY;INTERVAL=x': INTERVAL must be a positive whole number"
- ``rrule-bad-byday``: frequency FREQ=MONTHLY;BYDAY=9TH -> exit 2: "row 3, field 'frequency': RRULE
  'FREQ=MONTHLY;BYDAY=9TH': BYDAY entry '9TH' is not like TH, 1TH or -1FR"
- ``rrule-unknown-part``: frequency FREQ=WEEKLY;COLOUR=RED -> exit 2: "row 3, field 'frequency': RRULE
  'FREQ=WEEKLY;COLOUR=RED': unknown part 'COLOUR'"
- ``rrule-not-key-value``: frequency WEEKLY -> exit 2: "row 3, field 'frequency': RRULE 'WEEKLY': 'WEEKLY' is not
  KEY=VALUE"
- ``rrule-empty``: an empty frequency -> exit 2: "row 3, field 'frequency': the RRULE is empty"
- ``rrule-every-two-months``: frequency FREQ=MONTHLY;INTERVAL=2 -> exit 2: "row 3, field 'frequency': RRULE
  'FREQ=MONTHLY;INTERVAL=2': a monthly round every 2 months is not supported"
- ``time-not-a-clock``: arrival 'half nine' -> exit 2: "row 3, field 'arrival': 'half nine' is not a time like
  09:30"
- ``time-out-of-day``: departure 25:00 -> exit 2: "row 3, field 'departure': '25:00' is not a time of day"
- ``weekday-unknown``: day Funday -> exit 2: "row 3, field 'day': 'Funday' is not a weekday name"
- ``coordinate-missing``: an empty geoy -> exit 2: "row 3, field 'geoy': no coordinate"
- ``coordinate-out-of-range``: geox 200 -> exit 2: "row 3, field 'geox': '200' is not a WGS84 coordinate in [-180,
  180]"
- ``coordinate-not-a-number``: geoy 'north' -> exit 2: "row 3, field 'geoy': 'north' is not a number"
- ``start-not-a-date``: start 2024-13-01 -> exit 2: "row 3, field 'start': '2024-13-01' is not a date like
  2024-01-31"
- ``end-before-start``: end 2023-12-31 before start 2024-01-02 -> exit 2: "row 3, field 'end': 2023-12-31 is before
  the start 2024-01-02"
- ``exception-not-a-date``: exceptions 'Christmas' -> exit 2: "row 3, field 'exceptions': 'Christmas' is not a date
  like 2024-01-31"
- ``mobile-empty``: an empty mobile -> exit 2: "row 3, field 'mobile': empty; each stop belongs to a (mobile, route)
  pair"
- ``route-split-name-taken``: route Tue on Tuesday and Friday beside a route named 'Tue (Friday)' -> exit 2: "row 3,
  field 'day': 'Friday', but route 'Tue' of mobile 'Mobile 1' runs on Tuesday in row 2; it cannot be split into one
  route per weekday since 'Tue (Friday)' is taken"

API calls (the status after each entry), ``test_api_calls.py``:

- ``scenario-body-too-large``: a 1 MB scenario name -> 413: "the JSON body is larger than 1 MB"
- ``upload-too-large``: a 20 kB OSM file above a 10 kB upload limit -> 413: "osm: the file exceeds the upload limit
  of 0.01 MB per file (BRANCHNET_MAX_UPLOAD_MB)"
- ``scenario-text-plain``: a scenario as text/plain -> 415: "send JSON with 'Content-Type: application/json', not
  'text/plain'"
- ``scenario-form-encoded``: a scenario as an HTML form -> 415: "not 'application/x-www-form-urlencoded'"
- ``scenario-no-content-type``: a scenario without a Content-Type -> 415: "send JSON with 'Content-Type:
  application/json', not a body without a Content-Type"
- ``region-text-plain``: a region as text/plain -> 415: "upload the files as multipart/form-data, or register server
  files with a JSON body"
- ``malformed-json``: JSON with a trailing comma -> 422: "malformed JSON at line 1, column 19: Expecting property
  name enclosed in double quotes"
- ``json-nan``: JSON with a NaN budget -> 422: "malformed JSON: NaN is not a JSON number"
- ``json-not-utf8``: a JSON body in Latin-1 -> 422: "the request body is not UTF-8 encoded JSON"
- ``json-empty``: an empty JSON body -> 422: "the request body is empty; send a JSON object"
- ``multipart-without-boundary``: multipart/form-data without a boundary -> 422: "multipart/form-data without a
  boundary"
- ``upload-unknown-field``: an upload with a form field colour -> 422: "unknown form field 'colour'; files: osm,
  population, branches"
- ``upload-path-like-name``: an OSM file named ../../etc/passwd -> 422: "osm: the file '../../etc/passwd' is not of
  a supported type; use .osm.pbf"
- ``region-name-taken``: a second region named tiny -> 409: "a region named 'tiny' already exists in your
  organisation"
- ``stale-if-match``: PUT with If-Match of version 0 -> 412: "is at version 1, not 0"
- ``other-org-scenario-get``: organisation b reads a's scenario -> 404: "scenario '{sid}' not found"
- ``other-org-scenario-put``: organisation b replaces a's scenario -> 404: "scenario '{sid}' not found"
- ``other-org-scenario-delete``: organisation b deletes a's scenario -> 404: "scenario '{sid}' not found"
- ``other-org-run``: organisation b runs a's scenario -> 404: "scenario '{sid}' not found"
- ``other-org-region-delete``: organisation b deletes a's region -> 404: "region '{rid}' not found"
- ``other-org-region-in-scenario``: organisation b plans on a's region by name -> 422: "scenario: region: region
  'tiny' is not imported in your organisation (its regions: none)"
- ``viewer-writes``: a viewer's key creates a scenario -> 403: "this needs the planner role; your key has viewer"
- ``no-key``: a scenario without an API key -> 401: "a valid API key is required"
- ``unknown-run-id``: a run id that does not exist -> 404: "run 'nope' not found"

"""
